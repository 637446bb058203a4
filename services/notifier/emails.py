"""Every kind of mail the notifier sends, one function each, as warehouse writes its emails:
the function returns the context of its templates (``templates/email/<kind>/subject.txt,
body.txt, body.html``) and the rest (rendering, the list headers, the personal unsubscribe
links, the VERP return path) is the same for every kind. A new kind (a campaign) is one more
template folder and one more function here.

The link mails (``confirm``, ``follow``, ``preferences``) are built whole for their one reader.
A digest is rendered once for everyone who gets the same news and filled in per subscriber
(``digest_message``), which the batch that sends it and staff's preview both call; a campaign
likewise, once for its whole audience (``campaign_message``).
"""

from __future__ import annotations

import functools
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import NamedTuple

from sqlalchemy.orm import Session

from services.notifier import digests, ledger, mail, subscriptions
from services.notifier.models import Campaign, Subscriber
from services.notifier.tokens import Tokens

UNSUBSCRIBE_MARK = "%%unsubscribe_url%%"
PREFERENCES_MARK = "%%preferences_url%%"


@dataclass
class MailSettings:
    """What every message needs to know: who sends it, where its links point, what signs
    them."""

    sender: str
    public_base_url: str
    tokens: Tokens

    @cached_property
    def domain(self) -> str:
        return mail.envelope_address(self.sender).rsplit("@", 1)[-1]

    @cached_property
    def unsubscribe_address(self) -> str:
        return mail.unsubscribe_address(self.sender)

    def mailto(self, unsubscribe_token: str) -> str:
        """The subscriber's own mailto: the unsubscribe mailbox reads the token."""
        return mail.unsubscribe_mailto(self.unsubscribe_address, unsubscribe_token)

    def return_path(self, subscriber_id: int, message_kind: str, message_number: int) -> str:
        """The envelope sender of one message (VERP): its bounces come back to the mailbox
        with a signed id that names the subscriber and the message (``bounces.py``)."""
        named = (subscriber_id, message_kind, message_number)
        return self.tokens.bounce_ids.return_path(self.domain, *named)

    def link(self, purpose: str, subscriber: Subscriber, **signed) -> str:
        """``<site>/<page>/<token>``: a page of the site for this subscriber alone."""
        token = self.tokens.make(purpose, subscriber.id, subscriber.email, **signed)
        return f"{self.public_base_url}/{purpose}/{token}"


@dataclass(frozen=True)
class Email:
    """A finished message and its envelope, ready for a sender (``senders.py``)."""

    kind: str
    subscriber_id: int | None  # None: not a subscriber's (a staff member's sign-in link)
    recipient: str
    return_path: str
    data: bytes


# Who each kind of link mail goes to: a confirmation to a pending subscriber, the others to a
# confirmed one (a state that changed since the mail was asked for sends nothing).
LINK_MAIL_STATUS = {"confirm": "pending", "follow": "confirmed", "preferences": "confirmed"}


def _by_the_second(_subscriber: Subscriber, now: datetime) -> int:
    return int(now.timestamp())


def _email(kind: str, number: Callable[[Subscriber, datetime], int] = _by_the_second):
    """Makes a function returning ``kind``'s template context into one returning the
    finished ``Email``. ``number`` names the message in its bounce address."""

    def wrap(context_of: Callable[..., dict]) -> Callable[..., Email]:
        @functools.wraps(context_of)
        def build(subscriber: Subscriber, settings: MailSettings, now: datetime, **extra) -> Email:
            unsubscribe = settings.tokens.make("unsubscribe", subscriber.id, subscriber.email)
            data = mail.build_message(
                sender=settings.sender,
                recipient=subscriber.email,
                rendered=mail.render(kind, **context_of(subscriber, settings, **extra)),
                message_id=f"<{kind}.{subscriber.id}.{now:%Y%m%d%H%M%S}@{settings.domain}>",
                unsubscribe_url=f"{settings.public_base_url}/unsubscribe/{unsubscribe}",
                unsubscribe_mailto=settings.mailto(unsubscribe),
                headers=mail.ListHeaders(mail.feedback_id(kind, subscriber.frequency)),
            )
            return_path = settings.return_path(subscriber.id, kind, number(subscriber, now))
            return Email(kind, subscriber.id, subscriber.email, return_path, data)

        return build

    return wrap


# Confirmation mails are numbered (only the latest link confirms); other link mails by the
# second they were made.
@_email("confirm", number=lambda subscriber, _now: subscriber.confirmations)
def confirmation(subscriber: Subscriber, settings: MailSettings) -> dict:
    token = subscriptions.confirmation_token(settings.tokens, subscriber)
    return {
        "frequency": subscriber.frequency,
        "confirm_url": f"{settings.public_base_url}/subscriptions/confirm/{token}",
    }


@_email("follow")
def follow(
    subscriber: Subscriber, settings: MailSettings, city_ids: list[int], cities: list[str]
) -> dict:
    """The link that adds the cities a confirmed subscriber asked to follow (none when they
    already get what they asked for: the mail then only points to the preferences)."""
    return {
        "frequency": subscriber.frequency,
        "preferences_url": settings.link("preferences", subscriber),
        "follow_url": settings.link("follow", subscriber, city_ids=city_ids) if city_ids else None,
        "cities": cities,
    }


@_email("preferences")
def preferences(subscriber: Subscriber, settings: MailSettings) -> dict:
    return {
        "frequency": subscriber.frequency,
        "preferences_url": settings.link("preferences", subscriber),
    }


def link_mail(
    session: Session,
    kind: str,
    subscriber_id: int,
    city_ids: list[int],
    settings: MailSettings,
    now: datetime,
) -> Email | None:
    """The link mail of this kind for this subscriber, or None if they are no longer in the
    state it was asked for in."""
    subscriber = session.get(Subscriber, subscriber_id)
    if subscriber is None or subscriber.status != LINK_MAIL_STATUS[kind]:
        return None
    if kind == "confirm":
        return confirmation(subscriber, settings, now)
    if kind == "follow":
        cities = subscriptions.city_names(session, city_ids)
        return follow(subscriber, settings, now, city_ids=city_ids, cities=cities)
    return preferences(subscriber, settings, now)


def staff_sign_in(
    address: str, member_name: str, url: str, minutes: int, settings: MailSettings
) -> Email:
    """A staff member's one-time sign-in link, asked for by the staff service. A notice to
    one person about their own account: no list, so nothing to unsubscribe from, and its
    bounces go to the plain sender (it names no subscriber)."""
    data = mail.build_notice(
        sender=settings.sender,
        recipient=address,
        rendered=mail.render("staff_sign_in", member_name=member_name, url=url, minutes=minutes),
        message_id=f"<sign-in.{uuid.uuid4().hex}@{settings.domain}>",
        headers=mail.ListHeaders(mail.feedback_id("staff", "sign-in")),
    )
    return Email("staff_sign_in", None, address, mail.envelope_address(settings.sender), data)


def digest(news: digests.Digest, subscriber: Subscriber, settings: MailSettings) -> dict:
    """The digest's context: the same for every subscriber with the same news and the same
    frequency; their own links are marks, filled in per subscriber."""
    return {
        "stories": news.stories,
        "more": news.more,
        "count": news.story_count,
        "partnerships": news.partnerships,
        "cities": _named(news.cities),
        "following": bool(subscriber.city_ids),
        "frequency": subscriber.frequency,
        "site_url": settings.public_base_url,
        "unsubscribe_url": UNSUBSCRIBE_MARK,
        "preferences_url": PREFERENCES_MARK,
    }


def _named(cities: tuple[str, ...]) -> str:
    """ "Lyon", "Lyon and Kyoto", "Lyon, Kyoto, Boston and 2 more"."""
    if len(cities) <= 2:
        return " and ".join(cities)
    if len(cities) == 3:
        return f"{cities[0]}, {cities[1]} and {cities[2]}"
    return f"{', '.join(cities[:3])} and {len(cities) - 3} more"


class DigestMessage(NamedTuple):
    subject: str
    data: bytes


def digest_message(
    news: digests.Digest, subscriber: Subscriber, message_id: str, settings: MailSettings
) -> DigestMessage:
    """One subscriber's digest mail: the digest's template (rendered once per process for
    everyone who gets the same news) with this subscriber's address, Message-ID and own links
    put in."""
    template = digest_template(news, subscriber, settings)
    return DigestMessage(
        template.rendered.subject, personalize(template, subscriber, message_id, settings)
    )


def digest_preview(
    session: Session, subscriber: Subscriber, settings: MailSettings, now: datetime
) -> tuple[digests.Digest, DigestMessage]:
    """The digest this subscriber would get now, built as the batch that sends it would."""
    news = digests.digest_at(session, subscriber, now)
    period = digests.period_of(subscriber.frequency, now)
    message_id = ledger.message_id(subscriber.id, period, settings.domain)
    return news, digest_message(news, subscriber, message_id, settings)


_templates: OrderedDict[tuple, mail.MessageTemplate] = OrderedDict()
_templates_lock = threading.Lock()
TEMPLATES_KEPT = 256


def digest_template(
    news: digests.Digest, subscriber: Subscriber, settings: MailSettings
) -> mail.MessageTemplate:
    """Each distinct digest is rendered and encoded once per process, whatever batch its
    subscribers fall in."""
    key = (
        tuple(story.post_id for story in news.stories),
        news.more,
        tuple(p.partnership_id for p in news.partnerships),
        news.cities,
        bool(subscriber.city_ids),
        subscriber.frequency,
        settings.public_base_url,
    )
    return _template(key, lambda: render_digest(news, subscriber, settings))


def _template(key: tuple, render: Callable[[], mail.MessageTemplate]) -> mail.MessageTemplate:
    with _templates_lock:
        if key in _templates:
            _templates.move_to_end(key)
            return _templates[key]
    template = render()
    with _templates_lock:
        _templates[key] = template
        while len(_templates) > TEMPLATES_KEPT:
            _templates.popitem(last=False)
    return template


def render_digest(
    news: digests.Digest, subscriber: Subscriber, settings: MailSettings
) -> mail.MessageTemplate:
    headers = mail.ListHeaders(
        mail.feedback_id("digest", subscriber.frequency), mail.list_id(settings.sender)
    )
    return mail.MessageTemplate(
        settings.sender,
        mail.render("digest", **digest(news, subscriber, settings)),
        (UNSUBSCRIBE_MARK, PREFERENCES_MARK),
        headers,
    )


def personalize(
    template: mail.MessageTemplate,
    subscriber: Subscriber,
    message_id: str,
    settings: MailSettings,
) -> bytes:
    token = settings.tokens.make("unsubscribe", subscriber.id, subscriber.email)
    unsubscribe = f"{settings.public_base_url}/unsubscribe/{token}"
    preferences_url = settings.link("preferences", subscriber)
    mailto = settings.mailto(token)  # the same token: the mailbox unsubscribes its bearer
    links = {UNSUBSCRIBE_MARK: unsubscribe, PREFERENCES_MARK: preferences_url}
    if template.usable:
        header = mail.list_unsubscribe(unsubscribe, mailto)
        return template.fill(subscriber.email, message_id, header, links)

    def fill(text: str) -> str:  # the slow path, should a template ever split a mark
        for mark, url in links.items():
            text = text.replace(mark, url)
        return text

    rendered = template.rendered
    return mail.build_message(
        sender=settings.sender,
        recipient=subscriber.email,
        rendered=mail.Rendered(rendered.subject, fill(rendered.text), fill(rendered.html)),
        message_id=message_id,
        unsubscribe_url=unsubscribe,
        unsubscribe_mailto=mailto,
        headers=template.headers,
    )


def campaign_context(campaign: Campaign, settings: MailSettings) -> dict:
    """A campaign's context: the same for its whole audience (its links are marks)."""
    return {
        "campaign_id": campaign.id,
        "subject": campaign.subject,
        "body_html": campaign.body_html,
        "body_text": campaign.body_text,
        "site_url": settings.public_base_url,
        "unsubscribe_url": UNSUBSCRIBE_MARK,
        "preferences_url": PREFERENCES_MARK,
    }


def campaign_template(campaign: Campaign, settings: MailSettings) -> mail.MessageTemplate:
    """A campaign rendered and encoded once per process and version (a batch of its
    audience, a preview, a test all fill in the same one)."""
    key = ("campaign", campaign.id, campaign.updated_at, settings.public_base_url)
    return _template(key, lambda: render_campaign(campaign, settings))


def render_campaign(campaign: Campaign, settings: MailSettings) -> mail.MessageTemplate:
    headers = mail.ListHeaders(
        mail.feedback_id("campaign", str(campaign.id)),
        mail.list_id(settings.sender, "announcements"),
    )
    return mail.MessageTemplate(
        settings.sender,
        mail.render("campaign", **campaign_context(campaign, settings)),
        (UNSUBSCRIBE_MARK, PREFERENCES_MARK),
        headers,
    )


def campaign_message(
    campaign: Campaign, subscriber: Subscriber, message_id: str, settings: MailSettings
) -> bytes:
    """One subscriber's copy of a campaign, with their own unsubscribe and preferences links
    (and the List-Unsubscribe headers RFC 8058 asks for)."""
    return personalize(campaign_template(campaign, settings), subscriber, message_id, settings)


def campaign_test(campaign: Campaign, address: str, settings: MailSettings) -> Email:
    """A staff member's test copy, sent to their own address and never on the ledger. Its
    personal links name no subscriber (id 0), so they change nothing if followed."""
    nobody = Subscriber(id=0, email=address)
    message_id = f"<campaign-test.{campaign.id}.{uuid.uuid4().hex}@{settings.domain}>"
    data = campaign_message(campaign, nobody, message_id, settings)
    return Email("campaign_test", None, address, mail.envelope_address(settings.sender), data)

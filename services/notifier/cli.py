"""`sistercities notifier ...`: staff commands for subscribers and digests, and the
unsubscribe mailbox."""

from __future__ import annotations

import json
import sys

import click


@click.group(name="notifier")
def notifier_cli() -> None:
    """Subscribers, their digests and campaigns."""


@notifier_cli.command("stats")
def stats_command() -> None:
    """Subscribers by status and frequency, deliveries by status."""
    from services.notifier.tasks import subscriber_stats

    click.echo(json.dumps(subscriber_stats.run(), indent=2))


@notifier_cli.command("preview")
@click.argument("email")
def preview_command(email: str) -> None:
    """Print the digest EMAIL would get now (the whole message), without sending it."""
    from services.notifier.tasks import preview_digest

    preview = _staff_call(preview_digest, email)
    count = preview["stories"]
    what = "piece of news" if count == 1 else "pieces of news"
    click.echo(f"{count} {what} for {preview['email']} ({preview['status']})\n")
    click.echo(preview["message"])


@notifier_cli.command("send")
@click.argument("frequency", type=click.Choice(["weekly", "daily"]))
def send_command(frequency: str) -> None:
    """Send FREQUENCY's digests now, through the workers (one per subscriber and period)."""
    from services.notifier.tasks import record_send_request, schedule_digests

    record_send_request(frequency)
    handed_out = schedule_digests.run(frequency, every=True)
    click.echo(
        f"{handed_out['deliveries']} digests handed to the notifier workers "
        f"in {handed_out['batches']} batches"
    )


@notifier_cli.group("digests")
def digests_cli() -> None:
    """Digests marked sent whose acceptance by the mail server was never recorded."""


@digests_cli.command("unconfirmed")
@click.option("--period", help="Only this period (weekly:2026-W48, daily:2026-11-28)")
def unconfirmed_command(period: str | None) -> None:
    """List digests sent, not acknowledged (what a crash at a message's last line may have
    lost), by period. Rows marked in the last few minutes are left out (a send under way)."""
    from services.notifier.tasks import list_unconfirmed_digests

    listed = _staff_call(list_unconfirmed_digests, period)
    for each in listed["periods"]:
        click.echo(f"{each['period']}: {each['count']} sent, not acknowledged")
        for delivery in each["deliveries"]:
            click.echo(
                f"  delivery {delivery['id']}  subscriber {delivery['subscriber_id']}  "
                f"sent {delivery['sent_at']}  {delivery['message_id']}"
            )
    if not listed["periods"]:
        click.echo("no digest sent and not acknowledged")


@digests_cli.command("resend-unconfirmed")
@click.option("--period", required=True, help="The period to re-send (weekly:2026-W48)")
@click.option("--yes", is_flag=True, help="Do not ask first")
def resend_unconfirmed_command(period: str, yes: bool) -> None:
    """Send PERIOD's digests sent, not acknowledged, again: each once at most, with its
    original Message-ID (receiving mailboxes drop a copy they already hold) and content."""
    from services.notifier.tasks import list_unconfirmed_digests, resend_unconfirmed_digests

    count = _staff_call(list_unconfirmed_digests, period)["total"]
    if count == 0:
        click.echo(f"no digest of {period} sent and not acknowledged")
        return
    if not yes:
        what = "digest" if count == 1 else "digests"
        click.confirm(f"Send {count} {what} of {period} again, with their Message-IDs?", abort=True)
    outcome = _staff_call(resend_unconfirmed_digests, period)
    click.echo(
        f"{outcome['resent']} re-sent, {outcome['skipped']} skipped (re-sent by someone else, "
        f"or nothing left to send), {outcome['failed']} refused by the mail server"
    )


@notifier_cli.group("campaigns")
def campaigns_cli() -> None:
    """ "Take Action" announcements: write, look, send (as the workspace does)."""


@campaigns_cli.command("list")
@click.option("--status", type=click.Choice(["draft", "scheduled", "sending", "sent"]))
@click.option("--page", type=click.IntRange(min=1), default=1, show_default=True)
def campaigns_list_command(status: str | None, page: int) -> None:
    """Campaigns, newest first, with their deliveries by status."""
    from services.notifier.tasks import list_campaigns

    listed = _staff_call(list_campaigns, status, page)
    for campaign in listed["campaigns"]:
        click.echo(_campaign_line(campaign))
    if not listed["campaigns"]:
        click.echo("no campaign")
    elif listed["total"] > page * listed["per_page"]:
        click.echo(f"(page {page}; more with --page {page + 1})")


@campaigns_cli.command("show")
@click.argument("campaign_id", type=int)
def campaigns_show_command(campaign_id: int) -> None:
    """One campaign: its line, audience, who it would reach now, and its text."""
    from services.notifier.tasks import get_campaign

    campaign = _staff_call(get_campaign, campaign_id)
    click.echo(_campaign_line(campaign))
    click.echo(f"audience: {_audience_words(campaign['audience'])}")
    click.echo(f"reaches now: {campaign['audience_size']} confirmed subscribers")
    click.echo("")
    click.echo(campaign["body_text"])


@campaigns_cli.command("create")
@click.option("--subject", required=True)
@click.option(
    "--body-file",
    type=click.File("r", encoding="utf-8"),
    required=True,
    help="The Markdown body ('-' reads standard input)",
)
@click.option("--city", "city_ids", type=int, multiple=True, help="Followers of this city id")
@click.option("--country", "country_codes", multiple=True, help="Followers of its cities (FR)")
@click.option("--sisters", is_flag=True, help="And of those cities' sister cities")
def campaigns_create_command(
    subject: str, body_file, city_ids: tuple[int, ...], country_codes: tuple[str, ...], sisters
) -> None:
    """A draft campaign; without --city or --country it is for every confirmed subscriber."""
    from services.notifier.tasks import create_campaign

    audience = {
        "city_ids": list(city_ids),
        "country_codes": list(country_codes),
        "sisters": sisters,
    }
    created = _staff_call(create_campaign, subject, body_file.read(), audience)
    click.echo(f"campaign {created['id']} created (draft): {created['subject']}")


@campaigns_cli.command("send")
@click.argument("campaign_id", type=int)
@click.option("--at", help="Send at this time (2026-12-24T09:00:00+00:00), not now")
@click.option("--yes", is_flag=True, help="Do not ask first")
def campaigns_send_command(campaign_id: int, at: str | None, yes: bool) -> None:
    """Send a draft campaign now through the workers, or schedule it (each subscriber once)."""
    from services.notifier.tasks import get_campaign, schedule_campaign

    campaign = _staff_call(get_campaign, campaign_id)
    if not yes:
        when = f"at {at}" if at else "now"
        click.confirm(
            f'Send campaign {campaign_id} "{campaign["subject"]}" {when} to '
            f"{campaign['audience_size']} confirmed subscribers (as counted now)?",
            abort=True,
        )
    scheduled = _staff_call(schedule_campaign, campaign_id, at)
    if at:
        click.echo(f"campaign {campaign_id} scheduled for {scheduled['scheduled_at']}")
    else:
        click.echo(f"campaign {campaign_id} handed to the notifier workers")


@campaigns_cli.command("unschedule")
@click.argument("campaign_id", type=int)
def campaigns_unschedule_command(campaign_id: int) -> None:
    """A scheduled campaign back to a draft (before its time comes)."""
    from services.notifier.tasks import unschedule_campaign

    _staff_call(unschedule_campaign, campaign_id)
    click.echo(f"campaign {campaign_id} is a draft again")


def _campaign_line(campaign: dict) -> str:
    deliveries = ", ".join(f"{n} {status}" for status, n in sorted(campaign["deliveries"].items()))
    when = campaign["sent_at"] or campaign["scheduled_at"] or campaign["created_at"]
    line = f"{campaign['id']:>5}  {campaign['status']:<9}  {when[:16]}  {campaign['subject']}"
    return f"{line}  ({deliveries})" if deliveries else line


def _audience_words(audience: dict) -> str:
    parts = [f"city {i}" for i in audience.get("city_ids") or []]
    parts += [f"country {code}" for code in audience.get("country_codes") or []]
    if not parts:
        return "every confirmed subscriber"
    sisters = " and their sister cities" if audience.get("sisters") else ""
    return f"followers of {', '.join(parts)}{sisters}"


def _staff_call(task, *args) -> dict:
    """A task run in this process, its refusal or a server that is down told in one line."""
    from shared.errors import ServiceError, TransientError

    try:
        return task.run(*args)
    except ServiceError as error:
        raise click.ClickException(error.message) from None
    except TransientError as error:
        raise click.ClickException(str(error)) from None


@notifier_cli.command("mailbox")
@click.option("--host", help="Listen on this address  [default: MAILBOX_HOST, 127.0.0.1]")
@click.option("--port", type=int, help="Listen on this port  [default: MAILBOX_PORT, 2525]")
def mailbox_command(host: str | None, port: int | None) -> None:
    """Run the SMTP server that takes mail to unsubscribe@ (the List-Unsubscribe mailto)."""
    from services.notifier.config import load_mailbox_settings
    from services.notifier.mailbox import serve
    from shared.logs import configure_logging
    from shared.settings import ConfigError

    try:
        settings = load_mailbox_settings()
    except ConfigError as error:
        click.echo(f"sistercities: {error}", err=True)
        sys.exit(2)  # as every other process stops on bad settings
    configure_logging(settings, "mailbox")
    serve(settings, host or settings.mailbox_host, port or settings.mailbox_port)


@notifier_cli.command("unsubscribe-key")
def unsubscribe_key_command() -> None:
    """Print UNSUBSCRIBE_KEY for the mailbox: derived from SECRET_KEY, it checks unsubscribe
    tokens and signs nothing else, so the mailbox never holds SECRET_KEY."""
    from services.notifier.config import load_settings
    from shared.settings import ConfigError

    try:
        click.echo(load_settings().unsubscribe_key())
    except ConfigError as error:
        raise click.ClickException(str(error)) from None

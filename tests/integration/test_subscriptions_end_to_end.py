"""Subscribing end to end with real workers and a real SMTP server: the confirmation mail, its
link followed through the gateway, a digest sent on staff's request with the news the blog
announced, one-click unsubscribe from the digest's own header, bad input refused, and
staff's re-send of a digest sent and never acknowledged."""

import re
from datetime import timedelta

import pytest

from shared.events import publish
from tests.conftest import count_rows
from tests.notifier.conftest import add_unconfirmed_digest
from tests.stack import wait_for

pytestmark = pytest.mark.integration

BASE = "http://sistercities.test"
# What a browser sends with a form from this site's own page (the public forms carry no token).
SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin"}


def link_path(text: str, kind: str) -> str:
    match = re.search(rf"{re.escape(BASE)}(/{kind}/[A-Za-z0-9_.\-]+)", text)
    assert match, text
    return match.group(1)


def csrf_token_of(page) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


def confirm_by_page(client, path: str):
    """Follow a confirmation link as a person does: open the page, press its button."""
    page = client.get(path)
    assert page.status_code == 200 and "Confirm my subscription" in page.text, page.text
    return client.post(path, data={"csrf_token": csrf_token_of(page)})


def announce_story(engines, post_id: int, city_ids: list[int], title: str | None = None) -> None:
    """The blog announces a story through its outbox, as it does after linking it."""
    from services.blog.models import Base as BlogBase
    from shared.db import make_session_factory, session_scope

    with session_scope(make_session_factory(engines["blog"])) as session:
        publish(session, BlogBase.metadata, "blog.post_published", {
            "id": post_id, "title": title or f"Twinning news {post_id}",
            "excerpt": "Delegates met…",
            "url": f"https://medium.com/p/{post_id:012x}", "image": None, "author": "A",
            "published_at": "2026-11-27T10:00:00+00:00", "reading_minutes": 1, "tags": [],
            "city_ids": city_ids, "feed_id": None,
        })  # fmt: skip


def test_subscribe_confirm_digest_unsubscribe(
    client, stack, admin_headers, clean_databases, mail_sink
):
    address = "ada.lovelace@example.org"
    for _ in range(2):  # the second answer is the same, and sends nothing more
        response = client.post("/api/v1/subscriptions", json={"email": address})
        assert (response.status_code, response.json) == (202, {"status": "pending"})
    wait_for(lambda: mail_sink.to(address), what="the confirmation mail")
    (confirmation,) = mail_sink.to(address)
    message = confirmation.message
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert b"List-Unsubscribe: <http://sistercities.test/unsubscribe/" in confirmation.data
    confirm_path = link_path(message.get_body(("plain",)).get_content(), "subscriptions/confirm")

    page = confirm_by_page(client, confirm_path)
    assert page.status_code == 200 and "Subscription confirmed" in page.text
    assert address in page.text
    assert client.get(confirm_path + "x").status_code == 400

    announce_story(clean_databases, 4242, [1])
    wait_for(lambda: count_rows(clean_databases["notifier"], "SELECT count(*) FROM stories") == 1,
             what="the notifier to learn of the story")  # fmt: skip
    preview = client.get(f"/api/v1/admin/digests/preview?email={address}", headers=admin_headers)
    assert preview.status_code == 200 and preview.json["stories"] == 1
    assert client.get("/api/v1/admin/digests/preview?email=nobody@example.org",
                      headers=admin_headers).status_code == 404  # fmt: skip

    response = client.post("/api/v1/admin/digests/send", json={"frequency": "weekly"},
                           headers=admin_headers)  # fmt: skip
    assert response.status_code == 202
    wait_for(lambda: len(mail_sink.to(address)) == 2, what="the digest")
    digest = mail_sink.to(address)[1].message
    assert "Twinning news 4242" in digest.get_body(("html",)).get_content()
    # Asked again in the same period: nothing more is sent.
    client.post("/api/v1/admin/digests/send", json={"frequency": "weekly"}, headers=admin_headers)
    stats = client.get("/api/v1/admin/subscribers/stats", headers=admin_headers).json
    assert stats["by_status"] == {"confirmed": 1} and stats["deliveries"] == {"sent": 1}
    assert len(mail_sink.to(address)) == 2

    # RFC 8058: the mail client POSTs to the List-Unsubscribe address, nothing else.
    one_click = digest["List-Unsubscribe"][1:].split(">")[0].removeprefix(BASE)
    assert "Unsubscribe?" not in client.get(one_click).text  # a page that asks first
    response = client.post(one_click, data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200 and "Unsubscribed" in response.text
    stats = client.get("/api/v1/admin/subscribers/stats", headers=admin_headers).json
    assert stats["by_status"] == {"unsubscribed": 1}


def test_preferences_through_the_signed_link(client, stack, clean_databases, mail_sink):
    address = "grace@example.org"
    client.post("/api/v1/subscriptions", json={"email": address, "frequency": "daily",
                                               "city_ids": [5, 6]})  # fmt: skip
    wait_for(lambda: mail_sink.to(address), what="the confirmation mail")
    text = mail_sink.to(address)[0].message.get_body(("plain",)).get_content()
    page = confirm_by_page(client, link_path(text, "subscriptions/confirm"))
    preferences = re.search(r'href="(/preferences/[^"]+)"', page.text).group(1)
    form = client.get(preferences)
    assert form.status_code == 200
    assert 'name="city_ids" value="5"' in form.text and 'name="city_ids" value="6"' in form.text
    token = csrf_token_of(form)
    forged = client.post(preferences, data={"frequency": "weekly", "city_ids": "7"})
    assert forged.status_code == 400 and "reload the page" in forged.text
    saved = client.post(
        preferences, data={"frequency": "weekly", "city_ids": "7", "csrf_token": token}
    )
    assert saved.status_code == 200 and "Saved." in saved.text and 'value="7"' in saved.text
    bad = client.post(
        preferences, data={"frequency": "hourly", "city_ids": "", "csrf_token": token}
    )
    assert bad.status_code == 400


@pytest.mark.parametrize(
    "body",
    [{"email": "a@b.c\r\nBcc: x@y.z"}, {"email": "x" * 300 + "@example.org"},
     {"email": "not-an-address"}, {"email": "ada@example.org", "frequency": "hourly"},
     {"email": "ada@example.org", "city_ids": ["1"]}, {}],
)  # fmt: skip
def test_bad_subscriptions_are_refused_and_nothing_is_reflected(client, stack, body):
    response = client.post("/api/v1/subscriptions", json=body)
    assert response.status_code == 400
    assert "Bcc: x@y.z" not in response.text and "<" not in response.text


def test_forged_and_unknown_tokens_get_a_clear_page(client, stack, caplog):
    for path in ["/unsubscribe/forged", "/preferences/forged", "/subscriptions/confirm/<b>x<b>"]:
        response = client.get(path)
        assert response.status_code == 400 and "This link does not work" in response.text
        assert "<b>" not in response.text
    assert client.post("/unsubscribe/forged").status_code == 400
    access = [str(record.msg) for record in caplog.records if record.name == "gateway.access"]
    assert access and all("forged" not in line for line in access)  # tokens stay out of logs
    assert any("/unsubscribe/<token>" in line for line in access)


def test_the_notifier_learns_the_names_of_followed_cities(
    client, stack, services, clean_databases, mail_sink
):
    from tests.conftest import add_test_cities

    ids = add_test_cities(
        clean_databases["directory"], [("Ruritania Falls", "US", 40.0, -100.0, 5)]
    )
    wait_for(lambda: services.call("directory.search_cities", "Ruritania Falls")["results"],
             what="the directory to know the city")  # fmt: skip
    client.post("/api/v1/subscriptions", json={"email": "names@example.org", "city_ids": ids})
    names = "SELECT count(*) FROM known_cities WHERE name = 'Ruritania Falls'"
    wait_for(lambda: count_rows(clean_databases["notifier"], names) == 1,
             what="the notifier to learn the followed city's name from the directory")  # fmt: skip


def test_a_confirmation_link_asks_before_it_confirms_and_confirms_once(
    client, stack, clean_databases, mail_sink
):
    """Mail scanners open every link in a message: opening it must not subscribe anyone, and
    an old link must not subscribe again whoever left."""
    address = "scanned@example.org"
    client.post("/api/v1/subscriptions", json={"email": address})
    (confirmation,) = wait_for(lambda: mail_sink.to(address), what="the confirmation mail")
    text = confirmation.message.get_body(("plain",)).get_content()
    confirm_path = link_path(text, "subscriptions/confirm")
    status = "SELECT count(*) FROM subscribers WHERE status = :status"

    for _ in range(2):  # a scanner, then the person
        page = client.get(confirm_path)
        assert page.status_code == 200 and "Confirm your subscription" in page.text
        assert address in page.text and 'method="post"' in page.text
    assert count_rows(clean_databases["notifier"], status, status="pending") == 1
    forged = client.post(confirm_path)  # no CSRF token: not from the page
    assert forged.status_code == 400
    assert count_rows(clean_databases["notifier"], status, status="pending") == 1

    token = csrf_token_of(page)
    confirmed = client.post(confirm_path, data={"csrf_token": token})
    assert confirmed.status_code == 200 and "Subscription confirmed" in confirmed.text
    again = client.post(confirm_path, data={"csrf_token": token})
    assert again.status_code == 200 and "Already confirmed" in again.text
    assert "Already confirmed" in client.get(confirm_path).text

    unsubscribe = re.search(r'href="(/unsubscribe/[^"]+)"', client.get(
        re.search(r'href="(/preferences/[^"]+)"', confirmed.text).group(1)
    ).text).group(1)  # fmt: skip
    client.post(unsubscribe, data={"List-Unsubscribe": "One-Click"})
    late = client.post(confirm_path, data={"csrf_token": token})
    assert late.status_code == 400 and "already used" in late.text
    assert count_rows(clean_databases["notifier"], status, status="unsubscribed") == 1


def confirmed_subscriber(client, mail_sink, address: str, city_ids: list[int]) -> None:
    client.post("/api/v1/subscriptions", json={"email": address, "city_ids": city_ids})
    wait_for(lambda: mail_sink.to(address), what="the confirmation mail")
    text = mail_sink.to(address)[0].message.get_body(("plain",)).get_content()
    confirm_by_page(client, link_path(text, "subscriptions/confirm"))
    mail_sink.clear()


def test_a_confirmed_subscriber_who_follows_a_city_gets_a_link_that_adds_it(
    gateway_app, stack, clean_databases, mail_sink
):
    address = "ada@example.org"
    confirmed_subscriber(gateway_app.test_client(), mail_sink, address, [5])
    # The city page's form, as a confirmed subscriber would send it from another browser;
    # the page answers as it does for anyone, and this time a mail really follows.
    client = gateway_app.test_client()
    with clean_databases["notifier"].begin() as connection:
        connection.exec_driver_sql("UPDATE subscribers SET confirmation_sent_at = NULL")
    form = {"email": address, "frequency": "weekly", "city_ids": "6"}
    answer = client.post("/subscribe", data=form)
    assert answer.status_code == 303
    wait_for(lambda: mail_sink.to(address), what="the follow mail")
    (follow_mail,) = mail_sink.to(address)
    assert follow_mail.message["Feedback-ID"] == "follow:weekly:sistercities"
    path = link_path(follow_mail.message.get_body(("plain",)).get_content(), "follow")
    asked = client.get(path)
    assert asked.status_code == 200 and "Add to my digest" in asked.text
    added = client.post(path, data={"csrf_token": csrf_token_of(asked)})
    assert added.status_code == 200 and "Added to your digest" in added.text
    preferences = re.search(r'href="(/preferences/[^"]+)"', added.text).group(1)
    form = client.get(preferences).text
    assert 'name="city_ids" value="5"' in form and 'name="city_ids" value="6"' in form
    assert client.post(path + "x", data={"csrf_token": csrf_token_of(asked)}).status_code == 400


def test_the_browser_that_just_opened_its_link_adds_a_city_at_once(
    client, gateway_app, stack, clean_databases, mail_sink
):
    address, other = "ada@example.org", "grace@example.org"
    confirmed_subscriber(gateway_app.test_client(), mail_sink, other, [5])
    confirmed_subscriber(client, mail_sink, address, [5])
    with clean_databases["notifier"].begin() as connection:
        connection.exec_driver_sql("UPDATE subscribers SET confirmation_sent_at = NULL")
    form = {"email": "ada@EXAMPLE.org", "frequency": "weekly", "city_ids": "6"}
    answer = client.post("/subscribe", data=form, headers=SAME_ORIGIN)
    assert answer.status_code == 200 and "Added to your digest" in answer.text
    preferences = re.search(r'href="(/preferences/[^"]+)"', answer.text).group(1)
    followed = client.get(preferences).text
    assert 'name="city_ids" value="5"' in followed and 'name="city_ids" value="6"' in followed
    with clean_databases["notifier"].connect() as connection:
        mailed = connection.exec_driver_sql(
            "SELECT email FROM subscribers WHERE confirmation_sent_at IS NOT NULL"
        ).all()
    assert mailed == []  # no link mail asked for

    # Another address typed in this browser goes the usual way: a mail to that address.
    form = {**form, "email": other, "city_ids": "7"}
    usual = client.post("/subscribe", data=form, headers=SAME_ORIGIN)
    assert usual.status_code == 303
    wait_for(lambda: mail_sink.to(other), what="the follow mail to the other address")


def test_a_lost_preferences_link_is_mailed_to_a_confirmed_address_only(
    client, stack, clean_databases, mail_sink
):
    address = "grace@example.org"
    confirmed_subscriber(client, mail_sink, address, [])
    with clean_databases["notifier"].begin() as connection:
        connection.exec_driver_sql("UPDATE subscribers SET confirmation_sent_at = NULL")
    page = client.get("/subscribe")
    assert "Email me my preferences link" in page.text and "csrf_token" not in page.text
    # Sent from another site, the form is refused and nothing is mailed.
    for forged in (
        {"Sec-Fetch-Site": "cross-site"},
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
    ):
        refused = client.post(
            "/subscribe/preferences-link", data={"email": address}, headers=forged
        )
        assert refused.status_code == 403 and "did not come from this site" in refused.text
    with clean_databases["notifier"].connect() as connection:
        asked = connection.exec_driver_sql(
            "SELECT count(*) FROM subscribers WHERE confirmation_sent_at IS NOT NULL"
        ).scalar_one()
    assert asked == 0
    answers = [
        client.post("/subscribe/preferences-link", data={"email": who}, headers=SAME_ORIGIN)
        for who in ("nobody@example.org", address)
    ]  # fmt: skip
    # The same answer whether the address is subscribed or not.
    assert [(a.status_code, a.headers["Location"]) for a in answers] == [
        (303, "/subscribe/preferences-link-sent")
    ] * 2
    assert "Check your inbox" in client.get("/subscribe/preferences-link-sent").text
    wait_for(lambda: mail_sink.to(address), what="the preferences link")
    text = mail_sink.to(address)[0].message.get_body(("plain",)).get_content()
    assert client.get(link_path(text, "preferences")).status_code == 200
    assert mail_sink.to("nobody@example.org") == []
    bad = client.post("/subscribe/preferences-link", data={"email": "not-an-address"})
    assert bad.status_code == 400 and "not a valid email address" in bad.text


def test_staff_see_and_resend_digests_sent_and_not_acknowledged(
    client, stack, admin_headers, clean_databases, mail_sink
):
    period = "weekly:2026-W48"
    message_id = add_unconfirmed_digest(
        clean_databases["notifier"], "lost@example.org", period, timedelta(minutes=10)
    )
    listed = client.get("/api/v1/admin/digests/unconfirmed", headers=admin_headers)
    assert listed.status_code == 200, listed.text
    assert listed.json["total"] == 1 and listed.json["settling_minutes"] == 5
    (each,) = listed.json["periods"]
    assert (each["period"], each["count"]) == (period, 1)
    assert each["deliveries"][0]["message_id"] == message_id
    other = client.get("/api/v1/admin/digests/unconfirmed?period=daily:2026-11-28",
                       headers=admin_headers)  # fmt: skip
    assert other.json["total"] == 0
    bad = client.get("/api/v1/admin/digests/unconfirmed?period=W48", headers=admin_headers)
    assert bad.status_code == 400

    url = "/api/v1/admin/digests/resend-unconfirmed"
    response = client.post(url, json={"period": period}, headers=admin_headers)
    assert response.status_code == 200, response.text
    assert response.json == {"period": period, "resent": 1, "skipped": 0, "failed": 0}
    (mail,) = mail_sink.to("lost@example.org")
    assert mail.message["Message-ID"] == message_id
    assert (
        "Lyon and Beersheba sign their charter" in mail.message.get_body(("plain",)).get_content()
    )
    again = client.post(url, json={"period": period}, headers=admin_headers)
    assert again.json["resent"] == 0 and len(mail_sink.received) == 1
    listed = client.get("/api/v1/admin/digests/unconfirmed", headers=admin_headers)
    assert listed.json == {"total": 0, "settling_minutes": 5, "periods": []}
    assert client.post(url, json={}, headers=admin_headers).status_code == 400

"""The subscriber's pages: the plain pages mail links lead to (confirm, one-click unsubscribe,
preferences, follow a city), and the form that mails a lost preferences link. The notifier
checks every token. They are documented with the API (tag Pages): mail clients and scanners
call them too. The subscribe form itself is public (``public.py``)."""

from __future__ import annotations

from apiflask import APIBlueprint
from flask import redirect, render_template, request, url_for

from services.gateway.calls import call
from services.gateway.input_limits import FREQUENCIES
from services.gateway.site import subscriber_link
from services.gateway.site.city_names import followed_cities
from services.gateway.web.rate_limits import SUBSCRIBE, rate_limited
from services.gateway.web.security import csrf_exempt, same_origin_form
from shared.errors import ServiceError

bp = APIBlueprint("subscriber_pages", __name__, tag="Pages")

HTML = {"text/html": {"schema": {"type": "string"}}}
PAGE = {
    200: {"description": "An HTML page", "content": HTML},
    400: {"description": "The link is not valid (an HTML page saying so)", "content": HTML},
}


def _page(template: str, status: int = 200, **context):
    return render_template(f"subscriptions/{template}.html", **context), status


def _link_error(error: ServiceError):
    if error.status >= 500:
        raise error
    return _page("message", error.status, heading="This link does not work", text=error.message)


@bp.get("/subscriptions/confirm/<token>")
@bp.doc(summary="Page: asks before confirming (the mailed link)", tags=["Pages"], responses=PAGE)
def confirm_page(token: str):
    """Mail scanners follow the links in mail: opening the link only asks."""
    try:
        subscriber = call("notifier.check_confirmation_link", token)
    except ServiceError as error:
        return _link_error(error)
    if subscriber["status"] == "confirmed":
        return _already_confirmed(subscriber)
    return _page("confirm", email=subscriber["email"], frequency=subscriber["frequency"])


@bp.post("/subscriptions/confirm/<token>")
@bp.doc(summary="Confirm a subscription (the page's button)", tags=["Pages"], responses=PAGE)
def confirm(token: str):
    try:
        subscriber = call("notifier.confirm_subscription", token)
    except ServiceError as error:
        return _link_error(error)
    subscriber_link.remember(subscriber)
    if not subscriber["confirmed_now"]:
        return _already_confirmed(subscriber)
    return _page(
        "message",
        heading="Subscription confirmed",
        text=f"Digests will go to {subscriber['email']}, {subscriber['frequency']}.",
        preferences_url=f"/preferences/{subscriber['preferences_token']}",
    )


def _already_confirmed(subscriber: dict):
    return _page(
        "message",
        heading="Already confirmed",
        text=f"This link was used: digests already go to {subscriber['email']}.",
        preferences_url=(
            f"/preferences/{subscriber['preferences_token']}"
            if "preferences_token" in subscriber
            else None
        ),
    )


@bp.get("/unsubscribe/<token>")
@bp.doc(summary="Page: asks before unsubscribing", tags=["Pages"], responses=PAGE)
def unsubscribe_page(token: str):
    try:
        subscriber = call("notifier.check_unsubscribe_link", token)
    except ServiceError as error:
        return _link_error(error)
    return _page("unsubscribe", email=subscriber["email"])


@bp.post("/unsubscribe/<token>")
@csrf_exempt
@bp.doc(summary="One-click unsubscribe (RFC 8058)", tags=["Pages"], responses=PAGE)
def unsubscribe(token: str):
    """RFC 8058 one-click: mail clients POST ``List-Unsubscribe=One-Click`` here, with no
    session and no CSRF token; the signed token is the authority."""
    try:
        subscriber = call("notifier.cancel_subscription", token)
    except ServiceError as error:
        return _link_error(error)
    return _page(
        "message",
        heading="Unsubscribed",
        text=f"No more digests will go to {subscriber['email']}.",
    )


@bp.route("/follow/<token>", methods=["GET", "POST"])
@bp.doc(
    summary="Page: asks before adding a follow link's cities; its button adds them",
    tags=["Pages"],
    responses=PAGE,
)
def follow(token: str):
    """Mail scanners follow the links in mail: opening the link only asks."""
    adding = request.method == "POST"
    try:
        subscriber = call(
            "notifier.follow_cities" if adding else "notifier.check_follow_link", token
        )
    except ServiceError as error:
        return _link_error(error)
    if not adding:
        return _page("follow", email=subscriber["email"], adds=followed_cities(subscriber["adds"]))
    subscriber_link.remember(subscriber)
    return added_page(subscriber)


def added_page(subscriber: dict):
    """Cities added to a subscriber's digest: by a follow link, or at once (``public``)."""
    adds = followed_cities(subscriber["adds"])
    return _page(
        "message",
        heading="Added to your digest",
        text=f"Digests to {subscriber['email']} now bring the stories about "
        f"{', '.join(city['name'] for city in adds)}.",
        preferences_url=f"/preferences/{subscriber['preferences_token']}",
    )


@bp.post("/subscribe/preferences-link")
@same_origin_form
@rate_limited(SUBSCRIBE, methods=["POST"])
@bp.doc(
    summary="Mail a lost preferences link (the subscribe page's form)",
    tags=["Pages"],
    responses=PAGE,
)
def preferences_link():
    """The answer is the same whether the address is subscribed or not."""
    address = request.form.get("email", "")[:320]
    try:
        call("notifier.request_preferences_link", address)
    except ServiceError as error:
        if error.status >= 500:
            raise
        return render_template(
            "pages/subscribe.html",
            form={},
            frequencies=FREQUENCIES,
            link_form={"email": address},
            link_error=error.message,
        ), 400
    # Post/redirect/get: reloading the next page does not ask again.
    return redirect(url_for("subscriber_pages.preferences_link_sent"), 303)


@bp.get("/subscribe/preferences-link-sent")
@bp.doc(summary="Page: where a lost preferences link went", tags=["Pages"], responses=PAGE)
def preferences_link_sent():
    return _page(
        "message",
        heading="Check your inbox",
        text=(
            "If this address has a confirmed subscription, its preferences link is on its "
            "way. One mail with a link goes to an address every 10 minutes at most: if you "
            "asked a moment ago, use the link sent then."
        ),
    )


@bp.route("/preferences/<token>", methods=["GET", "POST"])
@bp.doc(summary="Page: frequency and followed cities", tags=["Pages"], responses=PAGE)
def preferences(token: str):
    try:
        if request.method == "POST":
            subscriber = call(
                "notifier.update_preferences",
                token,
                request.form.get("frequency", ""),
                _city_ids(request.form.getlist("city_ids")),
            )
        else:
            subscriber = call("notifier.get_preferences", token)
    except ServiceError as error:
        return _link_error(error)
    subscriber_link.remember({"preferences_token": token})
    return _page(
        "preferences",
        saved=request.method == "POST",
        email=subscriber["email"],
        subscription_status=subscriber["status"],
        frequency=subscriber["frequency"],
        frequencies=FREQUENCIES,
        followed=followed_cities(subscriber["city_ids"]),
        unsubscribe_url=f"/unsubscribe/{subscriber['unsubscribe_token']}",
    )


def _city_ids(values: list[str]) -> list[int] | list[str]:
    """Ids from the form; anything else goes to the notifier as it is, to be refused there."""
    parts = [part.strip() for part in values if part.strip()]
    if all(part.isdigit() and len(part) < 11 for part in parts):
        return [int(part) for part in parts]
    return parts

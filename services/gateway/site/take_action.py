"""The public "Take Action" pages: the announcements (campaigns) staff sent, latest first,
each on its own page, and the latest on the home page beside the Donate link. Cached whole
(``web/page_cache.py``) in the notifier's generation, which moves when a campaign is sent
(its ``notifier.campaign_sent`` event)."""

from __future__ import annotations

from apiflask import APIBlueprint
from flask import abort, render_template, request

from services.gateway.calls import call
from services.gateway.input_limits import MAX_ID
from services.gateway.web.page_cache import cached_page
from shared.errors import ServiceError

bp = APIBlueprint("take_action", __name__, enable_openapi=False)

PAGE_SIZE = 20
MAX_PAGE = 10_000


def latest_campaign() -> dict | None:
    """The latest sent campaign for the home page; None when there is none or the notifier
    cannot answer now (the section then shows the rest)."""
    try:
        found = call("notifier.list_sent_campaigns", cached=True, page=1, per_page=1)
    except ServiceError as error:
        if error.status < 500:
            raise
        return None
    return found["campaigns"][0] if found["campaigns"] else None


@bp.get("/take-action")
@cached_page(query=("page",))
def archive():
    text = request.args.get("page", "1")
    page = int(text) if text.isascii() and text.isdigit() and len(text) < 6 else 0
    if not 1 <= page <= MAX_PAGE:
        abort(404)
    found = call("notifier.list_sent_campaigns", cached=True, page=page, per_page=PAGE_SIZE)
    more = found["total"] > page * PAGE_SIZE
    return render_template("pages/take_action.html", found=found, page=page, more=more)


@bp.get("/take-action/<int:campaign_id>")
@cached_page()
def campaign(campaign_id: int):
    if campaign_id > MAX_ID:
        abort(404)
    found = call("notifier.get_sent_campaign", cached=True, campaign_id=campaign_id)
    return render_template("pages/campaign.html", campaign=found)

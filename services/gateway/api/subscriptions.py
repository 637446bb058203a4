"""The subscriptions API: subscribe to the digest. The pages a subscriber's mail links lead to
are the site's (``site/subscriptions.py``)."""

from __future__ import annotations

from apiflask import APIBlueprint, Schema
from apiflask.fields import Integer, List, String
from apiflask.validators import Length, OneOf

from services.gateway.calls import call
from services.gateway.input_limits import FREQUENCIES, ID
from services.gateway.web.rate_limits import SUBSCRIBE, rate_limited

bp = APIBlueprint("subscriptions", __name__, tag="Subscriptions")


class SubscriptionIn(Schema):
    email = String(
        required=True, validate=Length(min=3, max=254), metadata={"example": "ada@example.org"}
    )
    frequency = String(load_default="weekly", validate=OneOf(FREQUENCIES))
    city_ids = List(
        Integer(strict=True, validate=ID),
        load_default=list,
        validate=Length(max=50),
        metadata={"description": "Cities to follow (and their sisters); empty for all the news"},
    )


class SubscriptionOut(Schema):
    status = String(required=True, metadata={"description": "Always pending: check your inbox"})


@bp.post("/api/v1/subscriptions")
@rate_limited(SUBSCRIBE, methods=["POST"])
@bp.input(SubscriptionIn, arg_name="body")
@bp.output(SubscriptionOut, status_code=202)
@bp.doc(summary="Subscribe to the digest (a confirmation mail follows)", responses=[400, 503])
def subscribe(body: dict):
    return call("notifier.create_subscription", body["email"], body["frequency"], body["city_ids"])

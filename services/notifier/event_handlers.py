"""How the notifier applies other services' events to its own copy of the facts."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete
from sqlalchemy.orm import Session

from services.notifier.models import SisterLink


def on_partnership_changed(session: Session, payload: dict[str, Any], _envelope: dict) -> None:
    partnership = payload["partnership"]
    session.execute(delete(SisterLink).where(SisterLink.partnership_id == partnership["id"]))
    if payload["change"] == "deleted":
        return
    city_a, city_b = partnership["city_ids"]
    for city_id, sister_city_id in ((city_a, city_b), (city_b, city_a)):
        session.add(
            SisterLink(
                partnership_id=partnership["id"],
                city_id=city_id,
                sister_city_id=sister_city_id,
                status=partnership["status"],
            )
        )


HANDLERS = {"directory.partnership_changed": on_partnership_changed}

"""One history of every service's audit log, for the admin API and the workspace pages: each
service answers for its own entries (``<service>.list_audit_entries``), asked together, merged
newest first (``shared.audit.merge_pages``)."""

from __future__ import annotations

from services.gateway.calls import call_many
from shared import audit
from shared.errors import ServiceError
from shared.routing import SERVICES


def merged_history(
    kind: str | None = None, object_id: str | None = None, cursor: str | None = None, limit=50
) -> dict:
    """``{"results", "next_cursor", "unavailable"}``: a service that does not answer is named
    in ``unavailable`` and its entries are missing; when none answers, its error is raised."""
    if object_id is not None and kind is None:
        raise ServiceError("invalid", "id needs its kind")
    params = {"kind": kind, "object_id": object_id, "cursor": cursor or None, "limit": limit}
    outcomes = call_many([(f"{service}.list_audit_entries", (), params) for service in SERVICES])
    pages, unavailable = [], []
    for service, (outcome, _seconds) in zip(SERVICES, outcomes, strict=True):
        if isinstance(outcome, ServiceError):
            if outcome.status < 500:
                raise outcome  # a bad cursor: every service says the same
            unavailable.append(service)
        else:
            pages.append(outcome["results"])
    if len(unavailable) == len(SERVICES):
        raise outcomes[0][0]
    return {**audit.merge_pages(pages, limit), "unavailable": unavailable}

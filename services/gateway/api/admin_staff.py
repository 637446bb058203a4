"""Admin API: staff accounts and sessions (through the staff service) and the audit log,
one history merged from every service's own."""

from __future__ import annotations

from apiflask import APIBlueprint, Schema
from apiflask.fields import Boolean, Dict, Integer, List, Nested, String
from apiflask.validators import Length, OneOf, Range, Regexp

from services.gateway.api.admin_auth import ADMIN, admin_auth
from services.gateway.api.admin_schemas import Deleted
from services.gateway.audit_history import merged_history
from services.gateway.calls import call
from services.gateway.web.staff_auth import CSRF_HEADER, Principal, csrf_token
from shared import audit
from shared.errors import Forbidden, ServiceError

bp = APIBlueprint("admin_staff", __name__, tag="Staff", url_prefix="/api/v1/admin")

ROLES = ("editor", "admin")
ID = Range(min=1, max=2**31 - 1)
MOMENT = {"format": "date-time"}


class StaffOut(Schema):
    id = Integer(required=True)
    email = String(required=True)
    name = String(required=True)
    role = String(required=True, metadata={"description": "editor or admin"})
    has_password = Boolean(required=True)
    disabled = Boolean(required=True)
    created_at = String(required=True, metadata=MOMENT)


class StaffList(Schema):
    results = List(Nested(StaffOut), required=True)


class StaffIn(Schema):
    email = String(required=True, validate=Length(min=3, max=254))
    role = String(required=True, validate=OneOf(ROLES))
    name = String(load_default=None, allow_none=True, validate=Length(max=200))


class StaffPatch(Schema):
    role = String(validate=OneOf(ROLES))
    disabled = Boolean(metadata={"description": "true: no more sign-ins, sessions end now"})


class MeOut(Schema):
    actor = Dict(keys=String(), values=String(), required=True)
    role = String(required=True)
    staff = Nested(StaffOut, allow_none=True, required=True)
    session_id = Integer(allow_none=True, required=True)
    csrf_token = String(
        allow_none=True,
        required=True,
        metadata={
            "description": f"Send it as {CSRF_HEADER} with every change made with the "
            "session cookie"
        },
    )


class SessionOut(Schema):
    id = Integer(required=True)
    staff_id = Integer(required=True)
    method = String(required=True, metadata={"description": "link or password"})
    created_at = String(required=True, metadata=MOMENT)
    expires_at = String(required=True, metadata=MOMENT)
    last_seen_at = String(required=True, metadata=MOMENT)
    user_agent = String(required=True)
    client = String(required=True)


class SessionList(Schema):
    results = List(Nested(SessionOut), required=True)


class SessionsQuery(Schema):
    staff_id = Integer(
        load_default=None,
        validate=ID,
        metadata={"description": "Whose sessions (admins); yours by default"},
    )


class AuditQuery(Schema):
    kind = String(
        load_default=None,
        validate=Regexp(audit.KIND, error="a word of lower-case letters, such as partnership"),
        metadata={
            "description": "The kind of object: partnership, city, import, feed, "
            "subscriber, digest, staff"
        },
    )
    id = String(
        load_default=None,
        validate=Length(min=1, max=audit.OBJECT_ID_CHARS),
        metadata={"description": "The object's id (with kind)"},
    )
    cursor = String(load_default=None, validate=Length(max=500))
    limit = Integer(load_default=50, validate=Range(min=1, max=audit.MAX_PAGE))


class AuditEntry(Schema):
    service = String(required=True)
    id = Integer(required=True)
    occurred_at = String(required=True, metadata=MOMENT)
    actor = Dict(
        keys=String(),
        values=String(),
        required=True,
        metadata={
            "description": '{"id": "staff:12" | "token:admin" | "cli:USER" | '
            '"subscriber:ID" | "system", "name"}'
        },
    )
    action = String(required=True, metadata={"example": "partnership.created"})
    object = Dict(keys=String(), values=String(), required=True)
    summary = Dict(
        required=True, metadata={"description": "What changed (before and after for edits)"}
    )
    request_id = String(allow_none=True)


class AuditPage(Schema):
    results = List(Nested(AuditEntry), required=True)
    next_cursor = String(allow_none=True, required=True)
    unavailable = List(
        String(),
        required=True,
        metadata={"description": "Services that did not answer: their entries are missing"},
    )


# A schema that is a route's whole answer is met by apispec (routes by path, then in the
# order declared here) before one that nests it; the other way round it warns of a schema
# added twice.
@bp.post("/staff")
@bp.auth_required(admin_auth, roles=ADMIN)
@bp.input(StaffIn, arg_name="body")
@bp.output(StaffOut, status_code=201)
@bp.doc(
    summary="Give someone an account (admins); they sign in by mailed link",
    responses=[400, 409, 503],
)
def add_staff(body: dict):
    return call("staff.add_member", body["email"], body["role"], body["name"])


@bp.patch("/staff/<int:staff_id>")
@bp.auth_required(admin_auth, roles=ADMIN)
@bp.input(StaffPatch, arg_name="body")
@bp.output(StaffOut)
@bp.doc(summary="Change a member's role, or disable them (admins)", responses=[400, 404, 503])
def update_staff(staff_id: int, body: dict):
    return call("staff.update_member", staff_id, body)


@bp.delete("/staff/sessions/<int:session_id>")
@bp.auth_required(admin_auth)
@bp.output(Deleted)
@bp.doc(summary="End a session now: yours, or (admins) anyone's", responses=[403, 404, 503])
def revoke_session(session_id: int):
    principal: Principal = admin_auth.current_user
    owner = None if principal.role == "admin" else principal.staff["id"]
    ended = call("staff.revoke_session", session_id, owner)
    return {"deleted": ended["id"]}


@bp.get("/staff/me")
@bp.auth_required(admin_auth)
@bp.output(MeOut)
@bp.doc(summary="Who is asking, and the CSRF token of a staff session", responses=[503])
def me():
    principal: Principal = admin_auth.current_user
    return {
        "actor": principal.actor,
        "role": principal.role,
        "staff": principal.staff,
        "session_id": principal.session_id,
        "csrf_token": csrf_token(principal.session_token) if principal.by_session else None,
    }


@bp.get("/staff")
@bp.auth_required(admin_auth, roles=ADMIN)
@bp.output(StaffList)
@bp.doc(summary="Every staff member (admins)", responses=[503])
def list_staff():
    return call("staff.list_members")


@bp.get("/staff/sessions")
@bp.auth_required(admin_auth)
@bp.input(SessionsQuery, location="query", arg_name="query")
@bp.output(SessionList)
@bp.doc(summary="Open sessions: yours, or (admins) a member's", responses=[400, 403, 503])
def list_sessions(query: dict):
    principal: Principal = admin_auth.current_user
    staff_id = query["staff_id"]
    if staff_id is None:
        if principal.staff is None:
            raise ServiceError("invalid", "the admin token has no sessions: give staff_id")
        staff_id = principal.staff["id"]
    elif principal.role != "admin" and staff_id != principal.staff["id"]:
        raise Forbidden("only admins see another member's sessions")
    return call("staff.list_sessions", staff_id)


@bp.get("/audit")
@bp.auth_required(admin_auth)
@bp.input(AuditQuery, location="query", arg_name="query")
@bp.output(AuditPage)
@bp.doc(
    summary="Who changed what and when: one history of every service's audit log",
    description=(
        "Newest first; `kind` and `id` narrow it to one object (a partnership, a feed, a "
        "staff member...). Pass `next_cursor` back as `cursor` for the next page. A service "
        "that does not answer is named in `unavailable` and its entries are missing."
    ),
    responses=[400, 503],
)
def audit_log(query: dict):
    return merged_history(query["kind"], query["id"], query["cursor"], query["limit"])

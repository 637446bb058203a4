"""Bad input on every operation of the API, as the OpenAPI document lists them, with the real
services behind the gateway: huge, empty, unicode, control characters, wrong types, XSS strings,
unknown ids, a wrong or missing admin token. Whatever comes in, the answer is never a 500,
every error has the one shape, and no script sent in comes back as markup.

Each kind of bad input is one test; each operation of the document is a subtest of it, so an
operation added to the API is held to all of this at once (with a valid request in VALID)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

pytestmark = pytest.mark.integration

# Valid parts of a request to each operation that takes input; bad input replaces one part.
# ``{city}`` and ``{sister}`` are filled in with cities the test makes.
CAMPAIGN = {
    "subject": "Act now",
    "body": "Write to the **mayor**.",
    "audience": {"city_ids": ["{city}"], "country_codes": ["FR"], "sisters": True},
}
VALID: dict[tuple[str, str], dict] = {
    ("GET", "/api/v1/cities"): {"query": {"q": "Alphaville", "country": "FR", "limit": "5"}},
    ("GET", "/api/v1/cities/{city_id}"): {"query": {"sort": "name"}},
    ("GET", "/api/v1/cities/{city_id}/suggestions"): {"query": {"limit": "3"}},
    ("GET", "/api/v1/posts"): {"query": {"tag": "travel", "limit": "5", "city_id": "{city}"}},
    ("POST", "/api/v1/subscriptions"): {
        "json": {"email": "ada@example.org", "frequency": "weekly", "city_ids": ["{city}"]}
    },
    ("POST", "/api/v1/admin/partnerships"): {
        "json": {"city_id": "{city}", "sister_city_id": "{sister}", "since": 1990}
    },
    ("PATCH", "/api/v1/admin/partnerships/{partnership_id}"): {
        "json": {"status": "inactive", "notes": "renewed in 2020", "source": "city council"}
    },
    # Never sent as it is: every test replaces it (the blog fetches the feeds it accepts).
    ("POST", "/api/v1/admin/feeds"): {"json": {"url": "http://127.0.0.1:9/feed.xml"}},
    ("GET", "/api/v1/admin/digests/preview"): {"query": {"email": "ada@example.org"}},
    ("POST", "/api/v1/admin/digests/send"): {"json": {"frequency": "weekly"}},
    ("GET", "/api/v1/admin/digests/unconfirmed"): {"query": {"period": "weekly:2026-W48"}},
    ("GET", "/api/v1/admin/subscribers"): {"query": {"q": "ada@", "before": 10, "limit": 20}},
    ("POST", "/api/v1/admin/digests/resend-unconfirmed"): {"json": {"period": "weekly:2026-W48"}},
    ("POST", "/api/v1/admin/partnerships/import"): {
        "files": {"file": "city_a,country_a,city_b,country_b\nAlphaville,France,Betaburg,Germany\n"}
    },
    ("DELETE", "/api/v1/admin/feeds/{feed_id}"): {"query": {"stories": "keep"}},
    ("PUT", "/api/v1/admin/cities/{city_id}"): {
        "json": {"population": 1000, "region": "Île-de-France", "alternate_names": ["Alpha"]}
    },
    # Merges the test's first city into its second: sent again, a 409.
    ("POST", "/api/v1/admin/cities/{city_id}/merge"): {"json": {"into": "{sister}"}},
    ("PUT", "/api/v1/admin/feeds/{feed_id}/cities"): {"json": {"city_ids": ["{city}"]}},
    ("PUT", "/api/v1/admin/feeds/{feed_id}/paused"): {"json": {"paused": True}},
    ("POST", "/api/v1/admin/posts/{post_id}/cities"): {"json": {"city_id": "{city}"}},
    ("PUT", "/api/v1/admin/posts/{post_id}/hidden"): {"json": {"hidden": True}},
    ("PUT", "/api/v1/admin/posts/{post_id}/featured"): {"json": {"featured": True}},
    ("GET", "/api/v1/admin/campaigns"): {"query": {"status": "draft", "page": "1"}},
    ("POST", "/api/v1/admin/campaigns"): {"json": CAMPAIGN},
    ("PUT", "/api/v1/admin/campaigns/{campaign_id}"): {"json": CAMPAIGN},
    ("GET", "/api/v1/admin/campaigns/{campaign_id}/preview"): {"query": {"email": "a@b.org"}},
    ("POST", "/api/v1/admin/campaigns/{campaign_id}/test"): {"json": {"email": "a@b.org"}},
    # A time far enough ahead that the beat never sends it.
    ("POST", "/api/v1/admin/campaigns/{campaign_id}/send"): {
        "json": {"at": "2099-01-01T09:00:00+00:00"}
    },
    ("GET", "/api/v1/admin/audit"): {"query": {"kind": "partnership", "id": "1", "limit": "5"}},
    ("GET", "/api/v1/admin/staff/sessions"): {"query": {"staff_id": "1"}},
    ("POST", "/api/v1/admin/staff"): {
        "json": {"email": "eve@example.org", "role": "editor", "name": "Eve"}
    },
    ("PATCH", "/api/v1/admin/staff/{staff_id}"): {"json": {"role": "editor", "disabled": False}},
    # The blog fetches what it adds: the discard port, where nothing answers.
    ("POST", "/api/v1/admin/feeds/opml"): {
        "files": {
            "file": '<opml version="2.0"><head/><body><outline type="rss" text="Twinning" '
            'xmlUrl="http://127.0.0.1:9/feed/opml.xml"/></body></opml>'
        }
    },
}

UNICODE = ["Zürich — 東京 🌍", "\u202eevil.exe", "e\u0301" * 40, "ﷺ" * 20]
# JSON can carry a lone surrogate (as \ud83c); it is not text any database can store.
UNICODE_JSON_ONLY = ["\ud83c"]
CONTROL = ["\x00", "nul\x00inside", "\x1b[31mred\x1b[0m", "line\r\nX-Injected: 1", "\x7f\x08\x07"]
XSS = [
    "<script>alert(1)</script>",
    '"><script>alert(document.cookie)</script>',
    "<img src=x onerror=alert(1)>",
    "javascript:alert(1)//<svg onload=alert(1)>",
]
MARKUP = ("<script", "<img", "<svg")
# Feed addresses the blog may fetch go to the discard port here: nothing answers.
LOCAL_FEED = "http://127.0.0.1:9/feed/"


@dataclass
class Operation:
    method: str
    path: str
    admin: bool
    path_params: dict[str, str]
    query_params: dict[str, dict]
    body_kind: str | None  # "json", "files" or None
    body_properties: dict[str, dict] = field(default_factory=dict)
    body_required: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def int_path_params(self) -> list[str]:
        return [
            name for name, schema in self.path_params.items() if schema.get("type") == "integer"
        ]


def api_operations(spec: dict) -> list[Operation]:
    """Every operation of the document but the pages (they answer people, in HTML)."""
    found = []
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if "Pages" in operation.get("tags", []):
                continue
            parameters = operation.get("parameters", [])
            content = operation.get("requestBody", {}).get("content", {})
            body_kind, schema = None, {}
            if "application/json" in content:
                body_kind, schema = "json", content["application/json"]["schema"]
            elif "multipart/form-data" in content:
                body_kind, schema = "files", content["multipart/form-data"]["schema"]
            schema = _resolved(spec, schema)
            found.append(
                Operation(
                    method=method.upper(),
                    path=path,
                    # The admin API's scheme (/metrics has a token of its own).
                    admin={"BearerAuth": []} in operation.get("security", []),
                    path_params={p["name"]: p["schema"] for p in parameters if p["in"] == "path"},
                    query_params={p["name"]: p["schema"] for p in parameters if p["in"] == "query"},
                    body_kind=body_kind,
                    body_properties=schema.get("properties", {}),
                    body_required=schema.get("required", []),
                )
            )
    return found


def _resolved(spec: dict, schema: dict) -> dict:
    if "$ref" in schema:
        return spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


@dataclass
class Api:
    """Sends requests to one operation: valid ones, or valid but for one bad part."""

    client: object
    admin_headers: dict[str, str]
    ids: dict[str, int]
    max_body: int

    def valid_parts(self, operation: Operation) -> dict:
        parts = VALID.get((operation.method, operation.path), {})
        return _fill(parts, self.ids)

    def url(self, operation: Operation, **path_values) -> str:
        url = operation.path
        for name in operation.path_params:
            default = self.ids["service"] if name == "service" else self.ids.get(name, 1)
            url = url.replace("{" + name + "}", str(path_values.get(name, default)))
        return url

    def send(self, operation: Operation, *, headers=None, path=None, query=None, **body):
        """``body``: json=..., data=..., or files=... (name: text or bytes)."""
        parts = self.valid_parts(operation)
        headers = self.admin_headers if headers is None else headers
        kwargs: dict = {"headers": headers, "query_string": parts.get("query", {})}
        if query is not None:
            kwargs["query_string"] = query
        if body:
            kwargs.update(_encode_body(body))
        elif operation.body_kind == "json":
            kwargs["json"] = parts["json"]
        elif operation.body_kind == "files":
            kwargs.update(_encode_body({"files": parts["files"]}))
        return self.client.open(
            self.url(operation, **(path or {})), method=operation.method, **kwargs
        )


def _fill(value, ids: dict[str, int]):
    if isinstance(value, dict):
        return {key: _fill(item, ids) for key, item in value.items()}
    if isinstance(value, list):
        return [_fill(item, ids) for item in value]
    if value == "{city}":
        return ids["city_id"]
    if value == "{sister}":
        return ids["sister_id"]
    return value


BOUNDARY = "bad-input-boundary"


def _encode_body(body: dict) -> dict:
    """``files`` encoded here rather than by the test client, whose encoder leaves a temporary
    file open when the upload is large."""
    if "files" not in body:
        return body
    encoded = b""
    for name, value in body["files"].items():
        content = value.encode("utf-8", "surrogatepass") if isinstance(value, str) else value
        encoded += (
            (
                f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"; '
                'filename="partnerships.csv"\r\nContent-Type: text/csv\r\n\r\n'
            ).encode()
            + content
            + b"\r\n"
        )
    encoded += f"--{BOUNDARY}--\r\n".encode()
    return {"data": encoded, "content_type": f"multipart/form-data; boundary={BOUNDARY}"}


def assert_sane(operation: Operation, response, sent: str = "") -> None:
    """Never a 500; an error has the one shape; nothing sent in comes back as markup."""
    text = response.get_data(as_text=True)
    assert response.status_code < 500, f"{operation.label} {sent!r}: {response.status_code} {text}"
    if response.status_code >= 400:
        assert response.mimetype == "application/json", (operation.label, sent, text)
        assert set(response.json) == {"error"}, text
        assert set(response.json["error"]) == {"code", "message"}, text
    for markup in MARKUP:
        assert markup not in text, f"{operation.label} {sent!r} came back as markup: {text}"


def assert_error(operation, response, status: int, code: str, sent="") -> dict:
    assert_sane(operation, response, sent)
    assert response.status_code == status, (operation.label, sent, response.json)
    assert response.json["error"]["code"] == code, (operation.label, sent, response.json)
    return response.json["error"]


@pytest.fixture
def api(three_cities, client, admin_headers, gateway_app) -> Iterator[Api]:
    city, sister, third = three_cities
    made = client.post(
        "/api/v1/admin/partnerships",
        json={"city_id": city, "sister_city_id": third},
        headers=admin_headers,
    )
    assert made.status_code == 201, made.json
    campaign = client.post(
        "/api/v1/admin/campaigns", json=_fill(CAMPAIGN, {"city_id": city}), headers=admin_headers
    )
    assert campaign.status_code == 201, campaign.json
    ids = {
        "city_id": city,
        "sister_id": sister,
        "partnership_id": made.json["id"],
        "campaign_id": campaign.json["id"],
        "service": "directory",
    }
    yield Api(client, admin_headers, ids, gateway_app.config["MAX_CONTENT_LENGTH"])


@pytest.fixture
def operations(client) -> list[Operation]:
    return api_operations(client.get("/api/openapi.json").json)


def test_every_operation_that_takes_input_has_a_valid_request_here(operations):
    missing = [
        op.label
        for op in operations
        if (op.query_params or op.body_kind) and (op.method, op.path) not in VALID
    ]
    assert missing == [], "add a valid request for these to VALID"


def test_a_huge_body_is_a_413_and_a_huge_parameter_a_400(api, operations, subtests):
    huge_text = "a" * (api.max_body + 10)
    for op in operations:
        with subtests.test(op.label):
            if op.body_kind == "json":
                response = api.send(op, json={"text": huge_text})
                assert_error(op, response, 413, "payload_too_large")
            elif op.body_kind == "files":
                response = api.send(op, files={"file": huge_text})
                assert_error(op, response, 413, "payload_too_large")
            for name, schema in op.query_params.items():
                digits = schema.get("type") == "integer" or "integer" in schema.get("type", [])
                value = "9" * 5000 if digits else "x" * 5000
                query = {**api.valid_parts(op).get("query", {}), name: value}
                error = assert_error(op, api.send(op, query=query), 400, "invalid_request", name)
                assert name in error["message"]
                assert value not in error["message"]


def test_an_empty_body_or_parameter_is_refused_or_ignored_never_a_500(api, operations, subtests):
    for op in operations:
        with subtests.test(op.label):
            if op.body_kind == "json":
                # The document makes no body required; fields may be.
                for empty in (b"", b"null", b"{}"):
                    response = api.send(op, data=empty, content_type="application/json")
                    if op.body_required:
                        error = assert_error(op, response, 400, "invalid_request", repr(empty))
                        named = "the body" if empty == b"null" else op.body_required[0]
                        assert named in error["message"], error
                    else:
                        assert_sane(op, response, repr(empty))
            elif op.body_kind == "files":
                response = api.send(op, data=b"", content_type="multipart/form-data")
                assert_error(op, response, 400, "invalid_request")
                assert_sane(op, api.send(op, files={"file": ""}))
            for name in op.query_params:
                query = {**api.valid_parts(op).get("query", {}), name: ""}
                assert_sane(op, api.send(op, query=query), f"{name}=")


def _bad_strings_everywhere(api, operations, subtests, values, json_only=()):
    """Each value in each string the operation takes: query, path, JSON fields, the file."""
    for op in operations:
        with subtests.test(op.label):
            for value in values:
                for name in op.query_params:
                    query = {**api.valid_parts(op).get("query", {}), name: value}
                    assert_sane(op, api.send(op, query=query), f"{name}={value}")
                for name in op.path_params:
                    if "\x00" not in value and "/" not in value:
                        assert_sane(op, api.send(op, path={name: value}), f"{{{name}}}={value}")
            for value in [*values, *json_only]:
                if op.body_kind == "json":
                    body = api.valid_parts(op)["json"]
                    for name, schema in op.body_properties.items():
                        bad = [value] if schema.get("type") == "array" else value
                        if name == "url":
                            # The blog fetches a feed address it accepts: on this machine only.
                            bad = f"{LOCAL_FEED}{value}"
                        response = api.send(op, json={**body, name: bad})
                        assert_sane(op, response, f"{name}: {bad!r}")
                elif op.body_kind == "files":
                    csv = f"city_a,country_a,city_b,country_b\n{value},France,{value},Germany\n"
                    response = api.send(op, files={"file": csv})
                    assert_sane(op, response, f"file: {value!r}")


def test_unicode_anywhere_is_never_a_500(api, operations, subtests):
    _bad_strings_everywhere(api, operations, subtests, UNICODE, json_only=UNICODE_JSON_ONLY)


def test_control_characters_anywhere_are_never_a_500(api, operations, subtests):
    _bad_strings_everywhere(api, operations, subtests, CONTROL)


def test_scripts_sent_in_never_come_back_as_markup(api, operations, subtests):
    _bad_strings_everywhere(api, operations, subtests, XSS)


WRONG_TYPES = {
    "string": [12345, 1.5, True, [], {}],
    "integer": ["12", 1.5, True, [], {}, "<script>alert(1)</script>"],
    "array": ["1,2", 7, {}, [[1]], ["<script>alert(1)</script>"]],
}


def _wrong_values(schema: dict) -> list:
    """Values of another type than the schema's; text in a list is right for a list of names."""
    wrong = WRONG_TYPES.get(_json_type(schema), [])
    if _json_type(schema.get("items") or {}) == "string":
        wrong = [value for value in wrong if not _texts(value)]
    return wrong


def _texts(value) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _json_type(schema: dict) -> str | None:
    kinds = schema.get("type")
    kinds = [kinds] if isinstance(kinds, str) else kinds or []
    return next((kind for kind in kinds if kind != "null"), None)


def test_wrong_types_are_400s_that_name_the_field(api, operations, subtests):
    for op in operations:
        with subtests.test(op.label):
            if op.body_kind == "json":
                body = api.valid_parts(op)["json"]
                for name, schema in op.body_properties.items():
                    for wrong in _wrong_values(schema):
                        response = api.send(op, json={**body, name: wrong})
                        error = assert_error(
                            op, response, 400, "invalid_request", f"{name}={wrong}"
                        )
                        assert name in error["message"], error
                for not_an_object in ([body], "text", 42, True):
                    response = api.send(op, json=not_an_object)
                    assert_error(op, response, 400, "invalid_request", repr(not_an_object))
            for name, schema in op.query_params.items():
                if _json_type(schema) == "integer":
                    for wrong in ("abc", "1.5", "1e3", "0x10", "-", "<script>"):
                        query = {**api.valid_parts(op).get("query", {}), name: wrong}
                        error = assert_error(
                            op, api.send(op, query=query), 400, "invalid_request", wrong
                        )
                        assert name in error["message"], error


def test_unknown_and_impossible_ids_are_404s(api, operations, subtests):
    for op in operations:
        with subtests.test(op.label):
            for name in op.int_path_params:
                for unknown in (2**31 - 1, 2**31, 10**30, 0):
                    response = api.send(op, path={name: unknown})
                    assert_error(op, response, 404, "not_found", f"{name}={unknown}")
            if "service" in op.path_params:
                assert_error(op, api.send(op, path={"service": "nowhere"}), 404, "not_found")


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-token-wrong-token"},
        {"Authorization": "Bearer "},
        {"Authorization": "Bearer test-admin-token-0123456789x"},
        {"Authorization": "bearer"},
        {"Authorization": "Basic dGVzdDp0ZXN0"},
        {"Authorization": "Bearer <script>alert(1)</script>"},
    ],
    ids=["missing", "wrong", "empty", "longer", "no-token", "basic", "script"],
)
def test_every_admin_operation_needs_the_admin_token(api, operations, subtests, headers):
    admin = [op for op in operations if op.admin]
    assert len(admin) >= 9
    for op in admin:
        with subtests.test(op.label):
            error = assert_error(op, api.send(op, headers=headers), 401, "unauthorized")
            assert "admin token" in error["message"]


@pytest.mark.parametrize(
    ("method", "path", "sent", "problem"),
    [
        ("POST", "/api/v1/subscriptions", {"json": {"email": "a\x00@example.org"}}, "NUL"),
        ("PATCH", "/api/v1/admin/partnerships/1", {"json": {"notes": "\x00"}}, "NUL"),
        ("PATCH", "/api/v1/admin/partnerships/1", {"json": {"notes": "\ud83c"}}, "surrogate"),
        ("POST", "/api/v1/admin/feeds", {"json": {"url": "http://a.example/\ud83c"}}, "surrogate"),
    ],
    ids=["nul-in-email", "nul-in-notes", "surrogate-in-notes", "surrogate-in-url"],
)
def test_json_text_that_no_service_can_keep_is_a_400(client, admin_headers, method, path, sent,
                                                    problem):  # fmt: skip
    response = client.open(path, method=method, headers=admin_headers, **sent)
    assert response.status_code == 400, response.json
    assert response.json["error"]["code"] == "invalid_request"
    assert problem in response.json["error"]["message"]

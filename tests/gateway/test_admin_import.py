"""Staff's CSV upload of partnerships through the admin API, with the real workers: the command
line's import and its report as JSON; sending the file again changes nothing; bad rows named
by their line; the token and the body limit."""

import io

import pytest

from services.directory.import_lock import LOCK_KEY
from services.gateway.app import create_app
from services.gateway.config import GatewaySettings
from tests.conftest import TWIN_CITIES, add_test_cities, count_rows, needs_twin_cities
from tests.stack import wait_for

pytestmark = pytest.mark.integration

URL = "/api/v1/admin/partnerships/import"
SUBSET_ROWS = 300
PARTNERSHIPS = "SELECT count(*) FROM partnerships"
CITIES = "SELECT count(*) FROM cities"
NEWS = "SELECT count(*) FROM partnership_news"
EVENTS = "SELECT count(*) FROM outbox_events WHERE event_type = 'directory.partnership_changed'"


def upload(client, headers, content: bytes | str, name: str = "partnerships.csv"):
    if isinstance(content, str):
        content = content.encode()
    return client.post(
        URL,
        data={"file": (io.BytesIO(content), name, "text/csv")},
        headers=headers,
        content_type="multipart/form-data",
    )


@pytest.fixture
def impatient_client(stack_env, stack):
    """A gateway whose ordinary calls give up after 50 ms: the import must not be one."""
    app = create_app(GatewaySettings.from_env({**stack_env, "SERVICE_TIMEOUT": "0.05"}))
    return app.test_client()


@needs_twin_cities
def test_the_real_file_imports_and_importing_it_again_changes_nothing(
    impatient_client, admin_headers, clean_databases
):
    with TWIN_CITIES.open(encoding="utf-8") as handle:
        subset = "".join(line for _, line in zip(range(SUBSET_ROWS + 1), handle, strict=False))
    directory, notifier = clean_databases["directory"], clean_databases["notifier"]
    news_before = count_rows(notifier, NEWS)

    first = upload(impatient_client, admin_headers, subset, "twin_cities.csv")
    assert first.status_code == 200, first.json
    report = first.json
    assert report["rows_read"] == SUBSET_ROWS
    assert report["partnerships_created"] > SUBSET_ROWS // 2
    assert report["rows_read"] == (
        report["partnerships_created"]
        + report["partnerships_already_present"]
        + len(report["rejected"])
    )
    # An empty directory: every place is made from the file's coordinates, once.
    assert report["cities_created"] == count_rows(directory, CITIES) > 0
    assert count_rows(directory, PARTNERSHIPS) == report["partnerships_created"]
    # Announced as the command line's import announces them, and heard by the notifier.
    assert count_rows(directory, EVENTS) == report["partnerships_created"]
    wait_for(
        lambda: count_rows(notifier, NEWS) == news_before + report["partnerships_created"],
        timeout=30,
        what="the notifier to hear of every new partnership",
    )

    again = upload(impatient_client, admin_headers, subset, "twin_cities.csv").json
    assert again["partnerships_created"] == 0
    assert again["cities_created"] == 0
    assert again["partnerships_already_present"] == (
        report["partnerships_created"] + report["partnerships_already_present"]
    )
    assert again["rejected"] == report["rejected"]
    assert count_rows(directory, PARTNERSHIPS) == report["partnerships_created"]
    assert count_rows(directory, CITIES) == report["cities_created"]
    assert count_rows(directory, EVENTS) == report["partnerships_created"]


NATIVE = """city_a,country_a,city_b,country_b,since,status,source,notes
Alphaville,France,Betaburg,Germany,1990,active,city council,
Betaburg,Germany,Alphaville,France,,,,
Alphaville,France,Gammaton,United States,soon,,,
Alphaville,France,Atlantis City,Atlantis,,,,
Alphaville,France,Alphaville,France,,,,
Nowhere Town,France,Betaburg,Germany,,,,
Gammaton,United States,Betaburg,Germany,2001,proposed,,<script>alert(1)</script>
"""


def test_bad_rows_are_reported_with_their_line_and_never_stop_the_import(
    client, stack, admin_headers, clean_databases
):
    add_test_cities(
        clean_databases["directory"],
        [("Alphaville", "FR", 48.8, 2.3, 120_000), ("Betaburg", "DE", 52.5, 13.4, 90_000),
         ("Gammaton", "US", 44.9, -93.2, 400_000)],
    )  # fmt: skip
    response = upload(client, admin_headers, NATIVE, "native.csv")
    assert response.status_code == 200, response.json
    assert response.json == {
        "rows_read": 7,
        "partnerships_created": 2,
        "partnerships_already_present": 1,
        "cities_matched": 8,
        "cities_created": 0,
        "rejected": [
            {"line": 4, "reason": "since is not a year: 'soon'"},
            {"line": 5, "reason": "unknown country 'Atlantis'"},
            {"line": 6, "reason": "both sides are the same city"},
            {"line": 7, "reason": "no city 'Nowhere Town' in France; give its coordinates"},
        ],
    }
    with clean_databases["directory"].connect() as conn:
        stored = sorted(
            map(tuple, conn.exec_driver_sql("SELECT since, status, source FROM partnerships"))
        )
    # A row without a source is credited to the file it came in.
    assert stored == [(1990, "active", "city council"), (2001, "proposed", "native.csv")]


def test_one_import_at_a_time(client, stack, admin_headers, redis_client, clean_databases):
    add_test_cities(
        clean_databases["directory"],
        [("Alphaville", "FR", 48.8, 2.3, 120_000), ("Betaburg", "DE", 52.5, 13.4, 90_000)],
    )
    under_way = redis_client.lock(LOCK_KEY, timeout=30)
    assert under_way.acquire(blocking=False)
    try:
        refused = upload(client, admin_headers, NATIVE)
    finally:
        under_way.release()
    assert refused.status_code == 409
    assert "another partnership import is under way" in refused.json["error"]["message"]
    assert count_rows(clean_databases["directory"], PARTNERSHIPS) == 0

    done = upload(client, admin_headers, NATIVE)
    assert done.status_code == 200 and done.json["partnerships_created"] == 1
    # The lock went with the import.
    assert redis_client.exists(LOCK_KEY) == 0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("name,country\nParis,France\n", "unrecognised header"),
        ("", "unrecognised header"),
        ("city_a,country_a,city_b,country_b\nK\xf8ge,Denmark,Paris,France\n".encode("latin-1"),
         "not UTF-8"),
    ],
    ids=["other-columns", "empty", "latin-1"],
)  # fmt: skip
def test_a_file_that_is_not_a_partnership_csv_is_a_400(
    client, stack, admin_headers, content, message
):
    response = upload(client, admin_headers, content)
    assert response.status_code == 400, response.json
    assert response.json["error"]["code"] == "invalid_request"
    assert message in response.json["error"]["message"]


def test_the_file_field_is_required(client, admin_headers):
    response = client.post(
        URL, data={"other": "x"}, headers=admin_headers, content_type="multipart/form-data"
    )
    assert response.status_code == 400
    assert "file" in response.json["error"]["message"]


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong-token-wrong-token"}],
    ids=["missing", "wrong"],
)
def test_the_import_needs_the_admin_token(client, headers, clean_databases):
    response = upload(client, headers, NATIVE)
    assert response.status_code == 401
    assert response.json["error"]["code"] == "unauthorized"
    assert count_rows(clean_databases["directory"], PARTNERSHIPS) == 0


def test_a_file_over_the_body_limit_is_a_413(client, admin_headers, gateway_app):
    limit = gateway_app.config["MAX_CONTENT_LENGTH"]
    huge = NATIVE.encode() + b"Paris,France,Rome,Italy,,,,\n" * (limit // 28)
    # Encoded here: the test client spools a big form to a file it leaves open when the
    # gateway refuses to read it.
    boundary = "sistercities-test-boundary"
    body = (
        (
            f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="file"; filename="huge.csv"\r\n'
            "Content-Type: text/csv\r\n\r\n"
        ).encode()
        + huge
        + f"\r\n--{boundary}--\r\n".encode()
    )
    response = client.post(
        URL,
        data=body,
        headers=admin_headers,
        content_type=f"multipart/form-data; boundary={boundary}",
    )
    assert response.status_code == 413
    assert response.json["error"]["code"] == "payload_too_large"


def test_the_import_is_in_the_openapi_document(client):
    spec = client.get("/api/openapi.json").json
    operation = spec["paths"][URL]["post"]
    body = operation["requestBody"]["content"]["multipart/form-data"]["schema"]
    form = spec["components"]["schemas"][body["$ref"].rsplit("/", 1)[-1]]
    assert form["required"] == ["file"]
    assert form["properties"]["file"]["format"] == "binary"
    assert {"200", "400", "401", "413", "503"} <= set(operation["responses"])
    assert operation["security"]

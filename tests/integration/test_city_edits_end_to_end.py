"""Staff correct a city through the admin API and the workspace's form, with the real gateway
and workers: bad values are refused with a clear answer, the change is on the audit log under
the member's name, and City Search and the city's public page follow within seconds."""

import pytest

from tests.conftest import add_test_cities
from tests.integration.test_staff_end_to_end import (
    PASSWORD,
    add_member,
    api_csrf,
    csrf_of,
    sign_in_with_password,
)
from tests.stack import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def bombay(stack, clean_databases, services) -> int:
    [city_id] = add_test_cities(clean_databases["directory"], [("Bombay", "IN", 19.0, 72.8, 100)])

    def indexed() -> bool:  # this id: an index of an earlier test's cities may know Bombay
        found = services.call("directory.search_cities", "Bombay")["results"]
        return bool(found) and found[0]["id"] == city_id

    wait_for(indexed, timeout=30, what="the directory to index the test city")
    return city_id


def test_the_api_edits_a_city_and_the_public_page_and_search_follow(client, admin_headers, bombay):
    assert "Bombay" in client.get(f"/cities/{bombay}").text  # the page is cached now
    changes = {"name": "Mumbai", "alternate_names": ["Bombay"], "population": 12_442_373}
    assert client.put(f"/api/v1/admin/cities/{bombay}", json=changes).status_code == 401
    response = client.put(f"/api/v1/admin/cities/{bombay}", json=changes, headers=admin_headers)
    assert response.status_code == 200, response.json
    assert response.json["name"] == "Mumbai" and response.json["alternate_names"] == ["Bombay"]
    wait_for(
        lambda: "<h1>Mumbai" in client.get(f"/cities/{bombay}").text.replace("\n", ""),
        timeout=30,
        what="the city's public page to show its new name",
    )

    def found_by_new_name() -> bool:
        results = client.get("/api/v1/cities?q=mumbai").json["results"]
        return bool(results) and results[0]["id"] == bombay

    wait_for(found_by_new_name, timeout=30, what="City Search to find the new name")
    history = client.get(f"/api/v1/admin/audit?kind=city&id={bombay}", headers=admin_headers)
    [entry] = history.json["results"]
    assert entry["action"] == "city.updated" and entry["actor"]["id"] == "token:admin"


@pytest.mark.parametrize(
    "body",
    [
        {"latitude": 91},
        {"longitude": -180.5},
        {"population": -3},
        {"name": ""},
        {"latitude": "north"},
        {},
    ],
)
def test_bad_values_are_a_400_and_change_nothing(client, admin_headers, bombay, body):
    response = client.put(f"/api/v1/admin/cities/{bombay}", json=body, headers=admin_headers)
    assert response.status_code == 400, response.json
    assert response.json["error"]["code"] in ("invalid_request", "invalid")
    record = client.get(f"/api/v1/cities/{bombay}").json
    assert (record["name"], record["latitude"], record["population"]) == ("Bombay", 19.0, 100)


def test_an_unknown_city_is_a_404(client, admin_headers, stack):
    for city_id in (999_999, 2**31):
        response = client.put(
            f"/api/v1/admin/cities/{city_id}", json={"population": 1}, headers=admin_headers
        )
        assert response.status_code == 404, response.json


def test_an_editor_edits_a_city_on_its_workspace_page(gateway_app, clean_databases, bombay):
    add_member(clean_databases, "eve@example.org", "editor", "Eve Editor", PASSWORD)
    staff = sign_in_with_password(gateway_app, "eve@example.org")
    page = staff.get(f"/staff/cities/{bombay}")
    assert page.status_code == 200 and 'value="Bombay"' in page.text
    form = {
        "name": "Mumbai",
        "alternate_names": "Bombay\r\nBombaim\r\n",
        "region": "Maharashtra",
        "population": "12442373",
        "latitude": "19.07",
        "longitude": "72.88",
    }
    assert staff.post(f"/staff/cities/{bombay}", data=form).status_code == 400  # no CSRF token
    refused = staff.post(
        f"/staff/cities/{bombay}", data={**form, "latitude": "95", "csrf_token": csrf_of(page)}
    )
    assert refused.status_code == 400
    assert "The latitude is a number from -90 to 90" in refused.text
    assert 'value="Mumbai"' in refused.text  # what was typed is kept
    bad_name = staff.post(
        f"/staff/cities/{bombay}",
        data={**form, "name": "<script>x</script>", "csrf_token": csrf_of(page)},
    )
    assert bad_name.status_code == 303  # any printable name is a name, shown escaped
    assert "&lt;script&gt;x" in staff.get(f"/staff/cities/{bombay}").text
    saved = staff.post(f"/staff/cities/{bombay}", data={**form, "csrf_token": csrf_of(page)})
    assert saved.status_code == 303, saved.text
    shown = staff.get(saved.headers["Location"])
    assert "Saved." in shown.text and "Bombaim" in shown.text
    assert "city.updated" in shown.text and "Eve Editor" in shown.text
    # The city's page is a link away from its partnerships' pages.
    [kuopio] = add_test_cities(clean_databases["directory"], [("Kuopio", "FI", 62.9, 27.7, 1)])
    made = staff.post(
        "/api/v1/admin/partnerships",
        json={"city_id": bombay, "sister_city_id": kuopio},
        headers={"X-CSRF-Token": api_csrf(staff)},
    )
    assert made.status_code == 201, made.text
    link = f'href="/staff/cities/{bombay}"'
    assert link in staff.get(f"/staff/partnerships/{made.json['id']}").text
    assert link in staff.get(f"/staff/partnerships?city={bombay}").text
    # Anyone not signed in is sent to sign in.
    stranger = gateway_app.test_client().get(f"/staff/cities/{bombay}")
    assert stranger.status_code == 303 and "/staff/sign-in" in stranger.headers["Location"]

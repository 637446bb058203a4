"""/api/docs: the OpenAPI 3.1 document rendered by Swagger UI from files the site serves itself,
so the page works under a Content-Security-Policy of 'self' only. None of these need a worker."""

from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest

# What each asset must be served as, by its file's extension.
CONTENT_TYPES = {".css": "text/css", ".js": "text/javascript", ".png": "image/png"}
A_YEAR = 365 * 24 * 3600


class PageReferences(HTMLParser):
    """Every address a page refers to, and what of it would run or style inline."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        for name in ("src", "href", "action", "data-spec-url"):
            if attributes.get(name):
                self.urls.append(attributes[name])
        if "style" in attributes or any(name.startswith("on") for name in attributes):
            self.inline.append(f"<{tag}> attribute")
        if tag == "style":
            self.inline.append("<style>")
        self._in_script = tag == "script" and "src" not in attributes
        if self._in_script:
            self.inline.append("<script> without src")

    def handle_endtag(self, tag):
        self._in_script = False


def references(html: str) -> PageReferences:
    parser = PageReferences()
    parser.feed(html)
    return parser


def test_the_docs_page_refers_only_to_files_of_the_site(client):
    response = client.get("/api/docs")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert response.headers["Cache-Control"] == "no-cache"
    # What the browser test below holds the page to.
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    page = references(response.get_data(as_text=True))
    assert page.inline == []
    assert len(page.urls) >= 5
    for url in page.urls:
        parts = urlsplit(url)
        assert (parts.scheme, parts.netloc) == ("", ""), f"{url} is on another host"
        assert url.startswith("/"), url


def test_every_file_the_page_loads_is_served_with_its_type_and_kept_a_year(client):
    page = references(client.get("/api/docs").get_data(as_text=True))
    assets = [url for url in page.urls if url.startswith("/api/docs/assets/")]
    assert {url.rsplit(".", 1)[-1] for url in assets} == {"css", "js", "png"}
    bodies = {}
    for url in assets:
        with client.get(url) as response:
            assert response.status_code == 200, url
            assert response.mimetype == CONTENT_TYPES["." + url.rsplit(".", 1)[-1]], url
            assert response.headers["Cache-Control"] == f"public, max-age={A_YEAR}, immutable"
            bodies[url.rsplit("/", 1)[-1]] = response.data
    assert b"SwaggerUIBundle" in bodies["swagger-ui-bundle.js"]
    assert b"validatorUrl: null" in bodies["api-docs.js"]
    assert bodies["favicon-32x32.png"].startswith(b"\x89PNG")


def test_the_page_names_the_openapi_document(client):
    page = references(client.get("/api/docs").get_data(as_text=True))
    assert "/api/openapi.json" in page.urls
    assert client.get("/api/openapi.json").status_code == 200


def test_an_old_address_of_a_file_leads_to_the_current_one(client):
    page = references(client.get("/api/docs").get_data(as_text=True))
    current = next(url for url in page.urls if url.endswith("swagger-ui.css"))
    response = client.get("/api/docs/assets/000000000000/swagger-ui.css")
    assert response.status_code == 302
    assert response.headers["Location"] == current


@pytest.mark.parametrize("name", ["swagger-ui.js", "LICENSE", "..%2Fapi_docs.py", "index.html"])
def test_only_the_pages_own_files_are_served(client, name):
    response = client.get(f"/api/docs/assets/000000000000/{name}")
    assert response.status_code == 404
    assert set(response.json["error"]) == {"code", "message"}


def test_the_document_is_openapi_3_1(client):
    spec = client.get("/api/openapi.json").json
    assert spec["openapi"] == "3.1.0"
    # 3.1 says "may be null" with JSON Schema's type lists; "nullable" was 3.0's keyword.
    assert "nullable" not in str(spec["components"]["schemas"])
    post = spec["components"]["schemas"]["PostOut"]["properties"]
    assert post["image"]["type"] == ["string", "null"]
    docs = spec["paths"]["/api/docs"]["get"]
    assert list(docs["responses"]["200"]["content"]) == ["text/html"]

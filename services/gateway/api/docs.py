"""/api/docs: the OpenAPI document rendered by Swagger UI, with every file served by the site
itself. The site's Content-Security-Policy allows no other host and no inline script, so the
page is plain HTML that loads Swagger UI (bundled by the swagger-ui-py package) and a small
start-up script from here, under addresses that hold a hash of each file's content."""

from __future__ import annotations

import functools
import hashlib
from importlib import resources
from pathlib import Path

from apiflask import APIBlueprint
from flask import abort, current_app, redirect, render_template, send_file, url_for

bp = APIBlueprint("api_docs", __name__, tag="Pages", url_prefix="/api/docs")

A_YEAR = 365 * 24 * 3600
SWAGGER_UI_DIR = Path(str(resources.files("swagger_ui") / "static"))
OWN_DIR = Path(__file__).resolve().parent / "docs_static"

# The files the page uses, by the name it asks for them.
ASSETS = {
    **{
        name: SWAGGER_UI_DIR / name
        for name in (
            "swagger-ui.css",
            "index.css",
            "swagger-ui-bundle.js",
            "favicon-32x32.png",
            "favicon-16x16.png",
        )
    },
    "api-docs.js": OWN_DIR / "api-docs.js",
}
# Said outright: Python's own table names JavaScript differently from one version to the next.
MIMETYPES = {".css": "text/css", ".js": "text/javascript", ".png": "image/png"}


def _html(description: str) -> dict:
    return {"description": description, "content": {"text/html": {"schema": {"type": "string"}}}}


ASSET_RESPONSES = {
    200: {
        "description": "The file, cached for a year: a changed file gets a new address",
        "content": {mimetype: {"schema": {"type": "string"}} for mimetype in MIMETYPES.values()},
    },
    302: {
        "description": "An old address of the file: to its current one",
        "headers": {"Location": {"schema": {"type": "string"}}},
    },
}


@functools.cache
def digests() -> dict[str, str]:
    """Each asset's name and the first 12 hex digits of its SHA-256."""
    return {
        name: hashlib.sha256(path.read_bytes()).hexdigest()[:12] for name, path in ASSETS.items()
    }


def asset_url(name: str) -> str:
    return url_for("api_docs.asset", digest=digests()[name], name=name)


@bp.get("")
@bp.doc(
    summary="Page: this documentation, rendered by Swagger UI",
    responses={200: _html("An HTML page that loads Swagger UI")},
)
def docs():
    page = render_template(
        "api_docs.html",
        title=current_app.title,
        version=current_app.version,
        openapi_version=current_app.config["OPENAPI_VERSION"],
        spec_url=url_for("openapi.spec"),
        docs_asset=asset_url,
    )
    # Always asked again, so a new release's asset addresses are seen at once.
    return page, 200, {"Cache-Control": "no-cache"}


@bp.get("/assets/<digest>/<name>")
@bp.doc(
    summary="Page assets: Swagger UI's files and its start-up script", responses=ASSET_RESPONSES
)
def asset(digest: str, name: str):
    if name not in ASSETS:
        abort(404)
    if digest != digests()[name]:
        return redirect(asset_url(name), 302)
    path = ASSETS[name]
    response = send_file(path, mimetype=MIMETYPES[path.suffix], max_age=A_YEAR, conditional=True)
    response.headers["Cache-Control"] = f"public, max-age={A_YEAR}, immutable"
    return response

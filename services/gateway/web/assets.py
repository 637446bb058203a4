"""The site's own CSS, scripts and map, under addresses that hold a hash of their content:
a browser keeps them for a year, and a changed file gets a new address."""

from __future__ import annotations

import hashlib
from pathlib import Path

from flask import Blueprint, Flask, abort, current_app, redirect, send_from_directory, url_for

# Beside the application factory, as Flask looks for a package's templates and files.
STATIC_DIR = Path(__file__).resolve().parents[1] / "static"
A_YEAR = 365 * 24 * 3600

bp = Blueprint("assets", __name__)


def fingerprints(folder: Path = STATIC_DIR) -> dict[str, str]:
    """Each file's path (relative, with /) and the first 12 hex digits of its SHA-256."""
    return {
        path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()[:12]
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def install_assets(app: Flask) -> None:
    digests = fingerprints()
    app.extensions["asset_digests"] = digests
    app.register_blueprint(bp)

    @app.template_global()
    def asset_url(path: str) -> str:
        return url_for("assets.asset", digest=digests[path], path=path)


@bp.get("/static/<digest>/<path:path>")
def asset(digest: str, path: str):
    digests = current_app.extensions["asset_digests"]
    if path not in digests:
        abort(404)
    if digest != digests[path]:
        # An old page asking for an old version: send it to the current one.
        return redirect(url_for("assets.asset", digest=digests[path], path=path), 302)
    response = send_from_directory(STATIC_DIR, path, max_age=A_YEAR, conditional=True)
    response.headers["Cache-Control"] = f"public, max-age={A_YEAR}, immutable"
    return response

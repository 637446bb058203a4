"""The gateway's application factory: HTML pages and the JSON API, calling the services."""

from __future__ import annotations

from apiflask import APIFlask
from werkzeug.middleware.proxy_fix import ProxyFix

from services.gateway import (
    admin_dashboard,
    admin_digests,
    admin_feeds,
    admin_partnerships,
    api_docs,
    atom_feeds,
    blog_pages,
    cities,
    health,
    pages,
    posts,
    subscriptions,
)
from services.gateway.assets import install_assets
from services.gateway.clients import GatewayClients
from services.gateway.config import GatewaySettings
from services.gateway.errors import install_error_handlers
from services.gateway.json_output import MarkupFreeJSONProvider
from services.gateway.observability import install_observability
from services.gateway.request_checks import install_request_checks
from services.gateway.security import install_security
from shared.logs import configure_logging

API_VERSION = "1.0.0"


def create_app(settings: GatewaySettings | None = None, shared_metrics: bool = False) -> APIFlask:
    """``shared_metrics``: several server processes pool their metrics (see the server)."""
    settings = settings or GatewaySettings.from_env()
    configure_logging(settings, "gateway")
    app = APIFlask(
        __name__,
        title="Sister Cities API",
        version=API_VERSION,
        spec_path="/api/openapi.json",
        docs_path=None,  # /api/docs is served by api_docs.py, with no other host
        # The site's files are served by ``assets`` under fingerprinted addresses.
        static_folder=None,
    )
    app.json = MarkupFreeJSONProvider(app)
    # Every view and hook here is a plain function: Flask would otherwise ask, for each of
    # the nine hooks of every request, whether it is a coroutine function.
    app.ensure_sync = lambda function: function
    app.config.update(
        SECRET_KEY=settings.session_key,
        MAX_CONTENT_LENGTH=settings.max_body_bytes,
        JSON_SORT_KEYS=False,
        DESCRIPTION=(
            "City Search, sister cities, syndicated stories and digests. Every error has the "
            'shape {"error": {"code": "...", "message": "..."}}.'
        ),
    )
    if settings.trusted_proxies:
        app.wsgi_app = ProxyFix(
            app.wsgi_app, x_for=settings.trusted_proxies, x_proto=settings.trusted_proxies
        )
    clients = GatewayClients.connect(settings, shared_metrics)
    app.extensions["sistercities"] = clients
    install_error_handlers(app)
    install_request_checks(app)
    install_observability(app, clients.metrics)
    app.register_blueprint(health.bp)
    app.register_blueprint(cities.bp)
    app.register_blueprint(posts.bp)
    app.register_blueprint(admin_partnerships.bp)
    app.register_blueprint(admin_feeds.bp)
    app.register_blueprint(subscriptions.bp)
    app.register_blueprint(admin_digests.bp)
    app.register_blueprint(admin_dashboard.bp)
    app.register_blueprint(api_docs.bp)
    app.register_blueprint(pages.bp)
    app.register_blueprint(blog_pages.bp)
    app.register_blueprint(atom_feeds.bp)
    install_assets(app)
    install_security(app, settings, clients.redis)
    app.context_processor(lambda: {"donate_url": settings.donate_url})
    return app

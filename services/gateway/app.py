"""The gateway's application factory: HTML pages and the JSON API, calling the services.

By audience: ``api/`` (one module per resource of the JSON API), ``site/`` (the pages: the
public's, a subscriber's, the staff's), ``web/`` (what every request goes through: errors,
security, rate limits, request checks, assets, observability, health). ``calls.py`` is the
one way any of them calls a service.
"""

from __future__ import annotations

from apiflask import APIFlask
from werkzeug.middleware.proxy_fix import ProxyFix

from services.gateway.api import (
    admin_campaigns,
    admin_cities,
    admin_digests,
    admin_feeds,
    admin_partnerships,
    admin_posts,
    admin_staff,
    admin_subscribers,
    cities,
    docs,
    posts,
    websub,
)
from services.gateway.api import subscriptions as subscriptions_api
from services.gateway.clients import GatewayClients
from services.gateway.config import GatewaySettings
from services.gateway.site import (
    admin_dashboard,
    campaign_pages,
    public,
    staff_pages,
    take_action,
    workspace,
)
from services.gateway.site import subscriptions as subscriber_pages
from services.gateway.web import health, staff_auth
from services.gateway.web.assets import install_assets
from services.gateway.web.errors import install_error_handlers
from services.gateway.web.json_output import MarkupFreeJSONProvider
from services.gateway.web.observability import install_observability
from services.gateway.web.page_cache import install_page_cache
from services.gateway.web.request_checks import install_request_checks
from services.gateway.web.security import install_security
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
        docs_path=None,  # /api/docs is served by api/docs.py, with no other host
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
    app.register_blueprint(admin_cities.bp)
    app.register_blueprint(admin_feeds.bp)
    app.register_blueprint(subscriptions_api.bp)
    app.register_blueprint(subscriber_pages.bp)
    app.register_blueprint(admin_posts.bp)
    app.register_blueprint(admin_digests.bp)
    app.register_blueprint(admin_subscribers.bp)
    app.register_blueprint(admin_campaigns.bp)
    app.register_blueprint(admin_dashboard.bp)
    app.register_blueprint(admin_staff.bp)
    app.register_blueprint(staff_pages.bp)
    app.register_blueprint(workspace.bp)
    app.register_blueprint(campaign_pages.bp)
    staff_auth.install_actor_reset(app)
    app.register_blueprint(docs.bp)
    app.register_blueprint(public.bp)
    app.register_blueprint(take_action.bp)
    app.register_blueprint(websub.bp)
    install_assets(app)
    install_security(app, settings, clients.redis)
    install_page_cache(app, clients.cache, clients.metrics)
    app.context_processor(lambda: {"donate_url": settings.donate_url})
    return app

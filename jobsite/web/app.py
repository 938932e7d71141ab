"""The web app's factory (`create_app`) and `serve`, the app as `jobsite web` serves it. The package's root imports
nothing, so a worker process never loads Flask."""

from __future__ import annotations

from typing import Any

from flask import Flask
from markupsafe import Markup

from ..settings import SHARE_DIR as _SHARE
from ..settings import Settings, load_settings


def create_app(settings: Settings | None = None, **overrides: Any) -> Flask:
    """The web app: wiring only, no I/O. `overrides` replace settings (tests use them)."""
    from .. import services
    from ..console import accounts
    from ..postings.sanitize import clean_html
    from ..records import filetypes
    from . import (
        admin,
        alert_pages,
        api,
        brand,
        candidates,
        embed,
        errors,
        formparser,
        i18n,
        openapi,
        ops,
        security,
        spooldrain,
        webhooks,
    )

    settings = settings or load_settings(**overrides)
    app = Flask("jobsite", template_folder=str(_SHARE / "templates"), static_folder=str(_SHARE / "static"))
    app.request_class = formparser.Request  # multipart bodies parsed without a regex compiled per request
    app.config.update(
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=settings.max_request_mb * 1024 * 1024,
        MAX_FORM_MEMORY_SIZE=1024 * 1024,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=bool(settings.public_url and settings.public_url.startswith("https")),
        PERMANENT_SESSION_LIFETIME=accounts.SESSION_LIFETIME_S,
        SESSION_COOKIE_NAME="jobsite_session",
        # With a public URL, every link is built from it; without one they come from the Host header, so only
        # hosts on the allow-list are served (werkzeug answers others with a 400).
        TRUSTED_HOSTS=None if settings.public_url else list(settings.allowed_hosts),
    )
    app.wsgi_app = front_cache(app)  # type: ignore[method-assign]
    if settings.proxy_count:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=settings.proxy_count, x_proto=settings.proxy_count, x_host=settings.proxy_count
        )
    services.init_app(app, settings)
    spooldrain.init_app(app)
    i18n.init_app(app, _SHARE / "translations")
    errors.init_app(app)
    security.init_app(
        app, settings.embed_origins, hsts=bool(settings.public_url and settings.public_url.startswith("https://"))
    )
    app.register_blueprint(ops.bp)
    app.register_blueprint(candidates.bp)
    app.register_blueprint(alert_pages.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(openapi.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(webhooks.bp)
    brand.init_app(app, settings.brand)
    embed.init_app(app, settings.embed_origins)
    app.jinja_env.globals.update(company_name=settings.company_name, accept=filetypes.ACCEPT)
    app.jinja_env.filters["sanitize"] = lambda html: Markup(clean_html(html))  # noqa: S704 (nh3 cleaned it)
    return app


def front_cache(app: Flask) -> Any:
    """Cached pages served ahead of Flask (web/pages.py `FrontCache`): inside ProxyFix, so keyed by the host and
    scheme the visitor asked for, and inside the security headers, so every answer carries them and its own
    request id."""
    from . import embed, i18n, pages

    def version() -> str | None:
        postings = app.extensions["jobsite"].catalog.postings_version()
        return None if postings is None else f"{postings} {app.extensions['jobsite.brand_version']}"

    return pages.FrontCache(
        app.wsgi_app, version, bypass=embed.may_be_referred, normalize={"HTTP_ACCEPT_LANGUAGE": i18n.best_language}
    )


def serve() -> Flask:
    """The app as `jobsite web` serves it: gunicorn calls this in each worker, after the fork, so what a serving
    process runs beside its requests (the spool drain) starts here and not in `create_app`."""
    from . import security, server, spooldrain

    settings = load_settings()
    app = create_app(settings)
    if not settings.public_url and not settings.proxy_count:  # links come from the Host header, port included
        app.wsgi_app = security.OwnPort(app.wsgi_app, settings.port)  # type: ignore[method-assign]
    app.wsgi_app = server.BodyDeadline(app.wsgi_app, settings.body_deadline_s)  # type: ignore[method-assign]
    spooldrain.start(app)
    return app

"""Request ids, access logs without personal data, security headers, and CSRF tokens for signed-in forms."""

from __future__ import annotations

import hmac
import logging
import re
import secrets
import time

from flask import Flask, Response, abort, g, request, session

log = logging.getLogger("jobsite.access")
REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def csrf_token() -> str:
    """The session's CSRF token, created on first use; every signed-in form carries it."""
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(24)
    return session["csrf"]


def check_csrf() -> None:
    sent = request.form.get("csrf_token", "") or request.headers.get("X-CSRF-Token", "")
    if not sent or not hmac.compare_digest(sent, session.get("csrf", "")):
        abort(400, "This form has expired or did not come from this site. Please reload the page and try again.")


def init_app(app: Flask) -> None:
    app.jinja_env.globals["csrf_token"] = csrf_token

    @app.before_request
    def start() -> None:
        incoming = request.headers.get("X-Request-Id", "")
        g.request_id = incoming if REQUEST_ID.match(incoming) else secrets.token_hex(8)
        g.started = time.perf_counter()

    @app.after_request
    def finish(response: Response) -> Response:
        response.headers["X-Request-Id"] = g.get("request_id", "-")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
        admin = request.path.startswith("/admin")
        ancestors = "'none'" if admin else "*"  # candidate pages may be embedded in a company's site (iframe)
        response.headers.setdefault(
            "Content-Security-Policy",
            f"default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
            f"object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors {ancestors}")
        if admin:
            response.headers["Cache-Control"] = "no-store"
        # Path only: query strings and bodies may hold personal data.
        if request.path not in ("/healthz", "/readyz", "/metrics") and not request.path.startswith("/static/"):
            log.info("%s %s %s %.1fms", request.method, request.path, response.status_code,
                     (time.perf_counter() - g.get("started", time.perf_counter())) * 1000)
        return response

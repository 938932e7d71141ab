"""Error pages at one edge: JSON for API clients, HTML for people, never a stack trace."""

from __future__ import annotations

import logging
from typing import Any

import redis
from flask import Flask, Response, jsonify, render_template, request
from flask_babel import gettext
from werkzeug.exceptions import HTTPException, InternalServerError, RequestEntityTooLarge, SecurityError
from werkzeug.http import HTTP_STATUS_CODES

from ..postings.catalog import CatalogUnavailable
from ..services import get_services

log = logging.getLogger(__name__)
REDIS_RETRY_AFTER_S = 30  # Redis restarts in seconds (`jobsite up` brings it back); a client asks again after this


def wants_json() -> bool:
    if request.path.startswith(("/api/", "/admin/api/")):  # the capture page's API too
        return True
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "application/json" and request.accept_mimetypes[best] > request.accept_mimetypes["text/html"]


def error_response(status: int, message: str | None = None, headers: dict[str, str] | None = None, **extra: Any) -> Any:
    """The error answer for this request, JSON or HTML."""
    title = HTTP_STATUS_CODES.get(status, "Error")
    if wants_json():
        return jsonify({"error": title, "message": message or title, **extra}), status, headers or {}
    page = "admin/error.html" if request.path.startswith("/admin") else "errors/error.html"  # the console's look
    return render_template(page, status=status, title=title, message=message), status, headers or {}


def init_app(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def http_error(e: HTTPException) -> Any:
        headers = {k: v for k, v in e.get_headers() if k.lower() not in ("content-type", "content-length")}
        message = e.description if (e.code or 500) < 500 else None
        if isinstance(e, SecurityError):  # a Host not on the allow-list: no URL can be built, so no page either
            log.warning(
                "refused a request for an unknown host: set JOBSITE_PUBLIC_URL, or add the host to "
                "JOBSITE_ALLOWED_HOSTS"
            )
            return Response("This site is not served under that address.\n", 400, mimetype="text/plain")
        if message == type(e).description and not wants_json():
            message = None  # Werkzeug's own English sentence: the page says it in the candidate's language instead
        if isinstance(e, RequestEntityTooLarge):
            limit = app.config["MAX_CONTENT_LENGTH"] // 2**20
            message = gettext("This is larger than the %(limit)s MB we accept. Please send smaller files.", limit=limit)
        return error_response(e.code or 500, message, headers)

    @app.errorhandler(CatalogUnavailable)
    def catalog_unavailable(e: CatalogUnavailable) -> Any:
        return error_response(
            503, gettext("Jobs are briefly unavailable. Please try again in a minute."), {"Retry-After": "60"}
        )

    @app.errorhandler(redis.RedisError)
    def redis_unreachable(e: redis.RedisError) -> Any:
        """Wherever a page needs Redis and it cannot be reached (the console, its capture API, a status): a 503 that
        says so and when to come back, not a 500. What must not wait for Redis (an application) never gets here: it
        is spooled."""
        log.warning("Redis unreachable on %s %s (%s)", request.method, request.path, type(e).__name__)
        get_services().silence.heard(e)  # the next requests of this process skip a silent Redis for a few seconds
        return error_response(
            503,
            gettext(
                "Our records are briefly unreachable, so this can't be done right now. Please try again in a minute."
            ),
            {"Retry-After": str(REDIS_RETRY_AFTER_S)},
        )

    @app.errorhandler(Exception)
    def unexpected(e: Exception) -> Any:
        if isinstance(e, HTTPException):
            return http_error(e)
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, InternalServerError.description)

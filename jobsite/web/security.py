"""Request ids (in every log line and the X-Request-Id header), security headers, and CSRF tokens for
signed-in forms. Logs name paths and ids, never answers, emails or query strings: those may hold personal data."""

from __future__ import annotations

import hmac
import os
import re
import secrets
from typing import Any

from flask import Flask, Request, abort, g, request, session
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from werkzeug.exceptions import BadRequest

REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; object-src 'none'; "
    "base-uri 'self'; form-action 'self'; frame-ancestors "
)
CSP_CANDIDATES = _CSP + "*"  # candidate pages may be embedded in a company's site (iframe)
CSP_ADMIN = _CSP + "'none'"
HSTS = "max-age=31536000; includeSubDomains"  # one year: browsers then never try this site over plain http
# The console is never framed (clickjacking) nor read by another site: no CORS header ever, and a cross-origin
# <script>/<img> load of its answers is refused by the browser too.
CONSOLE_HEADERS = [
    ("Content-Security-Policy", CSP_ADMIN),
    ("Cache-Control", "no-store"),
    ("X-Frame-Options", "DENY"),
    ("Cross-Origin-Resource-Policy", "same-origin"),
]


def candidates_csp(origins: tuple[str, ...] | None) -> str:
    """The CSP of candidate pages: any site may frame them, or only the site itself and JOBSITE_EMBED_ORIGINS."""
    return CSP_CANDIDATES if origins is None else _CSP + " ".join(("'self'", *origins))


def is_console(path: str) -> bool:
    """Whether a request path reaches the console, decided as routing decides it: werkzeug's router merges
    repeated slashes, so `//admin/` is the console too."""
    return re.sub("/{2,}", "/", path).startswith("/admin")


def current_client() -> str | None:
    """The integrator (API client) whose key authenticated this request, if any (web/api.py checks the key). Intake
    records it with the application; what is keyed per caller (limits, idempotency) can be keyed by it."""
    client: str | None = g.get("api_client")
    return client


def csrf_token() -> str:
    """The session's CSRF token, created on first use; every signed-in form carries it."""
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(24)
    return session["csrf"]


def check_csrf() -> None:
    sent = request.form.get("csrf_token", "") or request.headers.get("X-CSRF-Token", "")
    if not sent or not hmac.compare_digest(sent, session.get("csrf", "")):
        abort(400, "This form has expired or did not come from this site. Please reload the page and try again.")


class SecurityHeaders:
    """WSGI middleware: a request id for every request (taken from X-Request-Id when well-formed) and the security
    headers of every response (HSTS when the public URL is https). Raw header tuples here cost a fraction of
    Flask hooks on the hot path."""

    def __init__(self, app: Any, origins: tuple[str, ...] | None = None, *, hsts: bool = False):
        self.app = app
        self.csp = candidates_csp(origins)
        self.always = [("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "strict-origin-when-cross-origin")]
        if hsts:
            self.always.append(("Strict-Transport-Security", HSTS))

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        incoming = environ.get("HTTP_X_REQUEST_ID", "")
        request_id = incoming if REQUEST_ID.match(incoming) else os.urandom(8).hex()
        environ["jobsite.request_id"] = request_id
        admin = is_console(environ.get("PATH_INFO", ""))

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            names = {name.lower() for name, _ in headers}
            extra = [("X-Request-Id", request_id), *self.always]
            if admin:
                replaced = {"cache-control", "access-control-allow-origin", "x-frame-options"}
                headers = [h for h in headers if h[0].lower() not in replaced]
                extra += CONSOLE_HEADERS
            elif "content-security-policy" not in names:
                extra.append(("Content-Security-Policy", self.csp))
            return start_response(status, headers + extra, exc_info)

        return self.app(environ, start)


class OwnPort:
    """WSGI middleware for a site served without JOBSITE_PUBLIC_URL and without proxies: its links are built from the
    Host header, which TRUSTED_HOSTS checks without its port; so a Host naming another port than the one served is
    a 400, not a link to that port in a page others are served from a cache."""

    def __init__(self, app: Any, port: int):
        self.app, self.port = app, str(port)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        host = environ.get("HTTP_HOST", "")
        _, colon, port = host.rpartition(":")
        if colon and not host.endswith("]") and port != self.port:  # "[::1]" has colons but no port
            return BadRequest("This site is not served on that port.")(environ, start_response)
        return self.app(environ, start_response)


class ConsoleOnlySessions(SecureCookieSessionInterface):
    """Only the console uses sessions; candidate pages and the API skip decoding a session cookie."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if not is_console(request.path):
            return self.null_session_class()
        return super().open_session(app, request)


def init_app(app: Flask, origins: tuple[str, ...] | None = None, *, hsts: bool = False) -> None:
    app.jinja_env.globals["csrf_token"] = csrf_token
    app.wsgi_app = SecurityHeaders(app.wsgi_app, origins, hsts=hsts)  # type: ignore[method-assign]
    app.session_interface = ConsoleOnlySessions()

"""Rendered pages kept per process by content version, with the HTTP caching headers browsers and CDNs use, and
the cache in front of the app that serves them again without Flask."""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, NamedTuple

from flask import Response, request

from .security import is_console

MAX_PAGES = 512
PUBLIC_CACHE = "public, max-age=60, stale-while-revalidate=600, stale-if-error=86400"
PRIVATE_CACHE = "private, max-age=60"


class PageCache:
    """An LRU of rendered HTML, keyed by the catalog version and the page's parameters. A cache, so per process."""

    def __init__(self, size: int = MAX_PAGES):
        self.size = size
        self.pages: OrderedDict[tuple[str, ...], tuple[bytes, str]] = OrderedDict()

    def respond(self, key: tuple[str, ...], render: Callable[[], str], *, private: bool = False) -> Response:
        """A 200 with the page and its ETag, or a 304 when the browser already holds this version. A `private`
        page (made for one visitor) is kept here under its own key but never by a shared cache."""
        found = self.pages.get(key)
        if found is not None:
            self.pages.move_to_end(key)  # least recently used goes first
        else:
            body = render().encode()
            found = (body, hashlib.blake2b("\0".join(key).encode(), digest_size=10).hexdigest())
            self.pages[key] = found
            if len(self.pages) > self.size:
                self.pages.popitem(last=False)
        body, etag = found
        response = Response(status=304) if etag in request.if_none_match else Response(body, mimetype="text/html")
        response.set_etag(etag)
        response.headers["Cache-Control"] = PRIVATE_CACHE if private else PUBLIC_CACHE
        return response


MAX_ENTRIES = 1024
MAX_BYTES = 64 * 2**20  # all stored bodies of a process together
MAX_BODY = 2 * 2**20  # a larger answer is passed on, not kept
_NOT_MODIFIED_DROPS = ("content-length", "content-type")  # a 304 carries no body, so nothing that describes one
Environ = dict[str, Any]


class Entry(NamedTuple):
    headers: list[tuple[str, str]]
    body: bytes
    etag: str  # as sent, quotes included ("" when the answer had none)
    expires: float  # time.monotonic() after which it is not served (max-age)


class FrontCache:
    """WSGI middleware: answers that say `Cache-Control: public` kept per process and served without Flask, as a
    shared cache (Varnish) would, so a cached page costs a dictionary lookup instead of routing and rendering.

    The key is what such an answer may depend on: method, scheme, host (after ProxyFix), path, query string (which
    holds ?lang=, embed and theme parameters), `version()` (the catalog's and the brand's versions: a refresh of the
    postings changes it, so new pages are rendered at once), and the request headers the answer names in `Vary` (the
    Accept-Language header reduced to the language it negotiates, by `normalize`). Never kept: answers other than
    200, private or no-store ones, any that sets a cookie, `Vary: *`; never looked up: requests with Authorization
    (API keys are audited per use), console paths, and requests `bypass` says depend on more than the key (a
    Referer that makes the page private). An `If-None-Match` naming the kept ETag is answered 304. Entries expire
    after their max-age and the least recently used go first beyond MAX_ENTRIES or MAX_BYTES."""

    def __init__(
        self,
        app: Any,
        version: Callable[[], str | None],
        *,
        bypass: Callable[[Environ], bool],
        normalize: dict[str, Callable[[str], str]] | None = None,
        max_entries: int = MAX_ENTRIES,
        max_bytes: int = MAX_BYTES,
    ):
        self.app, self.version, self.bypass = app, version, bypass
        self.normalize = normalize or {}
        self.max_entries, self.max_bytes = max_entries, max_bytes
        self.entries: OrderedDict[tuple[str, ...], Entry] = OrderedDict()
        self.varies: dict[tuple[str, ...], tuple[str, ...]] = {}  # base key -> environ names its answer varies on
        self.size = 0

    def __call__(self, environ: Environ, start_response: Any) -> Any:
        method = environ["REQUEST_METHOD"]
        if (
            method not in ("GET", "HEAD")
            or "HTTP_AUTHORIZATION" in environ
            or is_console(environ["PATH_INFO"])
            or self.bypass(environ)
            or (version := self.version()) is None
        ):
            return self.app(environ, start_response)
        base = (
            version,
            environ["wsgi.url_scheme"],
            environ.get("HTTP_HOST", ""),
            environ.get("SCRIPT_NAME", ""),
            environ["PATH_INFO"],
            environ.get("QUERY_STRING", ""),
        )
        names = self.varies.get(base)
        if names is not None:
            key = base + self._vary_values(environ, names)
            entry = self.entries.get(key)
            if entry is not None and entry.expires > time.monotonic():
                self.entries.move_to_end(key)
                return self._serve(entry, environ, start_response, head=method == "HEAD")
        if method == "HEAD":
            return self.app(environ, start_response)
        return self._fill(base, environ, start_response)

    def _vary_values(self, environ: Environ, names: tuple[str, ...]) -> tuple[str, ...]:
        normalize = self.normalize
        return tuple(normalize[n](environ.get(n, "")) if n in normalize else environ.get(n, "") for n in names)

    @staticmethod
    def _serve(entry: Entry, environ: Environ, start_response: Any, *, head: bool) -> list[bytes]:
        asked = environ.get("HTTP_IF_NONE_MATCH")
        if asked and entry.etag and _matches(asked, entry.etag):
            start_response("304 Not Modified", [h for h in entry.headers if h[0].lower() not in _NOT_MODIFIED_DROPS])
            return []
        start_response("200 OK", list(entry.headers))
        return [] if head else [entry.body]

    def _fill(self, base: tuple[str, ...], environ: Environ, start_response: Any) -> Any:
        found: list[tuple[list[tuple[str, str]], float, tuple[str, ...]]] = []

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            if status.startswith("200 ") and exc_info is None and (terms := _storable(headers)) is not None:
                found.append((list(headers), *terms))
            return start_response(status, headers, exc_info)

        answer = self.app(environ, start)
        if not found:
            return answer
        try:
            body = b"".join(answer)
        finally:
            if hasattr(answer, "close"):
                answer.close()
        headers, ttl, names = found[0]
        etag = next((v for n, v in headers if n.lower() == "etag"), "")
        self._store(
            base, names, base + self._vary_values(environ, names), Entry(headers, body, etag, time.monotonic() + ttl)
        )
        return [body]

    def _store(self, base: tuple[str, ...], names: tuple[str, ...], key: tuple[str, ...], entry: Entry) -> None:
        """Keep `entry`; the oldest variants, entries and bytes go beyond the bounds (a variant whose base key went
        is unreachable until stored again, and leaves in its turn)."""
        self.varies.pop(base, None)  # most recently stored last
        self.varies[base] = names
        while len(self.varies) > self.max_entries:
            del self.varies[next(iter(self.varies))]
        old = self.entries.pop(key, None)
        if old is not None:
            self.size -= len(old.body)
        self.entries[key] = entry
        self.size += len(entry.body)
        while len(self.entries) > self.max_entries or self.size > self.max_bytes:
            _, gone = self.entries.popitem(last=False)
            self.size -= len(gone.body)


def _storable(headers: list[tuple[str, str]]) -> tuple[float, tuple[str, ...]] | None:
    """How long a 200 with these headers may be kept and the environ names of the headers it varies on, or None
    when it may not be kept (not public, private, a cookie, Vary: *, no or too large a Content-Length)."""
    control = vary = ""
    length = -1
    for name, value in headers:
        lower = name.lower()
        if lower == "cache-control":
            control = value.lower()
        elif lower == "vary":
            vary = f"{vary},{value}" if vary else value
        elif lower == "content-length":
            length = int(value) if value.isdigit() else -1
        elif lower == "set-cookie":
            return None
    directives = {d.strip().partition("=")[0]: d.strip().partition("=")[2] for d in control.split(",")}
    if (
        "public" not in directives
        or not {"private", "no-store", "no-cache"}.isdisjoint(directives)
        or not 0 <= length <= MAX_BODY
    ):
        return None
    age = directives.get("s-maxage") or directives.get("max-age") or ""
    if not age.isdigit() or int(age) == 0:
        return None
    names = tuple(sorted({"HTTP_" + v.strip().upper().replace("-", "_") for v in vary.split(",") if v.strip()}))
    return None if "HTTP_*" in names else (float(age), names)


def _matches(if_none_match: str, etag: str) -> bool:
    """Whether an If-None-Match header names `etag` (weak comparison, as for GET) or is `*`."""
    if if_none_match.strip() == "*":
        return True
    bare = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == bare for tag in if_none_match.split(","))

"""Rendered pages kept per process by content version, with the HTTP caching headers browsers and CDNs use."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable

from flask import Response, request

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
        if etag in request.if_none_match:
            response = Response(status=304)
        else:
            response = Response(body, mimetype="text/html")
        response.set_etag(etag)
        response.headers["Cache-Control"] = PRIVATE_CACHE if private else PUBLIC_CACHE
        return response

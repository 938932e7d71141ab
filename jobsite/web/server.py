"""`jobsite web`'s gunicorn worker: gevent's, with a cap on one address's open connections and a deadline for a
request's body, so that one address cannot hold every connection a worker takes.

gevent made a slow client cost a greenlet instead of a thread, but a worker still takes at most
`--worker-connections` (1000) at once: 1,005 connections trickling a body from one address stopped a one-worker site
from answering anyone. Now a connection past JOBSITE_CONNECTIONS_PER_IP from one address (an IPv4 address or an IPv6
/64) is answered 503 and closed at once, and a body still arriving JOBSITE_BODY_DEADLINE_S after its request began is
a 408 and its connection is closed. Behind reverse proxies (JOBSITE_PROXY_COUNT) every connection comes from a
proxy, so the cap is off there: the proxy buffers bodies and limits its clients.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import gevent
from gunicorn.workers.ggevent import GeventWorker
from werkzeug.exceptions import RequestTimeout

from ..settings import load_settings

_SAYS = b"Too many open connections from your network: please try again in a moment.\n"
REFUSED = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nRetry-After: 10\r\n"
    b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(_SAYS), _SAYS)
)


class Worker(GeventWorker):
    """gunicorn's gevent worker counting open connections per address (in this process: a cap per web process)."""

    def init_process(self) -> None:
        settings = load_settings()
        self.cap = 0 if settings.proxy_count else settings.connections_per_ip
        self.open: Counter[str] = Counter()
        super().init_process()

    def handle(self, listener: Any, client: socket.socket, addr: Any) -> None:
        who = network(addr)
        if self.cap and self.open[who] >= self.cap:
            with contextlib.suppress(OSError):
                client.sendall(REFUSED)
            client.close()
            return
        self.open[who] += 1
        try:
            super().handle(listener, client, addr)
        finally:
            self.open[who] -= 1
            if not self.open[who]:
                del self.open[who]


def network(addr: Any) -> str:
    """The address limits count by: an IPv4 address, or an IPv6 /64 (one subscriber holds a whole /64)."""
    host = addr[0] if isinstance(addr, tuple) else str(addr)
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host  # a unix socket's name
    if isinstance(ip, ipaddress.IPv6Address):
        return str(ip.ipv4_mapped or ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


class BodyDeadline:
    """WSGI middleware: the request's body must have arrived `seconds` after the app was called, or reading it raises
    a 408 and the connection reads nothing more (gunicorn would otherwise wait out the rest of the body to keep the
    connection alive). Under gevent only: its timeout interrupts a read that waits on the socket."""

    def __init__(self, app: Callable[..., Iterable[bytes]], seconds: float):
        self.app, self.seconds = app, seconds

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        environ["wsgi.input"] = _Input(
            environ["wsgi.input"], time.monotonic() + self.seconds, environ.get("gunicorn.socket")
        )
        return self.app(environ, start_response)


class _Input:
    """A request body whose every read ends by the deadline."""

    def __init__(self, body: Any, deadline: float, sock: socket.socket | None):
        self.body, self.deadline, self.sock = body, deadline, sock

    def _by_deadline(self, read: Callable[..., Any], *args: Any) -> Any:
        left = self.deadline - time.monotonic()
        try:
            if left <= 0:
                raise RequestTimeout("The request's body took too long to arrive.")
            with gevent.Timeout(left, RequestTimeout("The request's body took too long to arrive.")):
                return read(*args)
        except RequestTimeout:
            if self.sock is not None:
                with contextlib.suppress(OSError):
                    self.sock.shutdown(socket.SHUT_RD)  # nothing more is read from this connection
            raise

    def read(self, size: int | None = -1) -> bytes:
        return self._by_deadline(self.body.read, size)

    def readline(self, size: int | None = -1) -> bytes:
        return self._by_deadline(self.body.readline, size)

    def readlines(self, hint: int | None = -1) -> list[bytes]:
        return self._by_deadline(self.body.readlines, hint)

    def __iter__(self) -> Iterator[bytes]:
        while line := self.readline():
            yield line

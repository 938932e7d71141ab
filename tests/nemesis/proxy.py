"""A TCP proxy between the site's processes and Redis, so the nemesis can make Redis silent (connections open,
nothing answered) or refuse connections without touching the server itself."""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import threading
import time

PASS, BLACKHOLE, REFUSE = "pass", "blackhole", "refuse"


class Proxy:
    """Listens on 127.0.0.1:`port` and forwards each connection to 127.0.0.1:`upstream`. `mode` is PASS (forward),
    BLACKHOLE (accept and keep every connection open, forwarding nothing either way, as a cut network does) or
    REFUSE (nothing listens: a connection is refused, and open ones are reset)."""

    def __init__(self, upstream: int, port: int = 0):
        self.upstream = upstream
        self.mode = PASS
        self.lock = threading.Lock()
        self.pairs: list[tuple[socket.socket, socket.socket | None]] = []
        self.closed = threading.Event()
        self.listener: socket.socket | None = None
        self.port = port
        self._listen()
        threading.Thread(target=self._accept_loop, name="nemesis-proxy", daemon=True).start()

    def _listen(self) -> None:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(128)
        s.settimeout(0.1)
        self.port = s.getsockname()[1]
        self.listener = s

    def set_mode(self, mode: str) -> None:
        with self.lock:
            previous, self.mode = self.mode, mode
            if mode == REFUSE and previous != REFUSE:
                if self.listener is not None:
                    self.listener.close()
                    self.listener = None
                for client, server in self.pairs:
                    _reset(client)
                    if server is not None:
                        _reset(server)
                self.pairs.clear()
            elif mode != REFUSE and previous == REFUSE:
                self._listen()

    def close(self) -> None:
        self.closed.set()
        self.set_mode(REFUSE)

    def _accept_loop(self) -> None:
        while not self.closed.is_set():
            with self.lock:
                listener = self.listener
            if listener is None:
                time.sleep(0.05)
                continue
            try:
                client, _ = listener.accept()
            except (TimeoutError, OSError):
                continue
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        server: socket.socket | None = None
        with self.lock:
            self.pairs.append((client, None))
        try:
            while self.mode == BLACKHOLE and not self.closed.is_set():  # accepted, never connected onwards
                time.sleep(0.05)
            if self.mode == REFUSE or self.closed.is_set():
                return
            server = socket.create_connection(("127.0.0.1", self.upstream), timeout=2)
            with self.lock:
                self.pairs = [(c, server if c is client else s) for c, s in self.pairs]
            self._pump(client, server)
        except (OSError, ValueError):  # reset under it by REFUSE
            pass
        finally:
            with self.lock:
                self.pairs = [(c, s) for c, s in self.pairs if c is not client]
            for s in (client, server):
                if s is not None:
                    with contextlib.suppress(OSError):
                        s.close()

    def _pump(self, client: socket.socket, server: socket.socket) -> None:
        other = {client: server, server: client}
        while not self.closed.is_set():
            if self.mode == BLACKHOLE:  # what is sent waits in the kernel's buffers, unanswered
                time.sleep(0.05)
                continue
            if self.mode == REFUSE:
                return
            readable, _, _ = select.select([client, server], [], [], 0.1)
            for s in readable:
                data = s.recv(65536)
                if not data:
                    return
                other[s].sendall(data)


def _reset(s: socket.socket) -> None:
    """Close with an RST, as a refusing peer's kernel answers."""
    with contextlib.suppress(OSError):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()

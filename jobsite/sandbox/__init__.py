"""The Lever sandbox. Product code never imports this package: only the CLI and the tests start it."""

from __future__ import annotations

import threading

from werkzeug.serving import make_server

from .outbox import Outbox, SmtpSink, add_routes
from .simulator import API_KEY, SandboxState, create_sandbox_app

__all__ = ["API_KEY", "SandboxServer", "SandboxState", "create_sandbox_app"]


class SandboxServer:
    """The sandbox on a threaded HTTP server in a background thread (port 0 picks a free port); with `smtp_port`
    (0: a free one), its outbox's SMTP server too, whose emails /_sandbox/outbox shows."""

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, state: SandboxState | None = None, smtp_port: int | None = None
    ):
        self.state = state or SandboxState()
        self.app = create_sandbox_app(self.state)
        self.outbox = Outbox()
        self.smtp = None if smtp_port is None else SmtpSink(host, smtp_port, self.outbox)
        add_routes(self.app, self.outbox, self.smtp)
        self.server = make_server(host, port, self.app, threaded=True)
        self.url = f"http://{host}:{self.server.server_port}"
        # Polled every 50 ms for a shutdown, not serve_forever's 0.5 s: a stop (each test starts one) is that quick.
        self.thread = threading.Thread(
            target=self.server.serve_forever, args=(0.05,), name="lever-sandbox", daemon=True
        )

    def start(self) -> SandboxServer:
        if self.smtp:
            self.smtp.thread.start()
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)
        if self.smtp:
            self.smtp.shutdown()
            self.smtp.server_close()

    def serve_forever(self) -> None:
        if self.smtp:
            self.smtp.thread.start()
        self.server.serve_forever()

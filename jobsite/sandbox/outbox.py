"""The sandbox's outbox: a small SMTP server that keeps every email the site sends, and a page that shows them.

With the sandbox and no mail server of one's own (`jobsite up` out of the box), the site's emails go here instead of
nowhere, so a person trying jobsite sees the whole loop: the confirmation of an application, the talent
community's opt-in, its links. `jobsite up` points JOBSITE_SMTP_URL at it; nothing leaves the machine. It keeps the
last `KEEP` messages in the sandbox's memory, like the rest of the sandbox's state, and takes no message over
`MAX_BYTES` nor a line over `MAX_LINE` (whoever can reach the port cannot make it grow without end).

`GET /_sandbox/outbox` is the page (newest first: subject, recipient, the text part, its links as links);
`GET /_sandbox/outbox.json` the same for scripts and tests.
"""

from __future__ import annotations

import email
import email.policy
import re
import socketserver
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass
from email.message import EmailMessage
from typing import Any

from flask import Flask
from markupsafe import escape

KEEP = 200
MAX_BYTES = 2_000_000
MAX_LINE = 2_000
_LINK = re.compile(r"https?://[^\s<>\"]+")


@dataclass(frozen=True)
class Kept:
    """One email as the outbox shows it."""

    at: float
    sender: str
    recipients: list[str]
    subject: str
    text: str
    html: str
    links: list[str]


class Outbox:
    """The emails received, newest last; safe across the SMTP server's and the web server's threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._kept: deque[Kept] = deque(maxlen=KEEP)

    def add(self, sender: str, recipients: list[str], data: bytes) -> None:
        message = email.message_from_bytes(data.replace(b"\r\n", b"\n"), policy=email.policy.default)
        assert isinstance(message, EmailMessage)  # noqa: S101 (the default policy makes EmailMessages)
        text, html = _part(message, "plain"), _part(message, "html")
        kept = Kept(
            time.time(),
            sender,
            recipients,
            str(message.get("Subject", "")),
            text,
            html,
            list(dict.fromkeys(_LINK.findall(text))),
        )
        with self._lock:
            self._kept.append(kept)

    def messages(self) -> list[Kept]:
        with self._lock:
            return list(self._kept)


def _part(message: EmailMessage, kind: str) -> str:
    body = message.get_body((kind,))
    return body.get_content() if isinstance(body, EmailMessage) else ""


class _Session(socketserver.StreamRequestHandler):
    """One SMTP conversation (RFC 5321's few commands a sending library uses), each message into the outbox."""

    server: SmtpSink

    def handle(self) -> None:
        self._say("220 jobsite sandbox outbox")
        sender: str | None = None
        recipients: list[str] = []
        while line := self.rfile.readline(MAX_LINE + 1):
            if len(line) > MAX_LINE:
                self._say("500 line too long")
                return
            verb, _, arg = line.decode("utf-8", "replace").strip().partition(" ")
            verb = verb.upper()
            if verb == "EHLO":
                self._say(f"250-jobsite sandbox\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 SIZE {MAX_BYTES}")
            elif verb in ("HELO", "NOOP"):
                self._say("250 OK")
            elif verb == "MAIL":
                sender, recipients = _address(arg), []
                self._say("250 OK")
            elif verb == "RCPT" and sender is not None:
                recipients.append(_address(arg))
                self._say("250 OK")
            elif verb == "DATA" and sender is not None and recipients:
                self._say("354 end with a line holding a single dot")
                data = self._data()
                if data is None:
                    self._say("552 message too big")
                    return
                self.server.outbox.add(sender, recipients, data)
                sender, recipients = None, []
                self._say("250 kept in the outbox")
            elif verb == "RSET":
                sender, recipients = None, []
                self._say("250 OK")
            elif verb == "QUIT":
                self._say("221 bye")
                return
            elif verb in ("RCPT", "DATA"):
                self._say("503 bad sequence of commands")
            else:
                self._say("502 command not implemented")

    def _data(self) -> bytes | None:
        lines: list[bytes] = []
        size = 0
        while line := self.rfile.readline(MAX_LINE + 1):
            if line in (b".\r\n", b".\n"):
                return b"".join(lines)
            size += len(line)
            if size > MAX_BYTES or len(line) > MAX_LINE:
                return None
            lines.append(line[1:] if line.startswith(b".") else line)  # the dot a sender doubled
        return None

    def _say(self, reply: str) -> None:
        self.wfile.write(reply.encode() + b"\r\n")


def _address(arg: str) -> str:
    """The address in `FROM:<a@b> SIZE=…` or `TO:<a@b>`."""
    found = re.search(r"<([^>]*)>", arg)
    return found.group(1) if found else arg.partition(":")[2].strip()


class SmtpSink(socketserver.ThreadingTCPServer):
    """The outbox's SMTP server (port 0 picks a free port), one thread per connection."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, host: str, port: int, outbox: Outbox):
        self.outbox = outbox
        super().__init__((host, port), _Session)
        self.thread = threading.Thread(target=self.serve_forever, name="sandbox-outbox", daemon=True)

    @property
    def port(self) -> int:
        return int(self.server_address[1])


def add_routes(app: Flask, outbox: Outbox, sink: SmtpSink | None) -> None:
    """The outbox's page and its JSON, on the sandbox's app."""

    @app.get("/_sandbox/outbox.json")
    def outbox_json() -> Any:
        return {"smtp_port": sink.port if sink else None, "messages": [asdict(m) for m in outbox.messages()]}

    @app.get("/_sandbox/outbox")
    def outbox_page() -> Any:
        kept = outbox.messages()[::-1]
        if sink is None:
            said = "<p>No SMTP server runs here: start the sandbox with <code>--smtp-port</code>.</p>"
        else:
            said = (
                f"<p>The emails the site sent to <code>smtp://127.0.0.1:{sink.port}</code>, newest first "
                f"({len(kept)}; the last {KEEP} are kept). Nothing leaves this machine.</p>"
            )
        items = "".join(_article(m) for m in kept) or "<p>No email yet.</p>"
        return (
            f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Outbox · Lever sandbox</title>'
            '<meta name="viewport" content="width=device-width, initial-scale=1"></head><body><main>'
            f'<h1>Outbox</h1><p><a href="/_sandbox/">Lever sandbox</a></p>{said}{items}</main></body></html>'
        )


def _article(m: Kept) -> str:
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(m.at))
    links = "".join(f'<li><a href="{escape(u)}">{escape(u)}</a></li>' for u in m.links)
    return (
        f"<article><h2>{escape(m.subject) or '(no subject)'}</h2>"
        f"<p>To {escape(', '.join(m.recipients))} · {when}</p>"
        f'<pre style="white-space:pre-wrap">{escape(m.text)}</pre>'
        + (f"<h3>Links</h3><ul>{links}</ul>" if links else "")
        + "</article>"
    )

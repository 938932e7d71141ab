"""The candidate's confirmation email: a receipt by email, sent by a worker as soon as the application is accepted,
whatever Lever is doing, over SMTP (`JOBSITE_SMTP_URL`), at most once per application.

This module owns the keys `mail:{receipt}`: what became of an application's email (sending, sent, refused, ...) and
when. A send claims the key first, so a duplicate job or a retry after success never sends a second copy; and when
the connection is lost while the server was taking the message, the email may have gone, so it is not sent again.
The email carries no answers and no files; its address is read from the stored application when it is sent (the
job carries only the receipt), and it is never logged: log lines and errors name the receipt's first characters.
"""

from __future__ import annotations

import email.policy
import html
import json
import logging
import re
import smtplib
import ssl
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.errors import HeaderParseError, MessageError
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.utils import format_datetime, make_msgid, parseaddr
from enum import StrEnum
from typing import Any

import redis

from .records import store
from .records.store import Record
from .settings import Settings, Smtp
from .words import translator as words_in

log = logging.getLogger(__name__)

KEY = "mail:{}"
CLAIM_S = 600  # a send in progress holds the key this long (far past the SMTP timeouts); if its worker died, the
# claim lapses and nothing sends it again: the email may have gone


class Status(StrEnum):
    SENDING = "sending"  # a worker is sending it now
    SENT = "sent"  # the mail server took it
    REFUSED = "refused"  # the mail server refused the address or the message for good (5xx): not retried
    UNKNOWN = "unknown"  # the connection was lost while the server took the message: it may have gone, not resent
    FAILED = "failed"  # the mail server could not be reached, or deferred it, through every retry

    @property
    def label(self) -> str:
        """The status as the console shows it, before its time."""
        return _LABELS[self]


_LABELS = {Status.SENDING: "Sending", Status.SENT: "Sent", Status.REFUSED: "Refused by the mail server",
           Status.UNKNOWN: "Maybe sent (the connection was lost)",
           Status.FAILED: "Not sent (the mail server could not take it)"}


@dataclass(frozen=True)
class MailState:
    """What became of one application's confirmation email, and when (epoch seconds)."""

    status: Status
    at: float


class MailDeferred(Exception):
    """The mail server could not take the email now (no connection, a 4xx answer): the job is tried again later.
    Its message names no address (a server's answer that repeats the candidate's address has it blanked)."""


@dataclass(frozen=True)
class Switch:
    """Whether confirmation emails go out, and if not why: `reason` is "" (on), "not_configured" (no
    JOBSITE_SMTP_URL) or "unfixed_python" (this Python lacks the fix for CVE-2024-6923); `says` is the same in
    words for the console and /readyz."""

    reason: str
    says: str

    @property
    def on(self) -> bool:
        return not self.reason


REASONS = ("not_configured", "unfixed_python")


def switch(settings: Settings) -> Switch:
    """Whether this site sends confirmation emails, said where people look (the dashboard, /readyz, /metrics): a
    start-up line on stderr was all there was, and candidates silently got no reference nor link."""
    if settings.mail_off:
        return Switch("unfixed_python", settings.mail_off[:1].upper() + settings.mail_off[1:])
    if settings.smtp is None:
        return Switch("not_configured", "Confirmation emails are off: JOBSITE_SMTP_URL is not set")
    return Switch("", "Confirmation emails are on")


def key(receipt: str) -> str:
    return KEY.format(receipt)


def state(r: redis.Redis, receipt: str) -> MailState | None:
    """What became of the application's confirmation email; None when none was sent or tried (or it was purged)."""
    raw = r.get(key(receipt))
    if not raw:
        return None
    data = json.loads(raw)
    return MailState(Status(data["status"]), float(data["at"]))


def forget(r: redis.Redis, receipt: str) -> None:
    """Remove what is kept of the application's email (its personal data is being purged)."""
    r.delete(key(receipt))


def status_url(settings: Settings, receipt: str) -> str:
    """The receipt page, where the candidate follows the application (web/candidates.py serves it)."""
    return f"{settings.public_url}/applications/{receipt}"


def send_confirmation(r: redis.Redis, settings: Settings, receipt: str, *, last_try: bool = True) -> Status | None:
    """Send the application's confirmation email unless it was sent (or tried for good) already.

    Returns what became of it, or None when there is nothing to send (no mail server configured, the application's
    personal data is gone, or another worker is sending it right now).

    Raises:
        MailDeferred: the mail server could not take it now and this is not the `last_try`: try again later.
    """
    smtp = settings.smtp
    if smtp is None:
        return None
    token = uuid.uuid4().hex
    if not r.set(key(receipt), _value(Status.SENDING, token), nx=True, ex=CLAIM_S):
        found = state(r, receipt)
        return found.status if found and found.status != Status.SENDING else None
    try:
        record = store.load(r, receipt)
        if record is None or record.application is None or not record.application.email:
            _release(r, receipt, token)
            return None
        try:
            message = compose(settings, record)
        except (ValueError, HeaderParseError):
            outcome, why = Status.REFUSED, "the candidate's address is not one an email can be sent to"
        else:
            outcome, why = _send(smtp, message, record.application.email)
    except MailDeferred as e:
        if not last_try:
            log.info("confirmation email %s: tried again later (%s)", receipt[:8], e)
            _release(r, receipt, token)
            raise
        outcome, why = Status.FAILED, f"not sent after every retry ({e})"
    except BaseException:
        _release(r, receipt, token)  # an unexpected error fails the job (RQ keeps it) and records nothing
        raise
    r.set(key(receipt), _value(outcome))
    if outcome == Status.SENT:
        log.info("confirmation email %s sent", receipt[:8])
    else:
        log.warning("confirmation email %s %s: %s", receipt[:8], outcome.value, why)
    return outcome


def _value(status: Status, token: str = "") -> str:
    return json.dumps({"status": status.value, "at": time.time(), "token": token})


def _release(r: redis.Redis, receipt: str, token: str) -> None:
    """Drop our claim (only ours: a claim that ran out may have been taken by another worker)."""
    with r.pipeline() as pipe:
        try:
            pipe.watch(key(receipt))
            raw = pipe.get(key(receipt))
            if raw and json.loads(raw).get("token") == token:
                pipe.multi()
                pipe.delete(key(receipt))
                pipe.execute()
        except redis.WatchError:
            pass  # changed meanwhile: not ours any more


def _send(smtp: Smtp, message: EmailMessage, address: str) -> tuple[Status, str]:
    """Hand the message to the mail server: what became of it and why, or MailDeferred to try again later."""
    try:
        connection = _connect(smtp)
    except (OSError, smtplib.SMTPException) as e:  # refused, timed out, TLS or login failed: may work later
        raise MailDeferred(f"could not reach the mail server: {_why(e, address)}") from None
    try:
        connection.send_message(message)
    except smtplib.SMTPRecipientsRefused as e:
        code, reply = next(iter(e.recipients.values()))  # one recipient: the candidate
        why = _why(smtplib.SMTPResponseException(code, reply), address)
        if code >= 500:
            return Status.REFUSED, f"the mail server refused the candidate's address: {why}"
        raise MailDeferred(f"the mail server deferred the candidate's address: {why}") from None
    except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as e:
        if e.smtp_code >= 500:
            return Status.REFUSED, f"the mail server refused it: {_why(e, address)} (check JOBSITE_MAIL_FROM)"
        raise MailDeferred(f"the mail server deferred it: {_why(e, address)}") from None
    except smtplib.SMTPNotSupportedError:
        return Status.REFUSED, "the candidate's address needs SMTPUTF8, which the mail server does not offer"
    except (OSError, smtplib.SMTPException) as e:
        if connection.handing_over:
            return Status.UNKNOWN, (f"the connection was lost while the mail server took it ({type(e).__name__}); "
                                    "it may have been sent, so it is not sent again")
        raise MailDeferred(f"the mail server failed before taking it: {_why(e, address)}") from None
    finally:
        _close(connection)
    return Status.SENT, ""


class _Handover(smtplib.SMTP):
    """An SMTP connection that notes when the message itself starts to go: a connection lost after that may have
    delivered it."""

    handing_over = False

    def data(self, msg: Any) -> tuple[int, bytes]:
        self.handing_over = True
        return super().data(msg)


class _HandoverTLS(smtplib.SMTP_SSL, _Handover):
    """The same over TLS from the first byte (smtps://)."""


def _connect(smtp: Smtp) -> _Handover:
    context = ssl.create_default_context()
    connection: _Handover
    if smtp.security == "tls":
        connection = _HandoverTLS(smtp.host, smtp.port, timeout=smtp.timeout_s, context=context)
    else:
        connection = _Handover(smtp.host, smtp.port, timeout=smtp.timeout_s)
    try:
        if smtp.security == "starttls":
            connection.starttls(context=context)
        if smtp.username:
            connection.login(smtp.username, smtp.password or "")
    except BaseException:
        _close(connection)
        raise
    return connection


def _close(connection: smtplib.SMTP) -> None:
    """Say goodbye; what the server answers to QUIT changes nothing about the email."""
    try:
        connection.quit()
    except (OSError, smtplib.SMTPException):
        connection.close()


def _why(error: BaseException, address: str) -> str:
    """An SMTP error in words that name no candidate: servers often repeat the address in their answer."""
    if isinstance(error, smtplib.SMTPResponseException):
        reply = error.smtp_error.decode("utf-8", "replace") if isinstance(error.smtp_error, bytes) else \
            str(error.smtp_error)
        text = f"{error.smtp_code} {reply}"
    else:
        text = f"{type(error).__name__}: {error}"
    if address:
        text = _blank(text, address)
    return " ".join(text.split())[:300]


def _blank(text: str, address: str) -> str:
    lower, needle, out, i = text.lower(), address.lower(), [], 0
    while (j := lower.find(needle, i)) >= 0:
        out += [text[i:j], "<candidate>"]
        i = j + len(needle)
    return "".join(out) + text[i:]


def _one_line(value: str) -> str:
    """Outside text as a header may hold it: one line (Lever's titles could carry line breaks), and no `=?` that a
    mail program, or Python's email package itself (CVE-2024-6923), would decode as an encoded word."""
    return " ".join(value.split()).replace("=?", "= ?")


_FIRST_NAME = re.compile(r"[^\W\d_][\w'’-]{0,39}")  # a word of letters, as names are: no link, no sentence


def first_name(full_name: str) -> str:
    """The only text the candidate typed that the email repeats: the first word of their name when it looks like
    one, else nothing ("Hello,"). Anyone may make the site send this email to any address, so it carries no text
    of theirs beyond that: no message, no link, under the company's name."""
    words = full_name.split()
    return words[0] if words and _FIRST_NAME.fullmatch(words[0]) else ""


def compose(settings: Settings, record: Record) -> EmailMessage:
    """The confirmation email, in the language the candidate saw the site in: plain text and the same in simple
    HTML; no answers, no files. No header holds text the candidate typed: `To` is the address alone.

    Raises:
        ValueError: the address cannot be written, or the message as written has other headers than the ones set
            (an injection the steps above missed): it is not sent.
    """
    assert record.application is not None  # noqa: S101 (the caller sends only for a record that has one)
    words = _Words(words_in(record.language or "en"), settings.company_name, _one_line(record.posting_title),
                   first_name(record.application.personal.get("fullName", "")), record.receipt,
                   status_url(settings, record.receipt))
    message = EmailMessage()
    message["Subject"] = words.subject
    message["From"] = settings.mail_from
    message["To"] = Address(addr_spec=record.application.email)
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = make_msgid("receipt", domain=parseaddr(settings.mail_from)[1].rpartition("@")[2])
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: out-of-office replies stay away
    message.set_content(words.text())
    message.add_alternative(words.html(), subtype="html")
    _check_headers(message)
    return message


def _check_headers(message: EmailMessage) -> None:
    """Read the message back as it will be written to the mail server: the same headers, and only those."""
    try:
        written = message.as_bytes(policy=message.policy.clone(linesep="\r\n"))
    except MessageError as e:  # a fixed Python's own check (HeaderWriteError)
        raise ValueError(str(e)) from None
    found = BytesHeaderParser(policy=email.policy.default).parsebytes(written).keys()
    if [k.lower() for k in found] != [k.lower() for k in message.keys()]:  # noqa: SIM118 (Message is no dict)
        raise ValueError("the message as written has headers it was not given")


@dataclass(frozen=True)
class _Words:
    """The email's words in one language: `gettext` is that language's (each method calls it `_`, which pybabel
    extracts)."""

    gettext: Callable[[str], str]
    company: str
    title: str
    name: str
    receipt: str
    url: str

    @property
    def subject(self) -> str:
        _ = self.gettext
        return _("We received your application for %(title)s") % {"title": self.title or _("a job")}

    def _lines(self) -> tuple[str, str, str, list[str], str, str, str, str]:
        _ = self.gettext
        return (_("Hello %(name)s,") % {"name": self.name} if self.name else _("Hello,"),
                _("Thank you for applying for %(title)s at %(company)s. We received your application."),
                _("What happens next"),
                [_("We pass your application to the hiring team."),
                 _("The team reads it and gets in touch with you, usually within two weeks.")],
                _("Your reference: %(reference)s (give it if you contact us about this application)"),
                _("Follow your application"),
                _("The receipt page shows no personal details, so it is safe to keep."),
                _("This email was sent automatically; replies are not read."))

    def text(self) -> str:
        hello, thanks, next_, steps, number, follow, safe, automatic = self._lines()
        title = self.title or self.gettext("a job")
        numbered = "\n".join(f"{i}. {step}" for i, step in enumerate(steps, 1))
        return (f"{hello}\n\n{thanks % {'title': title, 'company': self.company}}\n\n{next_}:\n{numbered}\n\n"
                f"{number % {'reference': store.reference(self.receipt)}}\n{follow}: {self.url}\n{safe}\n\n"
                f"{self.company}\n({automatic})\n")

    def html(self) -> str:
        e = html.escape
        hello, thanks, next_, steps, number, follow, safe, automatic = self._lines()
        title = self.title or self.gettext("a job")
        thanks_html = e(thanks) % {"title": f"<strong>{e(title)}</strong>", "company": e(self.company)}
        items = "".join(f"<li>{e(step)}</li>" for step in steps)
        return (f'<!doctype html><html><body style="font-family:sans-serif;line-height:1.5;color:#1d2433">'
                f"<p>{e(hello)}</p><p>{thanks_html}</p>"
                f'<h2 style="font-size:1.1em">{e(next_)}</h2><ol>{items}</ol>'
                f"<p>{e(number) % {'reference': f'<strong>{e(store.reference(self.receipt))}</strong>'}}<br>"
                f'<a href="{e(self.url)}">{e(follow)}</a></p>'
                f"<p>{e(safe)}</p>"
                f"<p>{e(self.company)}<br><small>{e(automatic)}</small></p>"
                f"</body></html>")

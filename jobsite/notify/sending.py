"""Sending one email at most once, over SMTP (`JOBSITE_SMTP_URL`): the record of what became of it, the transport
and its errors. It knows no message: the caller names the message's key and hands a function that writes it.

This module owns the keys `mail:*`: what became of one message (sending, sent, refused, ...) and when. A send
claims the key first, so a duplicate job or a retry after success never sends a second copy; and when the
connection is lost while the server was taking the message, the email may have gone, so it is not sent again.
Addresses are never logged: log lines and errors name the message by a label the caller chooses (a receipt's
first characters), and a server's answer that repeats the address has it blanked.
"""

from __future__ import annotations

import functools
import json
import logging
import smtplib
import ssl
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from email.errors import HeaderParseError
from email.message import EmailMessage
from enum import StrEnum
from typing import Any

import redis

from ..keyspace.notify_keys import MAIL
from ..settings import Smtp
from . import pace

log = logging.getLogger(__name__)

CLAIM_S = 600  # a send in progress holds the key this long (far past the SMTP timeouts); if its worker died, the
# claim lapses and nothing sends it again: the email may have gone


RECIPIENT_REFUSED = "the mail server refused the recipient's address"


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


_LABELS = {
    Status.SENDING: "Sending",
    Status.SENT: "Sent",
    Status.REFUSED: "Refused by the mail server",
    Status.UNKNOWN: "Maybe sent (the connection was lost)",
    Status.FAILED: "Not sent (the mail server could not take it)",
}


@dataclass(frozen=True)
class MailState:
    """What became of one email, and when (epoch seconds)."""

    status: Status
    at: float
    address_refused: bool = False  # REFUSED because the mail server refused the recipient's address for good (5xx)


class MailDeferred(Exception):
    """The mail server could not take the email now (no connection, a 4xx answer): the job is tried again later.
    Its message names no address (a server's answer that repeats the recipient's address has it blanked)."""


@dataclass(frozen=True)
class Letter:
    """A written email and the one address it goes to (its `To`, already checked by messages.write)."""

    message: EmailMessage
    address: str


def key(name: str) -> str:
    return MAIL.format(name)


def state(r: redis.Redis, name: str) -> MailState | None:
    """What became of the email `name`; None when none was sent or tried (or it was purged)."""
    raw = r.get(key(name))
    if not raw:
        return None
    data = json.loads(raw)
    return MailState(Status(data["status"]), float(data["at"]), bool(data.get("address_refused")))


def forget(r: redis.Redis, name: str) -> None:
    """Remove what is kept of the email `name` (its recipient's personal data is being purged)."""
    r.delete(key(name))


def send_once(
    r: redis.Redis,
    smtp: Smtp,
    name: str,
    write: Callable[[], Letter | None],
    *,
    label: str,
    last_try: bool = True,
    keep_s: int | None = None,
    bulk: bool = False,
) -> Status | None:
    """Send the email `name` unless it was sent (or tried for good) already. `write` is called once the claim is
    ours and returns the letter, or None when there is nothing to send any more (the person's data is gone); it
    raises ValueError (or HeaderParseError) when the message cannot be written safely: it is refused, not sent.
    `label` names the email in log lines (no personal data); `keep_s` lets the record of the outcome expire.
    Every email waits for its slot on the shared pace (pace.py, JOBSITE_MAIL_PER_SECOND); `bulk` mail (alerts) leaves
    a share of the slots to the emails a person waits for.

    Returns what became of it, or None when there is nothing to send (or another worker is sending it now).

    Raises:
        MailDeferred: the mail server could not take it now and this is not the `last_try`, or no slot of the pace
            came free within a minute (whatever the try): try again later.
    """
    if (found := state(r, name)) is not None:  # sent or tried already (or being sent): no slot of the pace for it
        return found.status if found.status != Status.SENDING else None
    try:  # the slot before the claim: a Redis lost while waiting for it leaves no claim behind
        pace.take(r, smtp.per_second, bulk=bulk)
    except pace.Paced as e:
        raise MailDeferred(str(e)) from None
    token = uuid.uuid4().hex
    if not r.set(key(name), _value(Status.SENDING, token), nx=True, ex=CLAIM_S):
        found = state(r, name)
        return found.status if found and found.status != Status.SENDING else None
    try:
        try:
            letter = write()
        except (ValueError, HeaderParseError):
            outcome, why = Status.REFUSED, "the recipient's address is not one an email can be sent to"
        else:
            if letter is None:
                _release(r, name, token)
                return None
            outcome, why = _send(smtp, letter.message, letter.address)
    except MailDeferred as e:
        if not last_try:
            log.info("%s: tried again later (%s)", label, e)
            _release(r, name, token)
            raise
        outcome, why = Status.FAILED, f"not sent after every retry ({e})"
    except BaseException:
        _release(r, name, token)  # an unexpected error fails the job (RQ keeps it) and records nothing
        raise
    r.set(key(name), _value(outcome, address_refused=why.startswith(RECIPIENT_REFUSED)), ex=keep_s)
    if outcome == Status.SENT:
        log.info("%s sent", label)
    else:
        log.warning("%s %s: %s", label, outcome.value, why)
    return outcome


def _value(status: Status, token: str = "", address_refused: bool = False) -> str:
    value: dict[str, Any] = {"status": status.value, "at": time.time(), "token": token}
    if address_refused:
        value["address_refused"] = True
    return json.dumps(value)


def _release(r: redis.Redis, name: str, token: str) -> None:
    """Drop our claim (only ours: a claim that ran out may have been taken by another worker)."""
    with r.pipeline() as pipe:
        try:
            pipe.watch(key(name))
            raw = pipe.get(key(name))
            if raw and json.loads(raw).get("token") == token:
                pipe.multi()
                pipe.delete(key(name))
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
        code, reply = next(iter(e.recipients.values()))  # one recipient
        why = _why(smtplib.SMTPResponseException(code, reply), address)
        if code >= 500:
            return Status.REFUSED, f"{RECIPIENT_REFUSED}: {why}"
        raise MailDeferred(f"the mail server deferred the recipient's address: {why}") from None
    except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as e:
        if e.smtp_code >= 500:
            return Status.REFUSED, f"the mail server refused it: {_why(e, address)} (check JOBSITE_MAIL_FROM)"
        raise MailDeferred(f"the mail server deferred it: {_why(e, address)}") from None
    except smtplib.SMTPNotSupportedError:
        return Status.REFUSED, "the recipient's address needs SMTPUTF8, which the mail server does not offer"
    except (OSError, smtplib.SMTPException) as e:
        if connection.handing_over:
            return Status.UNKNOWN, (
                f"the connection was lost while the mail server took it ({type(e).__name__}); "
                "it may have been sent, so it is not sent again"
            )
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


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """The TLS context of every connection to the mail server, built once per process: loading the system's
    certificates took 90 ms, most of an alert's send on a loaded machine (bench/alerts_bench.py)."""
    return ssl.create_default_context()


def _connect(smtp: Smtp) -> _Handover:
    connection: _Handover
    if smtp.security == "tls":
        connection = _HandoverTLS(smtp.host, smtp.port, timeout=smtp.timeout_s, context=_tls_context())
    else:
        connection = _Handover(smtp.host, smtp.port, timeout=smtp.timeout_s)
    try:
        if smtp.security == "starttls":
            connection.starttls(context=_tls_context())
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
    """An SMTP error in words that name no one: servers often repeat the address in their answer."""
    if isinstance(error, smtplib.SMTPResponseException):
        reply = (
            error.smtp_error.decode("utf-8", "replace")
            if isinstance(error.smtp_error, bytes)
            else str(error.smtp_error)
        )
        text = f"{error.smtp_code} {reply}"
    else:
        text = f"{type(error).__name__}: {error}"
    if address:
        text = _blank(text, address)
    return " ".join(text.split())[:300]


def _blank(text: str, address: str) -> str:
    lower, needle, out, i = text.lower(), address.lower(), [], 0
    while (j := lower.find(needle, i)) >= 0:
        out += [text[i:j], "<recipient>"]
        i = j + len(needle)
    return "".join(out) + text[i:]

"""The candidate's confirmation email: a receipt by email, sent by a worker as soon as the application is accepted,
whatever Lever is doing, at most once per application (its record is `mail:{receipt}`, sending.py).

The email carries no answers and no files; its address is read from the stored application when it is sent (the
job carries only the receipt), and it is never logged: log lines and errors name the receipt's first characters.
Its words are templates/email/received.txt and .html.
"""

from __future__ import annotations

from email.message import EmailMessage

import redis

from ..records import store
from ..records.store import Record
from ..settings import Settings
from . import messages, sending
from .sending import Letter, Status


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
    if settings.smtp is None:
        return None

    def write() -> Letter | None:
        record = store.load(r, receipt)
        if record is None or record.application is None or not record.application.email:
            return None
        return Letter(compose(settings, record), record.application.email)

    return sending.send_once(
        r, settings.smtp, receipt, write, label=f"confirmation email {receipt[:8]}", last_try=last_try
    )


def compose(settings: Settings, record: Record) -> EmailMessage:
    """The confirmation email, in the language the candidate saw the site in: no answers, no files; of what the
    candidate typed, only the first word of the name when it looks like one (messages.first_name).

    Raises:
        ValueError: the address cannot be written, or the message gained a header (messages.write): not sent.
    """
    assert record.application is not None  # noqa: S101 (the caller sends only for a record that has one)
    return messages.write(
        settings,
        "received",
        record.language or "en",
        record.application.email,
        kind="receipt",
        company=settings.company_name,
        title=messages.one_line(record.posting_title),
        name=messages.first_name(record.application.personal.get("fullName", "")),
        reference=store.reference(record.receipt),
        url=status_url(settings, record.receipt),
    )

"""Double opt-in for the talent community: a sign-up reaches Lever only once its address is confirmed.

Anyone may sign up any address, so a sign-up first costs nothing but one email to that address (with no text of the
signer's in it: not even a name), and waits in `people.UNCONFIRMED`. The email's link is signed (an HMAC of the
person's id under JOBSITE_SECRET_KEY) and opens a page with one button: the confirmation is that button's `POST`,
because mail scanners open every link in an email. Confirmed, the person is queued for delivery as any sourced
person; unconfirmed after `EXPIRE_DAYS`, they are removed with every trace (retention's upkeep).

With no mail server (JOBSITE_SMTP_URL unset and no sandbox outbox) no address can be confirmed, so sign-ups go to
Lever at once, as before double opt-in; the README says so.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time

import redis

from ..delivery.jobs import enqueue_sourced
from ..notify import messages, sending
from ..notify.sending import Letter, Status
from ..records import uploads
from ..services import Services
from ..settings import Settings
from . import people
from .people import Person

log = logging.getLogger(__name__)

EXPIRE_DAYS = 7


def wanted(settings: Settings) -> bool:
    """Whether sign-ups wait for their address to be confirmed: only when an email can be sent to ask."""
    return settings.smtp is not None


def token(settings: Settings, person_id: str) -> str:
    return hmac.new(settings.secret_key.encode(), f"optin\n{person_id}".encode(), hashlib.sha256).hexdigest()[:32]


def url(settings: Settings, person_id: str) -> str:
    """The link of the opt-in email (web/candidates.py serves it: a page with one button)."""
    base = settings.public_url or f"http://localhost:{settings.port}"
    return f"{base}/talent/confirm/{person_id}/{token(settings, person_id)}"


def mail_key(person_id: str) -> str:
    return f"optin:{person_id}"


def send(svc: Services, person_id: str, *, last_try: bool = True) -> Status | None:
    """Send the sign-up's opt-in email at most once. Returns what became of it, or None when there is nothing to
    send (no mail server, the person confirmed or is gone).

    Raises:
        MailDeferred: the mail server could not take it now and this is not the `last_try`.
    """
    settings = svc.settings
    if settings.smtp is None:
        return None

    def write() -> Letter | None:
        person = people.load(svc.redis, person_id)
        if person is None or not person.unconfirmed or not person.email:
            return None
        message = messages.write(settings, "optin", person.language or "en", person.email, kind="optin",
                                 company=settings.company_name, url=url(settings, person_id), days=EXPIRE_DAYS)
        return Letter(message, person.email)

    return sending.send_once(svc.redis, settings.smtp, mail_key(person_id), write,
                             label=f"opt-in email {person_id[:8]}", last_try=last_try,
                             keep_s=(EXPIRE_DAYS + 1) * 86400)


def confirm(svc: Services, person_id: str, signed: str) -> Person | None:
    """Confirm the sign-up whose link this is and queue its delivery (once: a second click finds it confirmed).
    None when the link is not ours or the sign-up is gone (expired, withdrawn)."""
    if not hmac.compare_digest(signed.encode(), token(svc.settings, person_id).encode()):
        return None
    r = svc.redis
    with r.pipeline() as pipe:
        while True:
            try:
                pipe.watch(people.KEY.format(person_id))
                person = people.load(pipe, person_id)
                if person is None or person.purged:
                    return None
                if not person.unconfirmed:
                    return person
                person.unconfirmed = False
                pipe.multi()
                people.save(pipe, person)
                pipe.zrem(people.UNCONFIRMED, person.id)
                pipe.zadd(people.PENDING, {person.id: person.created_at})
                people.set_job(pipe, person.id, enqueue_sourced(r, person.id, pipeline=pipe))
                pipe.execute()
                log.info("talent sign-up %s confirmed", person_id[:8])
                return person
            except redis.WatchError:
                continue


def expire(svc: Services, now: float | None = None) -> int:
    """Remove the sign-ups left unconfirmed for EXPIRE_DAYS, with every trace (they never reached Lever)."""
    r = svc.redis
    cutoff = (now or time.time()) - EXPIRE_DAYS * 86400
    due = people.load_many(r, [x.decode() for x in r.zrangebyscore(people.UNCONFIRMED, 0, cutoff)])
    for person in due:
        uploads.remove(r, person.id)
        sending.forget(r, mail_key(person.id))
        people.remove(r, person)
    if due:
        log.info("opt-in: removed %d sign-ups never confirmed", len(due))
    return len(due)

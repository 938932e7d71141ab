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

import logging
import time
from typing import Any

import redis

from ..delivery.jobs import enqueue_sourced
from ..delivery.sender import Delivery
from ..notify import links, messages, sending
from ..notify.sending import Letter, Status
from ..settings import Settings
from . import opportunities, people
from .people import Person

log = logging.getLogger(__name__)

EXPIRE_DAYS = 7


def wanted(settings: Settings) -> bool:
    """Whether sign-ups wait for their address to be confirmed: only when an email can be sent to ask."""
    return settings.smtp is not None


def token(settings: Settings, person_id: str, purpose: str = "optin") -> str:
    """The signature of a person's links: "optin" (confirm) or "manage" (change interests, unsubscribe, leave)."""
    return links.token(settings, person_id, purpose)


def signed(settings: Settings, person_id: str, given: str, purpose: str = "optin") -> bool:
    return links.signed(settings, person_id, given, purpose)


def url(settings: Settings, person_id: str) -> str:
    """The link of the opt-in email (web/candidates.py serves it: a page with one button)."""
    return links.signed_url(settings, "/talent/confirm", person_id, "optin")


def manage_url(settings: Settings, person_id: str) -> str:
    """The link at the end of every email to a member: their interests, unsubscribing, leaving."""
    return links.signed_url(settings, "/talent/manage", person_id, "manage")


def mail_key(person_id: str) -> str:
    return f"optin:{person_id}"


def send(delivery: Delivery, person_id: str, *, last_try: bool = True) -> Status | None:
    """Send the sign-up's opt-in email at most once. Returns what became of it, or None when there is nothing to
    send (no mail server, the person confirmed or is gone).

    Raises:
        MailDeferred: the mail server could not take it now and this is not the `last_try`.
    """
    settings = delivery.settings
    if settings.smtp is None:
        return None

    def write() -> Letter | None:
        person = people.load(delivery.redis, person_id)
        if person is None or not person.unconfirmed or not person.email or person.unsubscribed:
            return None
        message = messages.write(
            settings,
            "optin",
            person.language or "en",
            person.email,
            kind="optin",
            company=settings.company_name,
            url=url(settings, person_id),
            days=EXPIRE_DAYS,
            manage=manage_url(settings, person_id),
        )
        return Letter(message, person.email)

    return sending.send_once(
        delivery.redis,
        settings.smtp,
        mail_key(person_id),
        write,
        label=f"opt-in email {person_id[:8]}",
        last_try=last_try,
        keep_s=(EXPIRE_DAYS + 1) * 86400,
    )


def confirm(delivery: Delivery, person_id: str, given: str) -> Person | None:
    """Confirm the sign-up whose link this is and queue its delivery (once: a second click finds it confirmed).
    None when the link is not ours or the sign-up is gone (expired, withdrawn)."""
    if not signed(delivery.settings, person_id, given):
        return None
    r = delivery.redis
    with r.pipeline() as pipe:
        while True:
            try:
                pipe.watch(people.KEY.format(person_id))
                person = people.load(pipe, person_id)
                if person is None or person.purged:
                    return None
                if not person.unconfirmed or person.unsubscribed:
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


def expire(r: redis.Redis, now: float | None = None) -> int:
    """Remove the sign-ups left unconfirmed for EXPIRE_DAYS, with every trace (they never reached Lever)."""
    cutoff = (now or time.time()) - EXPIRE_DAYS * 86400
    removed = 0
    for person_id in [x.decode() for x in r.zrangebyscore(people.UNCONFIRMED, 0, cutoff)]:
        if people.remove_unconfirmed(r, person_id, joined_before=cutoff):  # (not one confirmed meanwhile)
            sending.forget(r, mail_key(person_id))
            removed += 1
    if removed:
        log.info("opt-in: removed %d sign-ups never confirmed", removed)
    return removed


def change(delivery: Delivery, person_id: str, **wish: Any) -> Person | None:
    """What the member asked on the manage page (`teams` and `locations`, `unsubscribed`, `withdrawn`): recorded as
    their wish with a job to tell Lever, in one transaction, never written over the record a delivery in progress
    holds; written in at once when no worker holds the person's lease, else by the holder or that job
    (sourcing/opportunities.py). Returns the person as they now stand, with the wish (None: gone). The web counts
    a member's changes first (admission/limits.check_changes)."""
    r = delivery.redis
    people.wish(
        r, person_id, lambda pipe: people.set_job(pipe, person_id, enqueue_sourced(r, person_id, pipeline=pipe)), **wish
    )
    person = opportunities.apply_now(delivery, person_id)
    return None if person is None else people.as_wished(person, people.wished(r, person_id))


def leave(delivery: Delivery, person: Person) -> None:
    """The member withdraws consent: the site's copy goes now (record's personal data, files, the search's words),
    Lever is told (a tag and a note on their opportunity, if it has one), and nothing is sent again; an unconfirmed
    sign-up goes entirely (nothing of it reached Lever)."""
    r = delivery.redis
    sending.forget(r, mail_key(person.id))
    if people.remove_unconfirmed(r, person.id) is not False:  # read again, watched: a confirm meanwhile is kept
        return
    change(delivery, person.id, withdrawn=True, unsubscribed=True)

"""Retention of sourced people: their personal data goes on the applications' schedule (JOBSITE_RETENTION_DAYS after
delivery), and at once when Lever deletes the person (candidateDeleted). Lever's ids, the kind, the event and the
dates stay, for the counts."""

from __future__ import annotations

import logging
import time

from ..delivery.sender import Delivery
from ..sourcing import opportunities, optin, people

log = logging.getLogger(__name__)


def purge(delivery: Delivery, now: float | None = None) -> int:
    """Remove the personal data of people delivered more than the retention period ago, and the sign-ups never
    confirmed (optin.expire); returns how many of the first."""
    optin.expire(delivery.redis, now)
    r = delivery.redis
    cutoff = (now or time.time()) - delivery.settings.retention_days * 86400
    due = people.load_many(r, people.delivered_before(r, cutoff))
    for person in due:
        _remove(delivery, person)
    if due:
        log.info("retention: removed personal data of %d sourced people", len(due))
    return len(due)


def forget(delivery: Delivery, contact_id: str) -> int:
    """Lever deleted the person: remove what we hold about them now, whatever their age. Returns how many."""
    r = delivery.redis
    found = people.load_many(r, people.of_contact(r, contact_id))
    for person in found:
        _remove(delivery, person)
    people.forget_contact(r, contact_id)
    return len(found)


def _remove(delivery: Delivery, person: people.Person) -> None:
    """Purge the person under their lease, never over a delivery's copy of the record: as a wish the lease holder
    writes in (at once if no worker holds it; else that worker, or upkeep, moments later); its files go then too,
    in the same transaction (take_wish), never from under a delivery that may still read them."""
    people.wish(delivery.redis, person.id, purge=True)
    opportunities.apply_now(delivery, person.id, wait_s=0)

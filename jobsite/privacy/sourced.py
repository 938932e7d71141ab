"""Retention of sourced people: their personal data goes on the applications' schedule (JOBSITE_RETENTION_DAYS after
delivery), and at once when Lever deletes the person (candidateDeleted). Lever's ids, the kind, the event and the
dates stay, for the counts."""

from __future__ import annotations

import logging
import time

import redis

from ..records import uploads
from ..sourcing import optin, people

log = logging.getLogger(__name__)


def purge(r: redis.Redis, days: int, now: float | None = None) -> int:
    """Remove the personal data of people delivered more than the retention period ago, and the sign-ups never
    confirmed (optin.expire); returns how many of the first."""
    optin.expire(r, now)
    cutoff = (now or time.time()) - days * 86400
    due = people.load_many(r, people.delivered_before(r, cutoff))
    for person in due:
        _remove(r, person)
    if due:
        log.info("retention: removed personal data of %d sourced people", len(due))
    return len(due)


def forget(r: redis.Redis, contact_id: str) -> int:
    """Lever deleted the person: remove what we hold about them now, whatever their age. Returns how many."""
    found = people.load_many(r, people.of_contact(r, contact_id))
    for person in found:
        _remove(r, person)
    r.delete(people.CONTACT.format(contact_id))
    return len(found)


def _remove(r: redis.Redis, person: people.Person) -> None:
    uploads.remove(r, person.id)
    people.purge_personal_data(r, person)

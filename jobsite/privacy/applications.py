"""Retention: personal data of delivered (and discarded) applications is removed after RETENTION_DAYS; applications
that need attention are kept until a recruiter acts. Counts and Lever's ids stay."""

from __future__ import annotations

import logging
import time

import redis

from ..notify import sending
from ..records import store, uploads
from ..records.store import State

log = logging.getLogger(__name__)


def purge(r: redis.Redis, days: int, now: float | None = None) -> int:
    """Remove personal data older than the retention period; returns how many applications were purged.
    Delivered ones are found by delivery time (an index), so an hourly run reads only what it purges."""
    now = now or time.time()
    cutoff = now - days * 86400
    due = store.delivered_before(r, cutoff)
    due += [
        rec.receipt
        for rec in store.load_many(r, store.receipts(r, State.DISCARDED, 100_000))
        if not rec.purged and rec.updated_at <= cutoff
    ]
    for receipt in due:
        _remove(r, receipt)
    if due:
        log.info("retention: removed personal data of %d application(s)", len(due))
    return len(due)


def _remove(r: redis.Redis, receipt: str) -> None:
    uploads.remove(r, receipt)
    store.purge_personal_data(r, receipt)
    sending.forget(r, receipt)


def forget_person(r: redis.Redis, contact_id: str) -> int:
    """Lever deleted the person (candidateDeleted): remove what we hold about them now, whatever their age; their
    applications stay counted. Returns how many applications they had."""
    receipts = store.of_contact(r, contact_id)
    for receipt in receipts:
        _remove(r, receipt)
    store.forget_contact(r, contact_id)
    return len(receipts)

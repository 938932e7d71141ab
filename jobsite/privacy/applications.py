"""Retention: personal data of delivered (and discarded) applications is removed after RETENTION_DAYS; applications
that need attention are kept until a recruiter acts. Counts and Lever's ids stay."""

from __future__ import annotations

import logging
import time

from ..notify import sending
from ..records import store, uploads
from ..records.store import State
from ..services import Services

log = logging.getLogger(__name__)


def purge(svc: Services, now: float | None = None) -> int:
    """Remove personal data older than the retention period; returns how many applications were purged.
    Delivered ones are found by delivery time (an index), so an hourly run reads only what it purges."""
    r = svc.redis
    now = now or time.time()
    cutoff = now - svc.settings.retention_days * 86400
    due = store.delivered_before(r, cutoff)
    due += [rec.receipt for rec in store.load_many(r, store.receipts(r, State.DISCARDED, 100_000))
            if not rec.purged and rec.updated_at <= cutoff]
    for receipt in due:
        _remove(svc, receipt)
    if due:
        log.info("retention: removed personal data of %d application(s)", len(due))
    return len(due)


def _remove(svc: Services, receipt: str) -> None:
    uploads.remove(svc.redis, receipt)
    store.purge_personal_data(svc.redis, receipt)
    sending.forget(svc.redis, receipt)


def forget_person(svc: Services, contact_id: str) -> int:
    """Lever deleted the person (candidateDeleted): remove what we hold about them now, whatever their age; their
    applications stay counted. Returns how many applications they had."""
    receipts = store.of_contact(svc.redis, contact_id)
    for receipt in receipts:
        _remove(svc, receipt)
    store.forget_contact(svc.redis, contact_id)
    return len(receipts)

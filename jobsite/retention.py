"""Retention: personal data of delivered (and discarded) applications is removed after RETENTION_DAYS; applications
that need attention are kept until a recruiter acts. Counts and Lever's ids stay."""

from __future__ import annotations

import logging
import shutil
import time

from . import applications as store
from .applications import State
from .services import Services

log = logging.getLogger(__name__)

ORPHAN_UPLOAD_AGE_S = 86400  # files of a submission that never made it into Redis nor the spool


def purge(svc: Services, now: float | None = None) -> int:
    """Remove personal data older than the retention period; returns how many applications were purged.
    Delivered ones are found by delivery time (an index), so an hourly run reads only what it purges."""
    r = svc.redis
    now = now or time.time()
    cutoff = now - svc.settings.retention_days * 86400
    due = [x.decode() for x in r.zrangebyscore(store.DELIVERED_LOG, "-inf", cutoff)]
    due += [rec.receipt for rec in store.load_many(r, store.receipts(r, State.DISCARDED, 100_000))
            if not rec.purged and rec.updated_at <= cutoff]
    for receipt in due:
        shutil.rmtree(svc.settings.data_dir / "uploads" / receipt, ignore_errors=True)
        pipe = r.pipeline()
        pipe.hset(store.record_key(receipt), mapping={"application": "", "files": "[]", "uploads": "{}",
                                                      "purged": "1", "last_error": ""})
        pipe.delete(store.ATTEMPTS.format(receipt))
        pipe.zrem(store.DELIVERED_LOG, receipt)  # the log only feeds the last 24 hours' chart and rates
        pipe.execute()
    _remove_orphan_uploads(svc, now)
    if due:
        log.info("retention: removed personal data of %d application(s)", len(due))
    return len(due)


def _remove_orphan_uploads(svc: Services, now: float) -> None:
    folder = svc.settings.data_dir / "uploads"
    if not folder.is_dir():
        return
    spooled = {p.name.split("-", 1)[1].removesuffix(".json") for p in (svc.settings.data_dir / "spool").glob("*.json")}
    for d in folder.iterdir():
        if d.is_dir() and now - d.stat().st_mtime > ORPHAN_UPLOAD_AGE_S and d.name not in spooled:
            if not svc.redis.exists(store.record_key(d.name)):
                shutil.rmtree(d, ignore_errors=True)

"""Intake: persist a valid application and queue its delivery, before the candidate gets a receipt.

The record and its RQ job are written in one Redis transaction (Redis keeps an append-only file); the files are
written to the data dir and fsynced first. If Redis cannot be reached the whole application goes to the on-disk spool,
fsynced, and the candidate still gets a receipt; workers and later submissions move the spool into Redis.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass

import redis

from . import metrics, spool, store, uploads
from .application import Application
from .forms import UploadedFile
from .queue import enqueue_delivery
from .ratelimit import ip_digest
from .services import Services
from .store import Record, State

log = logging.getLogger(__name__)

IDEMPOTENCY_TTL_S = 7 * 86400


class TooManySubmissions(Exception):
    """This IP address sent more applications this hour than allowed."""


@dataclass(frozen=True)
class Receipt:
    receipt: str
    status: str
    duplicate: bool = False  # an earlier submission with the same idempotency key


def _idem_key(key: str) -> str:
    return "idem:" + hashlib.sha256(key.encode()).hexdigest()


def _ip_key(ip: str) -> str:
    return f"submissions:ip:{ip_digest(ip)}:{int(time.time() // 3600)}"


def check_ip(svc: Services, ip: str) -> None:
    """Count a submission from `ip`; raise TooManySubmissions above the hourly limit. With Redis down the limit is
    skipped (an application must never be refused for that), which is logged and counted."""
    try:
        pipe = svc.redis.pipeline()
        pipe.incr(_ip_key(ip))
        pipe.expire(_ip_key(ip), 3600)
        count = pipe.execute()[0]
    except redis.RedisError as e:
        log.warning("per-address submission limit skipped: Redis unreachable (%s)", type(e).__name__)
        metrics.count_in_process("jobsite_ip_limit_skipped_total")
        return
    if count > svc.settings.submissions_per_ip_per_hour:
        raise TooManySubmissions()


def previous(svc: Services, idempotency_key: str | None) -> Receipt | None:
    """The receipt of an earlier submission with this idempotency key, if any."""
    if not idempotency_key:
        return None
    try:
        found = svc.redis.get(_idem_key(idempotency_key))
        if not found:
            return None
        record = store.load(svc.redis, found.decode())
    except redis.RedisError:
        return None
    return Receipt(found.decode(), record.state.public if record else State.QUEUED.public, duplicate=True)


def submit(svc: Services, application: Application, files: Mapping[str, UploadedFile], *,
           posting_title: str = "", idempotency_key: str | None = None, source: str = "",
           client: str = "") -> Receipt:
    """Persist and queue an application; returns its receipt only once it is durable. A used idempotency key
    returns the first receipt (checked atomically with the write; the web checks it before validating too).
    `source` is where the candidate came from; `client` the integrator whose backend sent it, if one did."""
    receipt = store.new_receipt()
    stored = uploads.save(svc.settings.data_dir, receipt, files)
    record = Record(receipt=receipt, posting_id=application.posting_id, state=State.QUEUED, created_at=time.time(),
                    application=application, files=stored, posting_title=posting_title, source=source,
                    client=client)
    try:
        receipt_ = _commit(svc, record, idempotency_key)
    except redis.RedisError as e:
        log.warning("Redis unreachable (%s): application %s spooled to disk", type(e).__name__, receipt[:8])
        spool.write(svc.settings.data_dir, record, idempotency_key)
        return Receipt(receipt, State.QUEUED.public)
    if spool.entries(svc.settings.data_dir):  # Redis is back: move what this machine spooled (also done by workers)
        try:
            drain_spool(svc)
        except redis.RedisError:
            pass
    return receipt_


def _commit(svc: Services, record: Record, idempotency_key: str | None) -> Receipt:
    """Write record + job (+ idempotency key) atomically. A concurrent duplicate loses the WATCH race and gets the
    winner's receipt."""
    r = svc.redis
    idem = _idem_key(idempotency_key) if idempotency_key else None
    with r.pipeline() as pipe:
        try:
            if idem:
                pipe.watch(idem)
                if pipe.get(idem):
                    pipe.reset()
                    return previous(svc, idempotency_key) or Receipt(record.receipt, State.QUEUED.public)
            pipe.watch(store.record_key(record.receipt))
            if pipe.exists(store.record_key(record.receipt)):
                return Receipt(record.receipt, State.QUEUED.public, duplicate=True)  # spooled copy already moved
            pipe.multi()
            record.job_id = enqueue_delivery(r, record.receipt, pipeline=pipe)
            store.add(pipe, record)
            if idem:
                pipe.set(idem, record.receipt, ex=IDEMPOTENCY_TTL_S)
            pipe.execute()
        except redis.WatchError:
            return previous(svc, idempotency_key) or Receipt(record.receipt, State.QUEUED.public, duplicate=True)
    metrics.incr(r, "jobsite_applications_received_total")
    return Receipt(record.receipt, State.QUEUED.public)


def drain_spool(svc: Services) -> int:
    """Move this machine's spooled applications into Redis, oldest first. Safe to run from several processes."""
    data_dir = svc.settings.data_dir
    if not spool.entries(data_dir):
        return 0
    moved = 0
    with spool.drain_lock(data_dir) as mine:
        if not mine:
            return 0  # another process is draining
        for path in spool.entries(data_dir):
            record, idempotency_key = spool.read(path)
            _commit(svc, record, idempotency_key)
            path.unlink()
            moved += 1
    if moved:
        log.info("moved %d spooled application(s) into the queue", moved)
    return moved

"""Intake: persist a valid application and queue its delivery, before the candidate gets a receipt.

The record, its files' bytes and its RQ job are written in one Redis transaction (Redis keeps an append-only file),
so web and workers share nothing but Redis. Redis must never evict or refuse what was accepted: above a high-water
mark of its maxmemory, new applications are refused (RedisFull, the candidate keeps the form and tries again later).
If Redis cannot be reached the whole application, files included, goes to the on-disk spool, fsynced, and the
candidate still gets a receipt; the web process's drain thread, workers and later submissions move the spool into
Redis.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass

import redis

from .. import metrics, redis_server
from ..addresses import ip_digest
from ..delivery.jobs import enqueue_confirmation_email, enqueue_delivery
from ..records import spool, store, uploads
from ..records.application import Application, Attribution
from ..records.store import Record, State
from ..records.uploads import UploadedFile
from ..services import Services

log = logging.getLogger(__name__)

IDEMPOTENCY_TTL_S = 7 * 86400
FULL_RETRY_AFTER_S = 300  # memory is freed as Lever takes applications: worth another try in a few minutes


class TooManySubmissions(Exception):
    """This IP address sent more applications this hour than allowed."""


class IdempotencyConflict(Exception):
    """The idempotency key was used before with a different application (another posting, other answers or other
    files): answering with the first receipt would hand one person's receipt to another."""


class RedisFull(Exception):
    """Redis is above its high-water mark: an application accepted now might not fit, so none is accepted."""

    retry_after_s = FULL_RETRY_AFTER_S


@dataclass(frozen=True)
class Receipt:
    receipt: str
    status: str


@dataclass(frozen=True)
class Idempotency:
    """A client's idempotency key, scoped to the client that sent it, and the fingerprint of the application sent
    with it. A replay gets the first receipt only when both match."""

    key: str  # the Redis key
    fingerprint: str

    @classmethod
    def of(cls, key: str, application: Application, files: Mapping[str, UploadedFile],
           client: str = "") -> Idempotency:
        """`client` names an integrator, whose keys live apart from anonymous ones."""
        digest = hashlib.sha256(f"{client}\n{key}".encode()).hexdigest()
        body = hashlib.sha256(json.dumps(application.to_dict(), sort_keys=True).encode())
        for name in sorted(files):
            body.update(b"\0" + name.encode() + b"\0" + hashlib.sha256(files[name].content).digest())
        return cls("idem:" + digest, body.hexdigest())


def _ip_key(ip: str, secret: str, counter: str = "ip") -> str:
    return f"submissions:{counter}:{ip_digest(ip, secret)}:{int(time.time() // 3600)}"


def check_ip(svc: Services, ip: str, *, counter: str = "ip") -> None:
    """Count a submission from `ip`; raise TooManySubmissions above the hourly limit. With Redis down the limit is
    skipped (an application must never be refused for that), which is logged and counted. `counter` keeps another
    count under the same limit: "autofill", the resumes read to fill a form."""
    try:
        pipe = svc.redis.pipeline()
        key = _ip_key(ip, svc.settings.secret_key, counter)
        pipe.incr(key)
        pipe.expire(key, 3600)
        count = pipe.execute()[0]
    except redis.RedisError as e:
        log.warning("per-address submission limit skipped: Redis unreachable (%s)", type(e).__name__)
        metrics.count_in_process("jobsite_ip_limit_skipped_total")
        return
    if count > svc.settings.submissions_per_ip_per_hour:
        raise TooManySubmissions()


def previous(svc: Services, idem: Idempotency | None) -> Receipt | None:
    """The receipt of an earlier submission of the same application with this idempotency key, if any; raises
    IdempotencyConflict if the key came with a different application."""
    if idem is None:
        return None
    try:
        found = svc.redis.get(idem.key)
        if not found:
            return None
        fingerprint, _, receipt = found.decode().partition(" ")
        if fingerprint != idem.fingerprint:
            raise IdempotencyConflict()
        record = store.load(svc.redis, receipt)
    except redis.RedisError:
        return None
    return Receipt(receipt, record.state.public if record else State.QUEUED.public)


def submit(svc: Services, application: Application, files: Mapping[str, UploadedFile], *,
           posting_title: str = "", idempotency: Idempotency | None = None,
           attribution: Attribution | None = None, client: str = "", language: str = "") -> Receipt:
    """Persist and queue an application; returns its receipt only once it is durable. A used idempotency key
    returns the first receipt or raises IdempotencyConflict (checked atomically with the write). `attribution` is
    where the candidate came from; `client` the integrator whose backend sent it, if one did; `language` the one
    the candidate saw the site in."""
    receipt = store.new_receipt()
    stored, contents = uploads.describe(files)
    record = Record(receipt=receipt, posting_id=application.posting_id, state=State.QUEUED, created_at=time.time(),
                    application=application, files=stored, posting_title=posting_title, client=client,
                    language=language)
    where = attribution or Attribution()
    record.source, record.medium, record.campaign, record.referrer = (where.source, where.medium, where.campaign,
                                                                      where.referrer)
    try:
        check_room(svc, sum(map(len, contents.values())))
        receipt_ = _commit(svc, record, contents, idempotency)
    except redis.exceptions.OutOfMemoryError:
        # Redis is reachable but refused the transaction (it holds a file several times over while it runs, so a
        # large one near the mark can exceed maxmemory): nothing was written, and the candidate tries again later.
        log.warning("application refused: Redis refused the transaction at its maxmemory")
        raise RedisFull() from None
    except redis.RedisError as e:
        log.warning("Redis unreachable (%s): application %s spooled to disk", type(e).__name__, receipt[:8])
        spool.write(svc.settings.data_dir, record, asdict(idempotency) if idempotency else None, contents)
        return Receipt(receipt, State.QUEUED.public)
    if spool.entries(svc.settings.data_dir):  # Redis is back: move what this machine spooled (also done by workers)
        try:
            drain_spool(svc)
        except redis.RedisError:
            pass
    return receipt_


def check_room(svc: Services, incoming: int) -> None:
    """Raise RedisFull when `incoming` more bytes would take Redis past the high-water mark of its maxmemory. One
    INFO round trip per submission costs about 0.25 ms, mostly redis-py parsing the answer (Redis spends 3 us), under
    1 % of a submission (bench/intake_bench.py), so it is not cached: a cached figure would let a burst of large
    files past the mark."""
    mem = redis_server.memory(svc.redis)
    if mem.above(svc.settings.redis_high_water, incoming):
        log.warning("application refused: Redis uses %d of %d bytes (high-water mark %.0f%%)", mem.used, mem.limit,
                    svc.settings.redis_high_water * 100)
        metrics.incr(svc.redis, "jobsite_applications_refused_total", reason="redis_memory")
        raise RedisFull()


def _commit(svc: Services, record: Record, contents: Mapping[str, bytes], idem: Idempotency | None) -> Receipt:
    """Write record + files + job (+ idempotency key) atomically. A concurrent duplicate loses the WATCH race and
    gets the winner's receipt."""
    r = svc.redis
    with r.pipeline() as pipe:
        try:
            if idem:
                pipe.watch(idem.key)
                if pipe.get(idem.key):
                    pipe.reset()
                    return previous(svc, idem) or Receipt(record.receipt, State.QUEUED.public)
            pipe.watch(store.record_key(record.receipt))
            if pipe.exists(store.record_key(record.receipt)):
                return Receipt(record.receipt, State.QUEUED.public)  # spooled copy already moved
            pipe.multi()
            record.job_id = enqueue_delivery(r, record.receipt, pipeline=pipe)
            if svc.settings.smtp:  # the candidate's receipt by email, whatever Lever is doing
                enqueue_confirmation_email(r, record.receipt, pipeline=pipe)
            store.add(pipe, record)
            uploads.add(pipe, record.receipt, contents)
            if idem:
                pipe.set(idem.key, f"{idem.fingerprint} {record.receipt}", ex=IDEMPOTENCY_TTL_S)
            pipe.execute()
        except redis.WatchError:
            return previous(svc, idem) or Receipt(record.receipt, State.QUEUED.public)
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
            record, spooled, contents = spool.read(path)
            idem = Idempotency(**spooled) if spooled else None
            try:
                _commit(svc, record, contents, idem)
            except IdempotencyConflict:  # the candidate has this receipt: keep the application, not the key
                _commit(svc, record, contents, None)
            path.unlink()
            moved += 1
    if moved:
        log.info("moved %d spooled application(s) into the queue", moved)
    return moved

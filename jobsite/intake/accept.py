"""Intake: persist a valid application and queue its delivery, before the candidate gets a receipt.

The record, its files' bytes and its RQ job are written in one Redis transaction (Redis keeps an append-only file),
so web and workers share nothing but Redis. Redis must never evict or refuse what was accepted: above a high-water
mark of its maxmemory, new applications are refused (admission/memory.py, the candidate keeps the form and tries again).
If Redis cannot be reached the whole application, files included, goes to the on-disk spool, fsynced, and the
candidate still gets a receipt; the web process's drain thread (woken by the next submission Redis takes) and
workers move the spool into Redis.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import redis
from redis import Redis

from .. import metrics
from ..admission.idempotency import Idempotency, IdempotencyConflict
from ..admission.inputs import Admission
from ..admission.memory import RedisFull, check_room
from ..delivery.jobs import enqueue_confirmation_email, enqueue_delivery
from ..records import spool, store, uploads
from ..records.application import Application, Attribution
from ..records.store import Record, State
from ..records.uploads import UploadedFile

log = logging.getLogger(__name__)


class NowhereToKeep(Exception):
    """Redis cannot be reached and this machine's spool cannot be written (its disk is full): nothing keeps the
    application, so it is not accepted; the candidate keeps the form and tries again."""

    retry_after_s = 60


@dataclass(frozen=True)
class Intake:
    """What accepting an application uses, and nothing else: built once per process by the composition root
    (`Services.intake`) instead of passing the `Services` locator."""

    quick: Callable[[], Redis]  # a request's quick client; raises at once while Redis is known to be silent
    quick_wait: Callable[[], Redis]  # the same, with room for a WAIT for the replicas
    heard: Callable[[BaseException], None]  # tells the process's memory of Redis's silence of an error
    redis: Redis  # the process's client: the spool's drain, and its WAIT for the replicas
    wake_drain: Callable[[], None]  # wakes this process's drain thread: Redis takes applications again
    admission: Admission  # the memory guard
    data_dir: Path  # where this machine spools applications while Redis cannot take them
    files_url: str | None  # JOBSITE_FILES_URL: files in an object store rather than in Redis
    mail: bool  # whether the candidate gets a receipt by email
    redis_min_replicas: int
    redis_replica_wait_ms: int


@dataclass(frozen=True)
class Receipt:
    receipt: str
    status: str


def previous(intake: Intake, idem: Idempotency | None, r: redis.Redis | None = None) -> Receipt | None:
    """The receipt of an earlier submission of the same application with this idempotency key, if any, from Redis
    or, for one this machine spooled while Redis was down, from the spool; raises IdempotencyConflict if the key came
    with a different application. `r` is the drain's client; a request's is the quick one (services.py)."""
    if idem is None:
        return None
    try:
        r = r or intake.quick()
        found = r.get(idem.key)
        if found:
            receipt = idem.bound(found.decode())
            record = store.load(r, receipt)
            return Receipt(receipt, record.state.public if record else State.QUEUED.public)
    except redis.RedisError as e:
        intake.heard(e)
    spooled = spool.key_binding(intake.data_dir, idem.key)
    return Receipt(idem.bound(spooled), State.WAITING.public) if spooled else None


def submit(
    intake: Intake,
    application: Application,
    files: Mapping[str, UploadedFile],
    *,
    posting_title: str = "",
    idempotency: Idempotency | None = None,
    attribution: Attribution | None = None,
    client: str = "",
    language: str = "",
) -> Receipt:
    """Persist and queue an application; returns its receipt only once it is durable. A used idempotency key
    returns the first receipt or raises IdempotencyConflict (checked atomically with the write). `attribution` is
    where the candidate came from; `client` the integrator whose backend sent it, if one did; `language` the one
    the candidate saw the site in."""
    receipt = store.new_receipt()
    stored, contents = uploads.describe(files)
    record = Record(
        receipt=receipt,
        posting_id=application.posting_id,
        state=State.QUEUED,
        created_at=time.time(),
        application=application,
        files=stored,
        posting_title=posting_title,
        client=client,
        language=language,
    )
    where = attribution or Attribution()
    record.source, record.medium, record.campaign, record.referrer = (
        where.source,
        where.medium,
        where.campaign,
        where.referrer,
    )
    try:
        r = intake.quick()
        check_room(intake.admission, 0 if intake.files_url else sum(map(len, contents.values())))
        contents = _files_outside(intake, record, contents)
        receipt_ = _commit(intake, r, record, contents, idempotency, fresh=True)
    except redis.exceptions.OutOfMemoryError:
        # Redis is reachable but refused the transaction (it holds a file several times over while it runs, so a
        # large one near the mark can exceed maxmemory): nothing was written, and the candidate tries again later.
        log.warning("application refused: Redis refused the transaction at its maxmemory")
        raise RedisFull() from None
    except redis.RedisError as e:
        intake.heard(e)
        spooled = _spool(intake, record, contents, idempotency)
        log.warning("Redis unreachable (%s): application %s spooled to disk", type(e).__name__, receipt[:8])
        return spooled
    if receipt_.receipt == receipt and not replicated(intake, receipt, quick=True):  # on the primary
        # alone (or not on the primary WAIT reached): a failover could lose it
        log.warning(
            "application %s not on %d Redis replica(s) within %d ms: spooled to disk as well",
            receipt[:8],
            intake.redis_min_replicas,
            intake.redis_replica_wait_ms,
        )
        return _spool(intake, record, contents, idempotency)
    if spool.entries(intake.data_dir):
        # Redis is back: the drain thread moves what this machine spooled, not this request. The drain uses the
        # process's client (timeouts of 10 s, retries), and a Redis that falls silent again in the middle would
        # hold the candidate's answer for as long (a nemesis run saw 15 s).
        intake.wake_drain()
    return receipt_


def _spool(intake: Intake, record: Record, contents: Mapping[str, bytes], idem: Idempotency | None) -> Receipt:
    """Keep the application on this machine's disk, waiting for Redis. Its idempotency key is claimed once the
    application is written (a crash between leaves an application without its key, never a key without its
    application); a concurrent retry that claimed the key first keeps it, and this copy is dropped. NowhereToKeep
    when the disk refuses the write (full): then nothing of it stays."""
    data_dir = intake.data_dir
    try:
        spool.write(data_dir, record, asdict(idem) if idem else None, contents)
    except OSError as e:
        log.error("application refused: Redis unreachable and the spool cannot be written (%s)", e.strerror)
        raise NowhereToKeep() from None
    if idem:
        try:
            binding = spool.claim_key(data_dir, idem.key, f"{idem.fingerprint} {record.receipt}")
        except OSError as e:  # the candidate is told nothing was kept: nothing may be delivered
            spool.remove(data_dir, record)
            log.error("application refused: Redis unreachable and the spool cannot be written (%s)", e.strerror)
            raise NowhereToKeep() from None
        if not binding.endswith(" " + record.receipt):
            spool.remove(data_dir, record)
            return Receipt(idem.bound(binding), State.WAITING.public)
    return Receipt(record.receipt, State.WAITING.public)


def _commit(
    intake: Intake,
    r: redis.Redis,
    record: Record,
    contents: Mapping[str, bytes],
    idem: Idempotency | None,
    *,
    fresh: bool = False,
) -> Receipt:
    """Write record + files + job (+ idempotency key) and the received count atomically. A concurrent duplicate
    loses the WATCH race and gets the winner's receipt. `fresh`: the receipt was made for this request (random, 128
    bits), so Redis cannot have it yet and is not asked (a spooled one may have been moved already).

    redis-py raises WatchError both for a lost race and for a connection lost while keys are watched (Redis killed,
    or exiting on a full disk in the middle of EXEC; a failover; a network cut), so a WatchError says only that
    the outcome is unknown: it is read back. Our record in Redis: the transaction was written and its answer lost.
    The key bound to another receipt: a duplicate won. Neither, or Redis not answering: ConnectionError, and the
    caller spools (a receipt is only ever given for an application written somewhere; spooling one Redis has after
    all is harmless, the drain finds its record and moves nothing)."""
    with r.pipeline() as pipe:
        try:
            if idem:
                pipe.watch(idem.key)
                if pipe.get(idem.key):
                    pipe.reset()
                    return previous(intake, idem, r) or Receipt(record.receipt, State.QUEUED.public)
            store.watch(pipe, record.receipt)  # (what makes a lost answer a WatchError, read back)
            if not fresh and store.known(pipe, record.receipt):
                return Receipt(record.receipt, State.QUEUED.public)  # spooled copy already moved
            pipe.multi()
            record.job_id = enqueue_delivery(r, record.receipt, pipeline=pipe)
            if intake.mail:  # the candidate's receipt by email, whatever Lever is doing
                enqueue_confirmation_email(r, record.receipt, pipeline=pipe)
            store.add(pipe, record)
            uploads.add(pipe, record.receipt, contents)
            if idem:
                idem.bind(pipe, record.receipt)
            # Counted here, not in a write of its own after: with appendfsync always each write waits for a fsync
            # (a third of a submission's time on a busy disk, bench/intake_bench.py).
            metrics.incr(pipe, "jobsite_applications_received_total")
            pipe.execute()
        except redis.WatchError:
            if not store.known(r, record.receipt):
                earlier = previous(intake, idem, r)
                if earlier is None or earlier.receipt == record.receipt:
                    raise redis.ConnectionError(
                        "the transaction's outcome is unknown: nothing of it in Redis"
                    ) from None
                return earlier
    return Receipt(record.receipt, State.QUEUED.public)


def replicated(intake: Intake, receipt: str, alias: str | None = None, *, quick: bool = False) -> bool:
    """Whether the record under `receipt` (and the `alias` receipt answering for it) is on JOBSITE_REDIS_MIN_REPLICAS
    replicas (True without that setting; see redis_server.replicated: the keys are read on the WAIT's own
    connection, which may reach another primary than the write's after a failover). `quick`: a person waits, so the
    request's client (a silent Redis costs one short timeout, not the process client's minutes of retries)."""
    if not intake.redis_min_replicas:
        return True
    r = intake.redis
    if quick:
        try:
            r = intake.quick_wait()
        except redis.RedisError as e:
            intake.heard(e)
            return False
    return store.replicated(r, receipt, intake.redis_min_replicas, intake.redis_replica_wait_ms, alias=alias)


def _files_outside(intake: Intake, record: Record, contents: Mapping[str, bytes]) -> dict[str, bytes]:
    """With JOBSITE_FILES_URL, the files go to the object store before the record is written (so before the
    receipt), the record names their objects, and Redis keeps only where they are: what `_commit` writes instead of
    their bytes. An unreachable store raises FilesUnreachable, a Redis ConnectionError: the application, its bytes
    included, is spooled, and goes to the store when the spool drains."""
    if not intake.files_url or not contents or uploads.OUTSIDE_MARK in contents:
        return dict(contents)
    record.files, where = uploads.put_outside(intake.files_url, record.receipt, record.files, contents)
    return where


def drain_spool(intake: Intake) -> int:
    """Move this machine's spooled applications into Redis, oldest first. Safe to run from several processes."""
    data_dir = intake.data_dir
    if not spool.entries(data_dir):
        return 0
    moved = 0
    with spool.drain_lock(data_dir) as mine:
        if not mine:
            return 0  # another process is draining
        for path in spool.entries(data_dir):
            record, spooled, contents = spool.read(path)
            idem = Idempotency(**spooled) if spooled else None
            contents = _files_outside(intake, record, contents)
            try:
                kept = _commit(intake, intake.redis, record, contents, idem)
            except IdempotencyConflict:  # the candidate has this receipt: keep the application, not the key
                kept = _commit(intake, intake.redis, record, contents, None)
            alias = None
            if kept.receipt != record.receipt:  # a retry of an application Redis has (the same key and content)
                store.add_alias(intake.redis, record.receipt, kept.receipt)
                alias = record.receipt
            if not replicated(intake, kept.receipt, alias):
                break  # kept here until the replicas have it
            path.unlink()
            moved += 1
        spool.drop_moved_keys(data_dir)
    if moved:
        log.info("moved %d spooled application(s) into the queue", moved)
    return moved

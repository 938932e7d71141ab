"""Intake: persist a valid application and queue its delivery, before the candidate gets a receipt.

The record and its RQ job are written in one Redis transaction (Redis keeps an append-only file); the files are
written to the data dir and fsynced first. If Redis cannot be reached the whole application goes to an on-disk spool,
fsynced, and the candidate still gets a receipt; workers and later submissions move the spool into Redis.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from . import applications as store
from . import files, metrics
from .applications import Record, State
from .jobs import enqueue_delivery
from .services import Services
from .validation import Application, UploadedFile

log = logging.getLogger(__name__)

IDEMPOTENCY_TTL_S = 7 * 86400


class TooManySubmissions(Exception):
    """This IP address sent more applications this hour than allowed."""


@dataclass(frozen=True)
class Receipt:
    receipt: str
    status: str
    duplicate: bool = False  # an earlier submission with the same idempotency key


def _fsync_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _idem_key(key: str) -> str:
    return "idem:" + hashlib.sha256(key.encode()).hexdigest()


def _ip_key(ip: str) -> str:
    return f"submissions:ip:{hashlib.sha256(ip.encode()).hexdigest()[:24]}:{int(time.time() // 3600)}"


def check_ip(svc: Services, ip: str) -> None:
    """Count a submission from `ip`; raise TooManySubmissions above the hourly limit (skipped if Redis is down)."""
    try:
        pipe = svc.redis.pipeline()
        pipe.incr(_ip_key(ip))
        pipe.expire(_ip_key(ip), 3600)
        count = pipe.execute()[0]
    except redis.RedisError:
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


def submit(svc: Services, application: Application, uploads: Mapping[str, UploadedFile], *,
           posting_title: str = "", idempotency_key: str | None = None) -> Receipt:
    """Persist and queue an application; returns its receipt only once it is durable. A used idempotency key
    returns the first receipt (checked atomically with the write; the web checks it before validating too)."""
    receipt = store.new_receipt()
    stored = _store_files(svc, receipt, uploads)
    record = Record(receipt=receipt, posting_id=application.posting_id, state=State.QUEUED, created_at=time.time(),
                    application=application, files=stored, posting_title=posting_title)
    try:
        receipt_ = _commit(svc, record, idempotency_key)
    except redis.RedisError as e:
        log.warning("Redis unreachable (%s): application %s spooled to disk", type(e).__name__, receipt[:8])
        _spool(svc, record, idempotency_key)
        return Receipt(receipt, State.QUEUED.public)
    if spooled(svc):  # Redis is back: move what this machine spooled (also done by workers)
        try:
            drain_spool(svc)
        except redis.RedisError:
            pass
    return receipt_


def _store_files(svc: Services, receipt: str, uploads: Mapping[str, UploadedFile]) -> list[dict[str, Any]]:
    stored = []
    for i, (field, upload) in enumerate(sorted(uploads.items())):
        if not upload.content:
            continue
        kind = files.sniff(upload.content) or "txt"
        ext, content_type = files.KINDS[kind]
        path = svc.settings.data_dir / "uploads" / receipt / f"{i}{ext}"
        _fsync_write(path, upload.content)
        name = Path(upload.filename or f"file{ext}").name[:100] or f"file{ext}"
        stored.append({"field": field, "filename": name, "path": str(path), "kind": kind,
                       "content_type": content_type, "size": len(upload.content)})
    return stored


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
            record.job_id = enqueue_delivery(svc, record.receipt, pipeline=pipe)
            store.add(pipe, record)
            if idem:
                pipe.set(idem, record.receipt, ex=IDEMPOTENCY_TTL_S)
            pipe.execute()
        except redis.WatchError:
            return previous(svc, idempotency_key) or Receipt(record.receipt, State.QUEUED.public, duplicate=True)
    metrics.incr(r, "jobsite_applications_received_total")
    return Receipt(record.receipt, State.QUEUED.public)


def spool_dir(svc: Services) -> Path:
    return svc.settings.data_dir / "spool"


def _spool(svc: Services, record: Record, idempotency_key: str | None) -> None:
    data = {"record": record.to_redis(), "idempotency_key": idempotency_key}
    name = f"{int(record.created_at * 1000):015d}-{record.receipt}.json"
    _fsync_write(spool_dir(svc) / name, json.dumps(data).encode())


def spooled(svc: Services) -> list[Path]:
    folder = spool_dir(svc)
    return sorted(folder.glob("*.json")) if folder.is_dir() else []


def spooled_receipt(svc: Services, receipt: str) -> bool:
    return any(p.name.endswith(f"-{receipt}.json") for p in spooled(svc))


def drain_spool(svc: Services) -> int:
    """Move spooled applications into Redis, oldest first. Safe to run from several processes at once."""
    paths = spooled(svc)
    if not paths:
        return 0
    moved = 0
    with open(svc.settings.path("spool.lock"), "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return 0  # another process is draining
        for path in spooled(svc):
            data = json.loads(path.read_text())
            raw = {k.encode(): v.encode() for k, v in data["record"].items()}
            record = Record.from_redis(raw)
            _commit(svc, record, data.get("idempotency_key"))
            path.unlink()
            moved += 1
    if moved:
        log.info("moved %d spooled application(s) into the queue", moved)
    return moved

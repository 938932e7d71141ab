"""RQ jobs and their scheduling: importable functions over receipts; the delivery logic itself is in delivery.py.

Every job finds this process's services here (the worker sets them at start; a plain `rq worker` builds them from the
environment). Job ids are unique per enqueue, so re-enqueueing never overwrites a job that is still running; the
application's lease and state, not the job id, make sure it is delivered once.
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import redis
from rq import Callback, Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from rq.registry import StartedJobRegistry

from . import applications as store
from . import delivery, gate
from .applications import State
from .lever import LeverConnectionError, LeverError, LeverUnavailable
from .services import Services
from .settings import load_settings

log = logging.getLogger(__name__)

QUEUE = "applications"
JOB_TIMEOUT_S = 600
RETENTION_EVERY_S = 3600
_services: Services | None = None


def use(services: Services) -> Services:
    """Set the services jobs in this process use (the worker does it at start)."""
    global _services
    _services = services
    return services


def services() -> Services:
    global _services
    if _services is None:
        _services = Services(load_settings())
    return _services


def queue(svc: Services) -> Queue:
    return Queue(QUEUE, connection=svc.redis)


def _job_options(receipt: str) -> dict[str, Any]:
    """Options of a delivery job (the timeout is passed apart: RQ names it differently in enqueue_many)."""
    return dict(job_id=f"d-{receipt}-{uuid.uuid4().hex[:8]}", result_ttl=0,
                on_failure=Callback(delivery_crashed), description=f"deliver {receipt[:8]}")


def enqueue_delivery(svc: Services, receipt: str, *, pipeline: redis.client.Pipeline | None = None,
                     at: float | None = None) -> str:
    """Queue (or schedule at epoch `at`) a delivery of `receipt`; returns the job id."""
    q = queue(svc)
    options = _job_options(receipt)
    if at is not None and at > time.time():
        q.enqueue_at(_not_before(at), deliver, receipt, pipeline=pipeline, job_timeout=JOB_TIMEOUT_S, **options)
    else:
        q.enqueue(deliver, receipt, pipeline=pipeline, job_timeout=JOB_TIMEOUT_S, **options)
    return options["job_id"]


def release(svc: Services, receipts: Iterable[str], *, retry_attention: bool = False) -> None:
    """Queue deliveries for `receipts`, in the given order (oldest first), in one round trip. Applications that
    need attention stay put unless `retry_attention` (a recruiter's retry)."""
    ids = list(receipts)
    if not ids:
        return
    r = svc.redis
    records = {rec.receipt: rec for rec in store.load_many(r, ids)}
    q = queue(svc)
    with r.pipeline() as pipe:
        datas = []
        for receipt in ids:
            rec = records.get(receipt)
            if rec is None or rec.state in store.FINAL or (rec.state == State.NEEDS_ATTENTION and not retry_attention):
                continue
            options = _job_options(receipt)
            datas.append(Queue.prepare_data(deliver, (receipt,), timeout=JOB_TIMEOUT_S, **options))
            store.update(pipe, rec, State.QUEUED, job_id=options["job_id"], next_attempt_at=0.0)
        q.enqueue_many(datas, pipeline=pipe)
        pipe.execute()


def deliver(receipt: str) -> str:
    """The delivery job."""
    svc = services()
    result = delivery.deliver(svc, receipt)
    if result.gate_closed:
        schedule_probe(svc, result.probe_delay_s)
    if result.outcome == delivery.Outcome.RETRY:
        job_id = enqueue_delivery(svc, receipt, at=result.retry_at)
        svc.redis.hset(store.record_key(receipt), "job_id", job_id)
    return result.outcome.value


def schedule_probe(svc: Services, delay_s: float, *, replace: bool = False) -> bool:
    """Schedule the one probe of a closed gate. Unless `replace` (the probe scheduling its successor), nothing
    happens while a probe is scheduled or running."""
    r = svc.redis
    job_id = f"probe-{uuid.uuid4().hex[:12]}"
    ttl = int(delay_s + svc.settings.delivery_lease_s + 60)  # the chain heals itself if a probe job is lost
    if not r.set(gate.PROBE, job_id, nx=not replace, ex=ttl):
        return False
    at = time.time() + delay_s
    r.hset(gate.GATE, "next_probe_at", at)
    queue(svc).enqueue_at(_not_before(at), probe, job_id=job_id, result_ttl=0, job_timeout=JOB_TIMEOUT_S,
                          description="probe Lever")
    return True


def _not_before(at: float) -> datetime:
    """RQ's scheduler keeps whole seconds and truncates: round up, so a job never runs before its time."""
    return datetime.fromtimestamp(math.ceil(at), UTC)


def probe() -> str:
    """Probe a closed gate: deliver the oldest waiting application, or, with none waiting, make a cheap call.
    The probe holds `gate.PROBE` until it has scheduled its successor or the gate is open."""
    svc = services()
    r = svc.redis
    status = gate.status(r)
    if status.paused or status.state != "closed":
        r.delete(gate.PROBE)
        if not status.paused:
            release(svc, gate.open_(r))
        return "paused" if status.paused else "open"
    receipt = gate.oldest_parked(r)
    if receipt is None:
        return _probe_without_application(svc)
    result = delivery.deliver(svc, receipt, probe=True)
    if result.outcome == delivery.Outcome.SKIPPED:
        record = store.load(r, receipt)
        if record is None or record.state in (*store.FINAL, State.NEEDS_ATTENTION):
            gate.unpark(r, receipt)  # nothing left to send: probe with the next one
            schedule_probe(svc, 0, replace=True)
        else:
            schedule_probe(svc, 1, replace=True)  # another worker holds its lease right now
    elif gate.status(r).state == "closed":
        schedule_probe(svc, result.probe_delay_s, replace=True)
    else:
        r.delete(gate.PROBE)
    return result.outcome.value


def _probe_without_application(svc: Services) -> str:
    r = svc.redis
    try:
        next(svc.lever.iter_opportunity_pages(limit=1), None)
    except (LeverUnavailable, LeverConnectionError):
        schedule_probe(svc, gate.probe_failed(r, svc.settings.probe_cap_s), replace=True)
        return "closed"
    except LeverError:
        pass  # any other answer (even 403) means Lever is out of maintenance
    r.delete(gate.PROBE)
    release(svc, gate.open_(r))
    return "open"


def delivery_crashed(job: Job, connection: redis.Redis, exc_type: type, exc_value: BaseException, tb: Any) -> None:
    """An unexpected error in a delivery job: the application needs attention, with the error for recruiters.
    (A job abandoned by a dead worker is taken up by `recover`, not here.)"""
    if exc_type is None or exc_type.__name__ == "AbandonedJobError" or not job.args:
        return
    record = store.load(connection, job.args[0])
    if record and record.state not in (*store.FINAL, State.NEEDS_ATTENTION):
        store.update(connection, record, State.NEEDS_ATTENTION,
                     last_error=f"internal error while delivering: {exc_type.__name__}")
        store.log_attempt(connection, record.receipt, "deliver", "error", f"{exc_type.__name__}: {exc_value}")


def recover(svc: Services) -> int:
    """Take up applications whose delivery was lost: a worker died holding them, or their job vanished."""
    r, lease_s = svc.redis, svc.settings.delivery_lease_s
    StartedJobRegistry(QUEUE, connection=r).get_job_ids()  # lets RQ clean up jobs of dead workers
    now = time.time()
    lost = []
    for rec in store.load_many(r, store.receipts(r, State.DELIVERING)):
        if not delivery.lease_alive(r, rec.receipt):
            lost.append(rec.receipt)
    parked = {x.decode() for x in r.zrange(gate.PARKED, 0, -1)}
    candidates = store.receipts(r, State.QUEUED) + [x for x in store.receipts(r, State.WAITING) if x not in parked]
    for rec in store.load_many(r, candidates):
        idle = now - rec.updated_at > lease_s
        if idle and not _job_alive(r, rec.job_id) and not delivery.lease_alive(r, rec.receipt):
            lost.append(rec.receipt)
    if lost:
        log.warning("taking up %d application(s) whose delivery was interrupted", len(lost))
        for receipt in lost:
            store.log_attempt(r, receipt, "recover", None, "delivery was interrupted; queued again")
        release(svc, lost)
    return len(lost)


def _job_alive(r: redis.Redis, job_id: str) -> bool:
    if not job_id:
        return False
    try:
        status = Job.fetch(job_id, connection=r).get_status()
    except NoSuchJobError:
        return False
    return status in (JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED, JobStatus.STARTED)


def on_worker_start(svc: Services) -> None:
    """Check at start whether the key may list opportunities (needed to reconcile unknown outcomes)."""
    try:
        next(svc.lever.iter_opportunity_pages(limit=1), None)
        svc.redis.set(delivery.CAN_RECONCILE, "1")
    except redis.RedisError as e:
        log.warning("Redis is unreachable at start (%s); the worker waits for it", type(e).__name__)
    except LeverError as e:
        if e.status == 403:
            svc.redis.set(delivery.CAN_RECONCILE, "0")
            log.warning("The Lever API key may not list opportunities. After a timeout or a dropped connection an "
                        "application is sent again without checking, which can create a duplicate in Lever. Grant "
                        "the key 'List all opportunities' to prevent that.")


def upkeep() -> None:
    """Periodic work of the delivery side, run by workers between jobs: spool, lost deliveries, the gate."""
    from . import intake

    svc = services()
    r = svc.redis
    intake.drain_spool(svc)  # every machine drains its own spool
    if not r.set("upkeep:lock", "1", nx=True, ex=max(1, svc.settings.upkeep_interval_s - 1)):
        return  # another worker did the shared part this interval
    recover(svc)
    if r.set("retention:ran", "1", nx=True, ex=RETENTION_EVERY_S):
        from . import retention

        retention.purge(svc)
    status = gate.status(r)
    if status.state == "closed" and not status.paused and not r.exists(gate.PROBE):
        schedule_probe(svc, max(0.0, status.next_probe_at - time.time()))
    elif status.is_open and status.parked:
        release(svc, gate.open_(r))


def retry_now(svc: Services, receipts: Iterable[str]) -> list[str]:
    """Queue applications that need attention (or wait) for delivery now; returns the receipts queued."""
    chosen = [rec.receipt for rec in store.load_many(svc.redis, receipts)
              if rec.state in (State.NEEDS_ATTENTION, State.WAITING, State.QUEUED)]
    for receipt in chosen:
        store.log_attempt(svc.redis, receipt, "retry", None, "queued again by hand")
    release(svc, chosen, retry_attention=True)
    return chosen

"""The delivery queue: what intake, the console, the CLI and the tasks call to have applications delivered.

Jobs name their task by dotted path (`jobsite.worker.tasks.…`), so this module, and everything that enqueues,
never imports the tasks and what they depend on. Job ids are unique per enqueue, so re-enqueueing never overwrites a
job that is still running; the application's lease and state, not the job id, make sure it is delivered once.
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
from rq.intermediate_queue import IntermediateQueue
from rq.job import Job, JobStatus
from rq.registry import StartedJobRegistry

from ..keyspace.delivery_keys import UNQUEUED
from ..records import store
from ..records.store import State
from ..redisdb.clock import server_now
from . import gate

log = logging.getLogger(__name__)

QUEUE = "applications"
MAIL_QUEUE = "mail"  # confirmation emails: served first, so a receipt never waits behind a backlog of deliveries
SOURCING_QUEUE = "sourcing"  # talent sign-ups and captures: after applications, so a flood of sign-ups (600 from
# 20 addresses took a real application from 0.6 s to 64 s) never queues ahead of a candidate
ALERTS_QUEUE = "alerts"  # job alerts: matching a new posting, sending the emails; after applications and sign-ups,
# so a hundred thousand alerts never hold up a candidate
FOLLOWUP_QUEUE = "followups"  # tags and pipeline syncs: served last, so applications always go first
JOB_TIMEOUT_S = 600
MAIL_JOB_TIMEOUT_S = 300  # a few SMTP steps, each bounded by the SMTP timeout (at most 300 s)
DELIVER = "jobsite.worker.tasks.deliver"
PROBE = "jobsite.worker.tasks.probe"
DELIVERY_CRASHED = "jobsite.worker.tasks.delivery_crashed"
CONFIRMATION_EMAIL = "jobsite.worker.tasks.send_confirmation_email"
OPTIN_EMAIL = "jobsite.worker.tasks.send_optin_email"
ALERT_CONFIRMATION_EMAIL = "jobsite.worker.tasks.send_alert_confirmation"
TAG = "jobsite.worker.tasks.tag_opportunity"
SYNC = "jobsite.worker.tasks.sync_pipeline"
DELIVER_SOURCED = "jobsite.worker.tasks.deliver_sourced"
MATCH_ALERTS = "jobsite.worker.tasks.match_alerts"
SEND_ALERTS = "jobsite.worker.tasks.send_alerts"
ALERTS_CRASHED = "jobsite.worker.tasks.alerts_crashed"
ALERT_JOB_TIMEOUT_S = 1800  # a matching job goes through every subscription; a send job waits on the mail pace
# Versions before the tasks moved to jobsite/worker/tasks.py queued them as `jobsite.tasks.X`, and RQ keeps each job's
# function (and its callbacks) by that path in Redis: a scheduled retry (up to 15 minutes away), a confirmation email
# being retried (about four hours), a probe, a failure callback. TaskJob reads them under today's path.
OLD_TASKS, TASKS = "jobsite.tasks.", "jobsite.worker.tasks."


def current_path(name: str) -> str:
    """A task's dotted path as it is today, from the one a job queued by an earlier version may name."""
    return TASKS + name.removeprefix(OLD_TASKS) if name.startswith(OLD_TASKS) else name


class TaskJob(Job):
    """The jobs the worker runs: RQ's, read back with the tasks' old dotted paths mapped to today's (`current_path`),
    so an upgrade loses no queued job and no module has to keep the old paths alive."""

    def restore(self, raw_data: Any) -> Any:
        done = super().restore(raw_data)
        for name in ("_success_callback_name", "_failure_callback_name", "_stopped_callback_name"):
            if getattr(self, name, None):
                setattr(self, name, current_path(getattr(self, name)))
        return done

    @property
    def func(self) -> Any:
        if not self.instance and self.func_name and self.func_name.startswith(OLD_TASKS):
            self.func_name = current_path(self.func_name)
        return super().func


def delivery_queue(r: redis.Redis) -> Queue:
    """The queue of deliveries and probes (named `applications` in Redis)."""
    return Queue(QUEUE, connection=r, job_class=TaskJob)


def queues(r: redis.Redis) -> list[Queue]:
    """The queues a worker serves, the most urgent first."""
    return [
        Queue(MAIL_QUEUE, connection=r, job_class=TaskJob),
        delivery_queue(r),
        Queue(SOURCING_QUEUE, connection=r, job_class=TaskJob),
        Queue(ALERTS_QUEUE, connection=r, job_class=TaskJob),
        Queue(FOLLOWUP_QUEUE, connection=r, job_class=TaskJob),
    ]


def _job_options(receipt: str) -> dict[str, Any]:
    """Options of a delivery job (the timeout is passed apart: RQ names it differently in enqueue_many)."""
    return dict(
        job_id=f"d-{receipt}-{uuid.uuid4().hex[:8]}",
        result_ttl=0,
        on_failure=Callback(DELIVERY_CRASHED),
        description=f"deliver {receipt[:8]}",
    )


def _not_before(at: float) -> datetime:
    """RQ's scheduler keeps whole seconds and truncates: round up, so a job never runs before its time."""
    return datetime.fromtimestamp(math.ceil(at), UTC)


def _due(r: redis.Redis, at: float | None) -> datetime | None:
    """When a job due at epoch `at` (this process's clock, read just before by the caller) runs, on the clock every
    scheduler reads: the Redis server's (worker/process.py's scheduler takes its time from Redis too). None: now.
    RQ scores a scheduled job by the enqueuer's clock and compares with the scheduler's, so a worker 150 s ahead
    scheduled every retry and probe 150 s late on another machine; the delay, not the time, crosses machines."""
    if at is None:
        return None
    delay = at - time.time()
    return _not_before(server_now(r) + delay) if delay > 0 else None


def enqueue_delivery(
    r: redis.Redis, receipt: str, *, pipeline: redis.client.Pipeline | None = None, at: float | None = None
) -> str:
    """Queue (or schedule at epoch `at`) a delivery of `receipt`; returns the job id."""
    q = delivery_queue(r)
    options = _job_options(receipt)
    if (due := _due(r, at)) is not None:
        q.enqueue_at(due, DELIVER, receipt, pipeline=pipeline, job_timeout=JOB_TIMEOUT_S, **options)
    else:
        q.enqueue(DELIVER, receipt, pipeline=pipeline, job_timeout=JOB_TIMEOUT_S, **options)
    return str(options["job_id"])


def enqueue_sourced(
    r: redis.Redis, person_id: str, *, pipeline: redis.client.Pipeline | None = None, at: float | None = None
) -> str:
    """Queue (or schedule at epoch `at`) a delivery of a sourced person (sourcing/); returns the job id. On their own
    queue, which a worker serves only when no application waits; they share the gate and Lever's limits."""
    q = Queue(SOURCING_QUEUE, connection=r)
    options = dict(
        job_id=f"s-{person_id}-{uuid.uuid4().hex[:8]}",
        result_ttl=0,
        job_timeout=JOB_TIMEOUT_S,
        description=f"deliver sourced {person_id[:8]}",
        pipeline=pipeline,
    )
    if (due := _due(r, at)) is not None:
        q.enqueue_at(due, DELIVER_SOURCED, person_id, **options)
    else:
        q.enqueue(DELIVER_SOURCED, person_id, **options)
    return str(options["job_id"])


def enqueue_confirmation_email(
    r: redis.Redis,
    receipt: str,
    *,
    pipeline: redis.client.Pipeline | None = None,
    at: float | None = None,
    attempt: int = 0,
) -> str:
    """Queue (or schedule at epoch `at`) try number `attempt` (from 0) of the application's confirmation email.
    The job carries only the receipt: the address is read when it is sent, and is gone once it is purged."""
    return _enqueue_email(
        r, CONFIRMATION_EMAIL, receipt, f"confirmation email {receipt[:8]}", pipeline=pipeline, at=at, attempt=attempt
    )


def enqueue_optin_email(
    r: redis.Redis,
    person_id: str,
    *,
    pipeline: redis.client.Pipeline | None = None,
    at: float | None = None,
    attempt: int = 0,
) -> str:
    """Queue (or schedule) try number `attempt` of a talent-community sign-up's opt-in email (sourcing/optin.py),
    on the same terms as the confirmation email: only the person's id in the job."""
    return _enqueue_email(
        r, OPTIN_EMAIL, person_id, f"opt-in email {person_id[:8]}", pipeline=pipeline, at=at, attempt=attempt
    )


def enqueue_alert_confirmation(
    r: redis.Redis,
    sub_id: str,
    *,
    pipeline: redis.client.Pipeline | None = None,
    at: float | None = None,
    attempt: int = 0,
) -> str:
    """Queue (or schedule) try number `attempt` of a job alert subscription's confirmation email
    (alerts/confirmation.py), on the same terms as the confirmation email: only the subscription's id in the job."""
    return _enqueue_email(
        r,
        ALERT_CONFIRMATION_EMAIL,
        sub_id,
        f"alert confirmation {sub_id[:8]}",
        pipeline=pipeline,
        at=at,
        attempt=attempt,
    )


def _enqueue_email(
    r: redis.Redis,
    task: str,
    subject: str,
    description: str,
    *,
    pipeline: redis.client.Pipeline | None,
    at: float | None,
    attempt: int,
) -> str:
    q = Queue(MAIL_QUEUE, connection=r)
    options = dict(
        job_id=f"m-{subject}-{uuid.uuid4().hex[:8]}",
        result_ttl=0,
        job_timeout=MAIL_JOB_TIMEOUT_S,
        description=description,
        pipeline=pipeline,
    )
    if (due := _due(r, at)) is not None:
        q.enqueue_at(due, task, subject, attempt, **options)
    else:
        q.enqueue(task, subject, attempt, **options)
    return str(options["job_id"])


def enqueue_alert_matching(r: redis.Redis, posting_ids: Iterable[str]) -> None:
    """Queue one matching job per newly published posting (alerts/fanout.py), on the alerts queue."""
    _enqueue_alerts(
        r,
        MATCH_ALERTS,
        [((p,), f"am-{p[:40]}-{uuid.uuid4().hex[:8]}", f"match alerts {p[:8]}") for p in posting_ids],
    )


def enqueue_alert_sends(r: redis.Redis, groups: Iterable[list[str]]) -> None:
    """Queue one send job per group of due subscriptions (alerts/digest.py), spread over every worker."""
    _enqueue_alerts(r, SEND_ALERTS, [((g,), f"as-{uuid.uuid4().hex[:16]}", f"send {len(g)} alert(s)") for g in groups])


def _enqueue_alerts(r: redis.Redis, task: str, jobs: list[tuple[tuple[Any, ...], str, str]]) -> None:
    """Queue the jobs (arguments, job id, description) of one alerts task at once on the alerts queue; a job that
    fails is taken up at the next upkeep (ALERTS_CRASHED)."""
    if jobs:
        Queue(ALERTS_QUEUE, connection=r).enqueue_many(
            [
                Queue.prepare_data(
                    task,
                    args,
                    timeout=ALERT_JOB_TIMEOUT_S,
                    result_ttl=0,
                    job_id=job_id,
                    description=description,
                    on_failure=Callback(ALERTS_CRASHED),
                )
                for args, job_id, description in jobs
            ]
        )


def enqueue_tagging(r: redis.Redis, receipt: str, *, at: float | None = None, attempt: int = 0) -> str:
    """Queue (or schedule at epoch `at`) try number `attempt` of tagging a delivered application's opportunity."""
    q = Queue(FOLLOWUP_QUEUE, connection=r)
    options = dict(
        job_id=f"t-{receipt}-{uuid.uuid4().hex[:8]}",
        result_ttl=0,
        job_timeout=JOB_TIMEOUT_S,
        description=f"tag {receipt[:8]}",
    )
    if (due := _due(r, at)) is not None:
        q.enqueue_at(due, TAG, receipt, attempt, **options)
    else:
        q.enqueue(TAG, receipt, attempt, **options)
    return str(options["job_id"])


def enqueue_sync(r: redis.Redis, *, refresh_names: bool = False) -> str:
    """Queue one sync of the pipeline with Lever."""
    job_id = f"sync-{uuid.uuid4().hex[:12]}"
    Queue(FOLLOWUP_QUEUE, connection=r).enqueue(
        SYNC, refresh_names, job_id=job_id, result_ttl=0, job_timeout=JOB_TIMEOUT_S, description="sync the pipeline"
    )
    return job_id


RELEASE_CHUNK = 500  # records watched by one release transaction: a change to one of them redoes only these


def release(r: redis.Redis, receipts: Iterable[str], *, retry_attention: bool = False) -> None:
    """Queue deliveries for `receipts`, in the given order (oldest first), a few hundred to a round trip.
    Applications that need attention stay put unless `retry_attention` (a recruiter's retry). Each chunk's records
    are watched from before they are read: a delivery that lands between the read and the write (a recruiter's
    retry while the application's job runs) was written over with "queued", and the job queued sent it again."""
    ids = list(receipts)
    for start in range(0, len(ids), RELEASE_CHUNK):
        _release(r, ids[start : start + RELEASE_CHUNK], retry_attention)


def _release(r: redis.Redis, ids: list[str], retry_attention: bool) -> None:
    with r.pipeline() as pipe:
        while True:
            try:
                # Read after the watch: any change since aborts the write, and the chunk is read again.
                store.watch(pipe, *ids)
                records = {rec.receipt: rec for rec in store.load_many(r, ids)}
                pipe.multi()
                datas = []
                for receipt in ids:
                    rec = records.get(receipt)
                    if (
                        rec is None
                        or rec.state in store.FINAL
                        or (rec.state == State.NEEDS_ATTENTION and not retry_attention)
                    ):
                        continue
                    options = _job_options(receipt)
                    datas.append(Queue.prepare_data(DELIVER, (receipt,), timeout=JOB_TIMEOUT_S, **options))
                    store.update(pipe, rec, State.QUEUED, job_id=options["job_id"], next_attempt_at=0.0)
                delivery_queue(r).enqueue_many(datas, pipeline=pipe)
                pipe.execute()
                return
            except redis.WatchError:
                continue


def open_gate(r: redis.Redis) -> int:
    """Open the gate and queue what was parked behind it, oldest first; returns how many."""
    released = gate.open_(r)
    release(r, released)
    return len(released)


def resume(r: redis.Redis) -> None:
    """Lift a recruiter's pause: what was parked is queued if Lever is available, else probing resumes."""
    release(r, gate.resume(r))


def schedule_probe(r: redis.Redis, delay_s: float, lease_s: int, *, replace: bool = False) -> bool:
    """Schedule the one probe of a closed gate, its claim and its job in one transaction. Unless `replace` (the probe
    scheduling its successor), nothing happens while a probe is scheduled or running."""
    job_id = f"probe-{uuid.uuid4().hex[:12]}"
    at = server_now(r) + delay_s  # on the shared clock: the gate shows it, and any machine's scheduler runs it
    with r.pipeline() as pipe:
        try:
            pipe.watch(gate.PROBE)
            if not replace and gate.probe_claim(pipe) is not None:
                return False
            pipe.multi()
            gate.claim_probe(pipe, job_id, at, int(delay_s + lease_s + 60))
            delivery_queue(r).enqueue_at(
                _not_before(at),
                PROBE,
                job_id=job_id,
                result_ttl=0,
                job_timeout=JOB_TIMEOUT_S,
                description="probe Lever",
                pipeline=pipe,
            )
            pipe.execute()
        except redis.WatchError:  # another process claimed (or dropped) it meanwhile
            return False
    return True


def drop_lost_probe(r: redis.Redis) -> bool:
    """Give up the claim of a probe whose job is no longer due or running: it failed (an error, or Redis went away
    and came back while RQ recorded the failure) or ended without a successor. Until the claim expired, the gate
    would stay closed with nothing checking Lever."""
    claim = gate.probe_claim(r)
    if claim is None or job_alive(r, claim) or not gate.drop_probe(r, claim):
        return False
    log.warning("the probe of the closed gate ended without a successor; scheduling another")
    return True


def retry_now(r: redis.Redis, receipts: Iterable[str]) -> list[str]:
    """Queue applications that need attention (or wait) for delivery now; returns the receipts queued."""
    chosen = [
        rec.receipt
        for rec in store.load_many(r, receipts)
        if rec.state in (State.NEEDS_ATTENTION, State.WAITING, State.QUEUED)
    ]
    for receipt in chosen:
        store.log_attempt(r, receipt, "retry", None, "queued again by hand")
    release(r, chosen, retry_attention=True)
    return chosen


UNQUEUED_TTL_S = 900  # longer than any gap between two upkeeps (JOBSITE_UPKEEP_INTERVAL_S is at most 60 s)
_RUNNING = {JobStatus.SCHEDULED.value, JobStatus.DEFERRED.value, JobStatus.STARTED.value}


def job_alive(r: redis.Redis, job_id: str, *, started_within_s: float | None = None) -> bool:
    """Whether a job is still due to run (queued, scheduled, deferred) or running (`alive` for one)."""
    return job_id in alive(r, [job_id], started_within_s=started_within_s)


def alive(r: redis.Redis, job_ids: Iterable[str], *, started_within_s: float | None = None) -> set[str]:
    """The jobs among `job_ids` still due to run (queued, scheduled, deferred) or running, in at most four round
    trips however many there are: recovery asks for every item of a backlog at each upkeep, and one round trip each
    (through a slow network, a thousand items) took a worker's whole second, so the backlog grew as it was checked.
    Each queue is read once (LRANGE), not searched once per job (LPOS over a long queue for each job of a long
    backlog: a 10,000 backlog was 10^8 comparisons on Redis at every upkeep).

    A job whose status says queued but that is in no queue is not alive: a worker serving several queues pops with
    BLPOP, so a pop whose answer was lost (the connection cut, Redis killed with the reply unsent), a worker that
    died between its pop and starting the job, or a pop that reached a replica whose primary then died before the
    "started" leaves the job "queued" in no list, forever. Its status is read again after the queues were read (a
    worker that popped it meanwhile has started it by then), and it counts as gone only when a later check (the
    next upkeep) sees it so again: a live worker between its BLPOP and STARTED looks the same for a moment, and a
    job queued again for it would be harmless (the lease lets one of the two deliver) but logged as a recovery.

    With `started_within_s` (a delivery's lease: every delivery job takes its item's lease as it starts, and the
    caller has found none), a job started longer ago than that is not alive either: its worker died, or Redis went
    away under it, before it took the lease or after it let it go, and RQ would call it abandoned only when its
    timeout (10 minutes) runs out. The nemesis's 30-minute run waited out that timeout for 2 applications."""
    ids = [j for j in dict.fromkeys(job_ids) if j]
    if not ids:
        return set()
    with r.pipeline(transaction=False) as pipe:
        for job_id in ids:
            pipe.hmget(Job.key_for(job_id), "status", "origin", "started_at")
        read = pipe.execute()
    now = time.time()
    live = {
        j
        for j, (status, _, started) in zip(ids, read, strict=True)
        if status
        and status.decode() in _RUNNING
        and (
            started_within_s is None
            or status.decode() != JobStatus.STARTED.value
            or now - _epoch(started) <= started_within_s
        )
    }
    queued = [
        (j, origin.decode())
        for j, (status, origin, _) in zip(ids, read, strict=True)
        if status and status.decode() == JobStatus.QUEUED.value and origin
    ]
    if not queued:
        return live
    with r.pipeline(transaction=False) as pipe:  # each queue read once: one LPOS per job over a long queue, for
        origins = sorted({origin for _, origin in queued})  # each job of a long backlog, was quadratic on Redis
        for origin in origins:
            key = Queue.redis_queue_namespace_prefix + origin
            pipe.lrange(key, 0, -1)
            pipe.lrange(IntermediateQueue.get_intermediate_queue_key(key), 0, -1)
        in_queues = {x.decode() for contents in pipe.execute() for x in contents}
    live |= {job_id for job_id, _ in queued if job_id in in_queues}
    missing = [job_id for job_id, _ in queued if job_id not in in_queues]
    if missing:
        with r.pipeline(transaction=False) as pipe:
            for job_id in missing:
                pipe.hget(Job.key_for(job_id), "status")
            again = pipe.execute()
        live |= {j for j, status in zip(missing, again, strict=True) if status and status.decode() in _RUNNING}
        missing = [j for j in missing if j not in live]
    if missing:  # a worker between its BLPOP and STARTED looks the same for a moment: gone at the second sighting
        with r.pipeline(transaction=False) as pipe:
            for job_id in missing:
                pipe.set(UNQUEUED.format(job_id), 1, nx=True, ex=UNQUEUED_TTL_S)
            live |= {j for j, first_sighting in zip(missing, pipe.execute(), strict=True) if first_sighting}
    return live


def _epoch(stamp: bytes | None) -> float:
    """RQ's UTC time stamp ("2026-12-07T13:01:22.035134Z") in epoch seconds; +inf when missing or unreadable (a job
    whose start is unknown is taken to have just started)."""
    try:
        return datetime.fromisoformat(stamp.decode().replace("Z", "+00:00")).timestamp() if stamp else math.inf
    except ValueError:
        return math.inf


def clean_up_abandoned(r: redis.Redis) -> None:
    """Let RQ fail the jobs of workers that died (it does so whenever its started registry is read)."""
    StartedJobRegistry(QUEUE, connection=r).get_job_ids()

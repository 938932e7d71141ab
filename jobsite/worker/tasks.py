"""The RQ tasks: importable functions over receipts, run by `jobsite worker`.

Each task does little itself: the flows decide (`delivery/deliverer` for an application, `sourcing/opportunities` for
a sourced person, `followup/` for tags and the pipeline sync, `notify/` for an email, `privacy/retention` for what
the schedule removes), and this layer turns the answer into scheduling (retries, probes, follow-ups) through
`delivery/jobs`. Tasks find this process's services here (the worker sets them at start; a plain `rq worker` builds
them from the environment). Queued jobs name them by dotted path; `delivery/jobs.TaskJob` maps older paths.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import redis
from rq.exceptions import AbandonedJobError
from rq.job import Job

from ..alerts import confirmation as alert_confirmation
from ..alerts import digest as alert_digest
from ..alerts import fanout as alert_fanout
from ..delivery import backoff, deliverer, gate, jobs, sender
from ..followup import report, tagging
from ..intake import accept
from ..keyspace.worker_keys import RETENTION_RAN, UPKEEP_LOCK
from ..lever.client import LeverError
from ..lever.pacing import RateLimitWait
from ..notify import received, sending
from ..postings.catalog import CatalogUnavailable
from ..privacy import retention
from ..records import store
from ..records.store import State
from ..records.uploads import sweep_outside
from ..redisdb import redis_server
from ..redisdb.clock import server_now
from ..services import Services
from ..settings import load_settings
from ..sourcing import opportunities as sourcing
from ..sourcing import optin
from ..sourcing import people as sourced_people

log = logging.getLogger(__name__)

RETENTION_EVERY_S = 3600
MAIL_TRIES = 14  # a confirmation email the mail server defers is tried this often, over about four hours:
MAIL_RETRY_BASE_S = 2.0  # 2 s, then doubling (jittered) to at most an hour, past greylisting's usual minutes
MAIL_RETRY_CAP_S = 3600.0
_services: Services | None = None


def use(services: Services) -> Services:
    """Set the services tasks in this process use (the worker does it at start)."""
    global _services
    _services = services
    return services


def services() -> Services:
    global _services
    if _services is None:
        _services = Services(load_settings())
    return _services


def _after(svc: Services, receipt: str, result: deliverer.Result) -> None:
    """Schedule what a delivery's result asks for."""
    r = svc.redis
    if result.opened:
        jobs.release(r, result.opened)
    if result.gate_closed:
        jobs.schedule_probe(r, result.probe_delay_s, svc.settings.delivery_lease_s)
    if result.outcome == deliverer.Outcome.RETRY:
        store.set_job_id(r, receipt, jobs.enqueue_delivery(r, receipt, at=result.retry_at))
    if result.outcome == deliverer.Outcome.DELIVERED:
        jobs.enqueue_tagging(r, receipt)  # a follow-up: tagging never holds up or undoes the delivery


def tag_opportunity(receipt: str, attempt: int = 0) -> str:
    """The tagging task: `followup/tagging` decides, this schedules its retry or the gate's probe."""
    svc = services()
    result = tagging.tag(svc.delivery, receipt, attempt)
    if result.gate_closed:
        jobs.schedule_probe(svc.redis, result.probe_delay_s, svc.settings.delivery_lease_s)
    if result.step == tagging.Step.RETRY:
        jobs.enqueue_tagging(svc.redis, receipt, at=result.retry_at, attempt=result.attempt)
    if result.step in (tagging.Step.DONE, tagging.Step.GAVE_UP) and (rec := store.load(svc.redis, receipt)):
        report.track(svc.redis, rec)  # the report follows it from now on
    return result.step.value


def sync_pipeline(refresh_names: bool = False) -> str:
    """The pipeline sync task: one incremental pass (upkeep queues one every JOBSITE_PIPELINE_SYNC_S)."""
    svc = services()
    if refresh_names:
        try:
            report.refresh_names(svc.delivery)
        except (LeverError, RateLimitWait):
            return "names not refreshed"
    changed = report.sync(svc.delivery)
    return "not now" if changed is None else f"{changed} changed"


def deliver(receipt: str) -> str:
    """The delivery task."""
    svc = services()
    result = deliverer.deliver(svc.delivery, receipt)
    _after(svc, receipt, result)
    return result.outcome.value


def deliver_sourced(person_id: str) -> str:
    """The delivery task of a sourced person (a talent-community sign-up or an event capture)."""
    svc = services()
    result = sourcing.deliver(svc.delivery, person_id)
    if result.gate_closed:
        jobs.schedule_probe(svc.redis, result.probe_delay_s, svc.settings.delivery_lease_s)
    if result.outcome == sourcing.Outcome.RETRY:
        sourced_people.set_job(svc.redis, person_id, jobs.enqueue_sourced(svc.redis, person_id, at=result.retry_at))
    if result.outcome == sourcing.Outcome.DELIVERED and (person := sourced_people.load(svc.redis, person_id)):
        _track_sourced(svc, person)
    return result.outcome.value


def _track_sourced(svc: Services, person: sourced_people.Person) -> None:
    """The pipeline report follows a delivered person's opportunities, by where they came from."""
    try:
        titles = {p["id"]: p["text"] for p in svc.catalog.postings().data}
    except CatalogUnavailable:
        titles = {}
    source = f"event: {person.event_name}" if person.kind == sourced_people.Kind.EVENT else "talent community"
    for send in person.sends:
        report.track_sourced(
            svc.redis,
            send.opportunity_id,
            posting_id=send.posting,
            posting=titles.get(send.posting, ""),
            source=source,
            contact_id=send.contact_id,
            created_at_ms=int(person.delivered_at * 1000),
        )


def _sourcing_upkeep(svc: Services) -> None:
    """Queue the sourced people the gate held once it is open, and those whose delivery was interrupted."""
    r = svc.redis
    for person_id in sourcing.release_parked(r) + sourcing.lost(svc.delivery):
        sourced_people.set_job(r, person_id, jobs.enqueue_sourced(r, person_id))


def send_confirmation_email(receipt: str, attempt: int = 0) -> str:
    """The confirmation email task: `notify` sends it at most once; while the mail server defers it, it is tried again
    with the backoff rule, and the last try records that it failed."""
    svc = services()
    return _email(
        attempt,
        lambda last_try: received.send_confirmation(svc.redis, svc.settings, receipt, last_try=last_try),
        lambda at: jobs.enqueue_confirmation_email(svc.redis, receipt, at=at, attempt=attempt + 1),
    )


def send_optin_email(person_id: str, attempt: int = 0) -> str:
    """A talent-community sign-up's opt-in email task (sourcing/optin.py), tried as the confirmation email is."""
    svc = services()
    return _email(
        attempt,
        lambda last_try: optin.send(svc.delivery, person_id, last_try=last_try),
        lambda at: jobs.enqueue_optin_email(svc.redis, person_id, at=at, attempt=attempt + 1),
    )


def send_alert_confirmation(sub_id: str, attempt: int = 0) -> str:
    """A job alert subscription's confirmation email task (alerts/confirmation.py), tried as the confirmation email
    is."""
    svc = services()
    return _email(
        attempt,
        lambda last_try: alert_confirmation.send(svc.alerting, sub_id, last_try=last_try),
        lambda at: jobs.enqueue_alert_confirmation(svc.redis, sub_id, at=at, attempt=attempt + 1),
    )


def _email(attempt: int, send: Callable[[bool], sending.Status | None], again: Callable[[float], str]) -> str:
    """One try of an email: sent at most once by `send`; deferred, it is queued `again` with the backoff rule, and
    the last try records that it failed."""
    try:
        outcome = send(attempt + 1 >= MAIL_TRIES)
    except sending.MailDeferred:
        again(time.time() + backoff.delay(attempt, MAIL_RETRY_BASE_S, MAIL_RETRY_CAP_S))
        return "deferred"
    return outcome.value if outcome else "nothing to send"


def match_alerts(posting_id: str) -> str:
    """The job alerts' matching task: a newly published posting given to everyone who asked for it."""
    return alert_fanout.fan_out(services().alerting, posting_id)


def send_alerts(sub_ids: list[str]) -> str:
    """The job alerts' send task: the due email of each of a few subscriptions, at most once each."""
    counts = alert_digest.send(services().alerting, sub_ids)
    return ", ".join(f"{n} {what}" for what, n in sorted(counts.items()))


def alerts_crashed(job: Job, connection: redis.Redis, exc_type: type, exc_value: BaseException, tb: Any) -> None:
    """An alerts job failed (an error, Redis gone under it): its work is taken up again at the next upkeep rather
    than after its lease. What it had done is recorded, so nothing is sent or given twice."""
    if not job.args:
        return
    if job.func_name == jobs.MATCH_ALERTS:
        alert_fanout.retry_soon(connection, str(job.args[0]))
    elif job.func_name == jobs.SEND_ALERTS:
        alert_digest.retry_soon(connection, list(job.args[0]))


_reading: threading.Thread | None = None


def _read_postings(svc: Services) -> None:
    """Have this worker's copy of the postings read without waiting: a stale copy is refreshed in the background by
    the catalog itself; a cold one (none parsed yet) in a thread of ours, one at a time. The upkeep never waits on
    Lever for the alerts (in Lever's maintenance a cold read would hold every upkeep, and the jobs behind it)."""
    global _reading
    if svc.catalog.postings_version() is not None or (_reading is not None and _reading.is_alive()):
        return

    def read() -> None:
        with contextlib.suppress(CatalogUnavailable):
            svc.catalog.postings()

    _reading = threading.Thread(target=read, name="read-postings", daemon=True)
    _reading.start()


def _alerts_upkeep(svc: Services) -> None:
    """Read the postings (a stale list is refreshed in the background, and its new postings announced, even when no
    one visits the site), then hand newly published (or stalled) postings to matching jobs, and due subscriptions
    to send jobs."""
    r = svc.redis
    _read_postings(svc)
    jobs.enqueue_alert_matching(r, alert_fanout.stalled(r))
    jobs.enqueue_alert_sends(r, alert_digest.take_due(r))


def _next_probe(svc: Services, delay_s: float) -> None:
    jobs.schedule_probe(svc.redis, delay_s, svc.settings.delivery_lease_s, replace=True)


def probe() -> str:
    """The probe task: `deliverer.probe` decides what the closed gate's probe found, this queues what it released
    and schedules the next probe while the gate stays closed."""
    svc = services()
    r = svc.redis
    found = deliverer.probe(svc.delivery)
    if found.opened:
        jobs.release(r, found.opened)
    if found.delivered:
        jobs.enqueue_tagging(r, found.delivered)
    if found.next_probe_s is not None:
        _next_probe(svc, found.next_probe_s)
    return found.said


def delivery_crashed(job: Job, connection: redis.Redis, exc_type: type, exc_value: BaseException, tb: Any) -> None:
    """An unexpected error in a delivery job: the application needs attention, with the error for recruiters.
    (A job abandoned by a dead worker, or cut off by Redis going away, is taken up by `recover`, not here; for the
    latter, an apply it marked in flight but never sent is withdrawn now that Redis answers.)"""
    if exc_type is not None and issubclass(exc_type, (redis.ConnectionError, redis.TimeoutError)):
        deliverer.withdraw_unsent(connection)  # Redis went and is back: RQ records the failure
        return
    if exc_type is None or issubclass(exc_type, AbandonedJobError) or not job.args:
        return
    record = store.load(connection, job.args[0])
    if record and record.state not in store.AT_REST:
        store.update(
            connection,
            record,
            State.NEEDS_ATTENTION,
            last_error=f"internal error while delivering: {exc_type.__name__}",
        )
        store.log_attempt(connection, record.receipt, "deliver", "error", f"{exc_type.__name__}: {exc_value}")


def cut_off(job: Job | None) -> None:
    """Once Redis is back, tidy after the job its outage cut off, if any. A probe gives up its claim, so the next
    upkeep schedules another at once (the claim would hold the gate closed until it expires, a minute and more); a
    delivery is taken up by `recover` once its lease runs out, at once if its apply was never sent."""
    r = services().redis
    deliverer.withdraw_unsent(r)
    if job is not None and job.func_name == jobs.PROBE:
        gate.drop_probe(r, job.id)


def recover(svc: Services) -> int:
    """Take up applications whose delivery was lost: a worker died holding them, or their job vanished."""
    r, lease_s = svc.redis, svc.settings.delivery_lease_s
    jobs.clean_up_abandoned(r)
    parked = gate.parked(r)
    candidates = (
        store.receipts(r, State.DELIVERING)
        + store.receipts(r, State.QUEUED)
        + [x for x in store.receipts(r, State.WAITING) if x not in parked]
    )
    records = store.load_many(r, candidates)
    lost = deliverer.lost(r, records, lease_s)
    if lost:
        log.warning("taking up %d application(s) whose delivery was interrupted", len(lost))
        with r.pipeline(transaction=False) as pipe:
            for receipt in lost:
                store.log_attempt(pipe, receipt, "recover", None, "delivery was interrupted; queued again")
            pipe.execute()
        jobs.release(r, lost)
    return len(lost)


def on_worker_start(svc: Services) -> None:
    """Check at start whether the key may list opportunities (needed to reconcile unknown outcomes), and warn about
    Redis settings that could lose applications."""
    redis_server.warn_at_start(svc.redis, svc.settings)
    try:
        next(svc.lever.iter_opportunity_pages(limit=1), None)  # paced like every call
        deliverer.note_can_reconcile(svc.redis, True)
    except redis.RedisError as e:
        log.warning("Redis is unreachable at start (%s); the worker waits for it", type(e).__name__)
    except RateLimitWait:
        pass  # Lever's limits are full: the reconcile finds out when it first lists
    except LeverError as e:
        if sender.reading(e) == sender.Action.DO_WITHOUT:
            deliverer.note_can_reconcile(svc.redis, False)
            log.warning(
                "The Lever API key may not list opportunities. After a timeout or a dropped connection an "
                "application is sent again without checking, which can create a duplicate in Lever. Grant "
                "the key 'List all opportunities' to prevent that."
            )


def upkeep() -> None:
    """Periodic work of the delivery side, run by workers between jobs: spool, lost deliveries, the gate."""
    svc = services()
    r = svc.redis
    accept.drain_spool(svc.intake)  # every machine drains its own spool
    if not r.set(UPKEEP_LOCK, "1", nx=True, ex=max(1, svc.settings.upkeep_interval_s - 1)):
        return  # another worker did the shared part this interval
    recover(svc)
    sourced_people.ensure_email_index(r)  # once, for members who joined before the index (one EXISTS after)
    sweep_outside(r)  # files in the object store (JOBSITE_FILES_URL) that Lever has, or purged
    if r.set(RETENTION_RAN, "1", nx=True, ex=RETENTION_EVERY_S):
        retention.purge(svc.delivery)  # applications, sourced people and job alert subscriptions
    status = gate.status(r)
    if status.closed and not status.paused and (jobs.drop_lost_probe(r) or not gate.probe_scheduled(r)):
        jobs.schedule_probe(r, max(0.0, status.next_probe_at - server_now(r)), svc.settings.delivery_lease_s)
    elif status.is_open and status.parked:
        jobs.open_gate(r)
    _sourcing_upkeep(svc)
    _alerts_upkeep(svc)
    if status.is_open:
        for receipt in tagging.take_parked(r):  # follow-ups wait behind the applications released above
            jobs.enqueue_tagging(r, receipt)
        if report.due_sync(r, svc.settings.pipeline_sync_s):
            jobs.enqueue_sync(r)

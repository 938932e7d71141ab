"""Delivering an application to Lever: plain functions over Redis and the Lever client, callable without Flask.

`deliver()` sends one application: through the gate (parked while Lever is in maintenance), at the shared rate
limits, files uploaded first, reconciled with Lever before any re-send whose earlier outcome is unknown, so that no
application is lost and none is sent twice: the application flow on the exactly-once sender (sender.py), which
holds the lease, the fence, the in-flight mark and its settle time, and what Lever's answers mean. It returns what
happened and what should happen next; the task layer (worker/tasks.py) turns that into RQ scheduling.
`check_maintenance()` is the closed gate's light check that Lever's maintenance has ended, made every few seconds
before a probe delivery is risked.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

import redis
from redis.exceptions import LockError
from redis.lock import Lock

from .. import metrics
from ..keyspace.delivery_keys import CAN_RECONCILE, LEASE
from ..lever.client import LeverClient, LeverError
from ..lever.pacing import RateLimitWait
from ..records import store, uploads
from ..records.store import Record, State
from ..records.uploads import FileMissing
from ..settings import Settings
from . import gate, outcomes, sender
from .sender import (
    MAX_IN_PROCESS_WAIT_S,
    Delivery,
    Fence,
    Outcome,
    Result,
    Unreplicated,
    retry_delay,
    unreplicated_retry_s,
)

log = logging.getLogger(__name__)

UPLOAD_MARGIN_MS = 3600 * 1000  # re-upload a file that expires within the hour
PROBE_READS_FOR_S = 10.0  # one probe job reads this long at most before a successor job takes over (under a lease)
RECEIPT_LINK_NAME = "Careers site application"  # the name of our marker among the application's links


class Check(StrEnum):
    """What the probe's light read says about Lever's maintenance."""

    ENDED = "ended"  # Lever answered the read: send the oldest application now
    ONGOING = "ongoing"  # 503, another 5xx, no answer, or no slot in the shared bucket yet: read again soon
    UNREADABLE = "unreadable"  # the key may not make the read: probe by delivering the oldest application alone


# What the light read's answer says of maintenance, by the policy's read row (sender.reading): a wait is an answer,
# so maintenance has ended; a closing answer or a failure is maintenance still on; a read the key may not make, or one
# Lever refuses as it is, cannot tell, so probes deliver alone.
CHECK = {
    sender.Action.WAIT: Check.ENDED,
    sender.Action.CLOSE_GATE: Check.ONGOING,
    sender.Action.RETRY: Check.ONGOING,
    sender.Action.DO_WITHOUT: Check.UNREADABLE,
    sender.Action.NEEDS_ATTENTION: Check.UNREADABLE,
}


@dataclass(frozen=True)
class MaintenanceCheck:
    """The answer of `check_maintenance()`: what the read said, and when the task layer should read again."""

    check: Check
    next_in_s: float = 0.0  # while ONGOING: when to read again


# Applies this process recorded as about to be sent (inflight_at) and then never sent, because Redis went away first:
# receipt -> the inflight_at it recorded. Only this process can know it. Once Redis answers again, `withdraw_unsent`
# clears those marks, so recovery sends them at once instead of waiting out the settle time for an apply Lever never
# got; if the process dies first, the settle time still keeps them from being sent twice.
_unsent: dict[str, float] = {}


def _lease(r: redis.Redis, receipt: str, ttl_s: int) -> Lock:
    return sender.lease(r, LEASE.format(receipt), ttl_s)


def lost(r: redis.Redis, records: list[Record], lease_s: int) -> list[str]:
    """The receipts among `records` whose delivery was lost (sender.lost_many on each one's lease and job)."""
    now = time.time()
    held = [
        sender.Held(LEASE.format(rec.receipt), rec.state == State.DELIVERING, now - rec.updated_at, rec.job_id)
        for rec in records
    ]
    return [rec.receipt for rec, gone in zip(records, sender.lost_many(r, held, lease_s), strict=True) if gone]


class DeliveryUnderWay(Exception):
    """A worker is sending this application right now: it cannot be discarded until that attempt ends."""


def discard(delivery: Delivery, receipt: str, who: str, reason: str) -> bool:
    """A recruiter gives up on an application, holding its delivery lease so that no worker sends it meanwhile
    (a discard in the middle of a delivery would leave it both delivered and discarded). False if it was already
    delivered or discarded; DeliveryUnderWay while a worker holds the lease."""
    r = delivery.redis
    lease = _lease(r, receipt, delivery.settings.delivery_lease_s)
    with sender.leased(lease, f"application {receipt[:8]}") as held:
        if not held:
            raise DeliveryUnderWay(receipt)
        record = store.load(r, receipt)  # read again under the lease: the console's copy may be old
        if record is None or record.state in store.FINAL:
            return False
        try:
            sender.commit(
                r,
                lease,
                lambda pipe: store.update(pipe, record, State.DISCARDED, last_error=f"discarded by {who}: {reason}"),
            )
        except LockError:  # this process stalled past the lease: a worker has it now
            raise DeliveryUnderWay(receipt) from None
        gate.unpark(r, receipt)
        return True


def note_can_reconcile(r: redis.Redis, allowed: bool) -> None:
    """Remember whether our key may list opportunities (checked at worker start and whenever Lever refuses it)."""
    r.set(CAN_RECONCILE, "1" if allowed else "0")


def _can_reconcile(r: redis.Redis) -> bool:
    return r.get(CAN_RECONCILE) != b"0"


def deliver(delivery: Delivery, receipt: str, *, probe: bool = False) -> Result:
    """Try to deliver one application now. `probe` lets it through a closed gate (one probe at a time)."""
    r, s = delivery.redis, delivery.settings
    record = store.load(r, receipt)
    if record is None or record.state in store.AT_REST or record.application is None:
        return Result(Outcome.SKIPPED)
    lease = _lease(r, receipt, s.delivery_lease_s)
    with sender.leased(lease, f"application {receipt[:8]}") as held:
        if not held:
            return Result(Outcome.SKIPPED)
        # Again, under the lease: a worker stopped between the look above and the lease could take a lease let go
        # meanwhile, and its copy (no in-flight mark, not delivered) would send it again.
        record = store.load(r, receipt)
        if record is None or record.state in store.AT_REST or record.application is None:
            return Result(Outcome.SKIPPED)
        lever = delivery.lever.within(min(MAX_IN_PROCESS_WAIT_S, s.delivery_lease_s / 2))  # the lease outlives it
        fence = Fence.of(delivery, lease)
        try:
            if not probe and gate.park(r, receipt, record.created_at):
                waited = record.waited_maintenance or gate.status(r).cause == gate.Cause.MAINTENANCE
                fence.write(
                    lambda pipe: store.update(
                        pipe, record, State.WAITING, next_attempt_at=0.0, waited_maintenance=waited
                    )
                )
                return Result(Outcome.PARKED)
            return _send(delivery, fence, record, lever, probe)
        except LockError:  # the lease passed on (sender.commit): the new holder's record stands, ours is not written
            return Result(Outcome.SKIPPED)


def _send(delivery: Delivery, fence: Fence, record: Record, lever: LeverClient, probe: bool) -> Result:
    """One attempt. Every write of the record goes through `fence` (sender.commit), so an attempt whose lease passed
    on writes nothing: LockError, which `deliver` answers with SKIPPED."""
    r, s = delivery.redis, delivery.settings
    attempts = record.attempts + 1  # (outside the write: sender.commit may make it twice)
    fence.write(lambda pipe: store.update(pipe, record, State.DELIVERING, attempts=attempts))
    applying = False  # set once the apply itself is sent: only its answer says anything about it

    first_sent_at = record.first_sent_at  # (a slot given up and taken again is not a send)

    marked = 0.0  # the inflight_at recorded for this attempt's apply

    def marking(m: sender.Mark) -> Callable[[redis.client.Pipeline], Any]:
        # Until Lever answers, it may be processing the apply (even if this worker dies): reconcile does not trust
        # "not found" before the settle time. (A mark whose transaction fails is not in Redis: withdrawing it is a
        # no-op.)
        nonlocal marked
        marked = m.at
        return lambda pipe: store.update(
            pipe, record, inflight_at=m.at, settle_until=m.settle_until, first_sent_at=first_sent_at or m.at
        )

    def apply() -> str:
        nonlocal applying
        applying = True
        return lever.apply(record.posting_id, body, send_confirmation_email=s.lever_confirmation_email)

    try:
        if record.inflight_at and (known := _reconcile(delivery, fence, record, lever, probe)) is not None:
            # Lever answered: a probe that learns so has its answer, as when its own apply succeeds.
            return _opened(delivery, known) if probe else known
        uris = _upload_files(delivery, fence, record, lever)
        assert record.application is not None  # noqa: S101 (checked by deliver(); narrows the type)
        body = record.application.lever_body(uris, record.source or s.application_source)
        # The candidate's links never carry a marker of ours (their earlier receipt pasted in): only ours does.
        body["urls"] = [u for u in body["urls"] if not any(store.known(r, m) for m in _marks({"links": [u["value"]]}))]
        body["urls"].append({"name": RECEIPT_LINK_NAME, "value": receipt_link(s, record.receipt)})
        application_id = fence.send(lever, s.reconcile_settle_s, marking, apply)
    except RateLimitWait as e:
        if not applying:  # (always so today: only the apply's answer comes after it)
            _not_sent(r, record, marked)  # a slot given up (the process woke late), and the next one too far
        return _wait(fence, record, e.wait_s, "waiting for a rate-limit slot", probe)
    except FileMissing as e:
        return _needs_attention(
            delivery,
            fence,
            record,
            f"the uploaded file {e} is no longer in Redis (it holds files "
            "until Lever has them): ask the candidate to send it again",
        )
    except LockError:
        # Our lease ran out (a stall longer than JOBSITE_DELIVERY_LEASE_S) and another worker may hold it now.
        # No apply left in this attempt (a file may have: Lever keeps it unused), so stop and let the lease holder,
        # or recovery, deliver it.
        if not applying:
            _not_sent(r, record, marked)
        return Result(Outcome.SKIPPED)
    except Unreplicated as e:
        # The mark may be on the primary alone: a failover now would forget it, so the apply does not leave yet.
        try:
            _not_sent(r, record, marked)
        except (redis.ConnectionError, redis.TimeoutError):  # the primary went away: withdrawn once Redis is back
            _unsent[record.receipt] = marked
            raise
        return _wait(fence, record, unreplicated_retry_s(r), f"not sent yet: {e}", probe)
    except LeverError as e:
        verdict = outcomes.judge(e)
        if not verdict.outcome_unknown:
            _definite_failure(fence, record, applying)
        elif applying and verdict.status is not None:
            # A 5xx answer ends Lever's processing: what it did is listed.
            fence.write(lambda pipe: store.update(pipe, record, settle_until=0.0))
        return _answered(delivery, fence, record, verdict, applying, probe)
    except (redis.ConnectionError, redis.TimeoutError):
        if marked and not applying:
            _unsent[record.receipt] = marked
        raise
    _delivered(delivery, fence, record, application_id, lever)
    result = Result(Outcome.DELIVERED)
    return _opened(delivery, result) if probe else result


def _not_sent(r: redis.Redis, record: Record, marked: float) -> None:
    """This attempt marked its apply in flight, then stopped before sending it: withdraw the mark, or the next
    attempt would wait out the settle time for an apply Lever never got."""
    if marked and store.withdraw_send(r, record.receipt, marked):
        record.inflight_at = record.settle_until = 0.0


def withdraw_unsent(r: redis.Redis) -> None:
    """Once Redis answers again after cutting this process off: the applies it marked in flight but never sent are
    not in flight (unless the record has moved on since: another send, a delivery)."""
    for receipt, at in list(_unsent.items()):
        if store.withdraw_send(r, receipt, at):
            store.log_attempt(r, receipt, "deliver", None, "Redis went away before the apply was sent: not sent")
        del _unsent[receipt]


def _answered(
    delivery: Delivery, fence: Fence, record: Record, verdict: outcomes.Verdict, applying: bool, probe: bool
) -> Result:
    """What a failed Lever call means for this application (outcomes.judge decided what it means for Lever)."""
    r = delivery.redis
    decision = sender.decide(r, verdict, sender.Work.APPLICATION, probe=probe)
    act = {  # what each of the policy's actions is for an application
        sender.Action.CLOSE_GATE: lambda: _close_gate(delivery, fence, record, verdict, decision, probe),
        sender.Action.RETRY: lambda: _retry(delivery, fence, record, verdict.why, probe),  # reconciled first if unknown
        sender.Action.WAIT: lambda: _wait(fence, record, verdict.wait_s, verdict.why, probe),
        sender.Action.NEEDS_ATTENTION: lambda: _needs_attention(delivery, fence, record, verdict.why),
    }
    if decision.action != sender.Action.CLOSE_GATE:  # (closing logs its own cause)
        action = "apply" if applying or decision.action != sender.Action.WAIT else "rate limit"
        store.log_attempt(r, record.receipt, action, verdict.status or "no answer", verdict.message)
    result = act[decision.action]()
    # Lever answered (a 429, a refusal of this application), so it is out of maintenance: a probe opens the gate.
    answered = decision.action in (sender.Action.WAIT, sender.Action.NEEDS_ATTENTION)
    return _opened(delivery, result) if probe and answered else result


def check_maintenance(delivery: Delivery) -> MaintenanceCheck:
    """While the gate is closed for maintenance: has it ended? One light authenticated read that maintenance blocks
    (List stages, one item; Lever answers 503 to every Data API call but three postings reads), paced with all Lever
    calls. Cheaper and faster than re-sending an application: it can run every few seconds. Where
    Lever refuses the read (401/403), that is remembered for JOBSITE_PROBE_READ_RETRY_S and probes deliver alone."""
    r, s = delivery.redis, delivery.settings
    if gate.read_refused(r) is not None:
        return MaintenanceCheck(Check.UNREADABLE)
    try:
        delivery.lever.within(MAX_IN_PROCESS_WAIT_S).read_stages(limit=1)
    except RateLimitWait as e:
        return MaintenanceCheck(Check.ONGOING, max(e.wait_s, s.probe_interval_s))
    except LeverError as e:
        action = sender.reading(e)
        check = CHECK[action]
        if check == Check.ONGOING:
            return MaintenanceCheck(check, s.probe_interval_s)
        if check == Check.ENDED:
            return MaintenanceCheck(check)
        why = (
            f"the API key may not read stages ({e.status})"
            if action == sender.Action.DO_WITHOUT
            else f"Lever refused to list stages ({e.status}: {e.message})"
        )
        gate.note_read_refused(r, why, s.probe_read_retry_s)
        log.warning(
            "Lever's maintenance is checked by re-sending the oldest application, with backoff up to %g s: "
            "%s. Grant the key read access to stages for a light check every %g s instead (the read is "
            "tried again in %d s).",
            s.probe_cap_s,
            why,
            s.probe_interval_s,
            s.probe_read_retry_s,
        )
        return MaintenanceCheck(Check.UNREADABLE)
    return MaintenanceCheck(Check.ENDED)


@dataclass(frozen=True)
class ProbeResult:
    """What one probe of the closed gate found, for the task layer to schedule: the parked applications to queue,
    a delivered one to follow up, and when to probe next (None: the probe chain ends, its claim released)."""

    said: str  # "paused", "open", "closed", or the outcome of the probe's delivery
    next_probe_s: float | None = None
    opened: tuple[str, ...] = ()
    delivered: str = ""


def probe(delivery: Delivery) -> ProbeResult:
    """Probe a closed gate. In maintenance, a light read every few seconds until Lever answers it; then at once (or
    at every probe, when Lever refuses the read or our key) deliver the oldest waiting application, or, with none
    waiting, make a cheap call. The probe holds the gate's probe claim until the task layer has scheduled its
    successor, or until this ends the chain (the gate is open, or delivery is paused)."""
    r = delivery.redis
    status = gate.status(r)
    if status.paused or not status.closed:
        gate.end_probe(r)
        if status.paused:
            return ProbeResult("paused")
        return ProbeResult("open", opened=tuple(gate.open_(r)))
    check = Check.UNREADABLE  # a refused key is checked by delivering: a read would say nothing about it
    if status.cause in (gate.Cause.MAINTENANCE, gate.Cause.FAILING):
        # The reads of one probe job follow each other in this process, JOBSITE_PROBE_INTERVAL_S apart, for up to
        # PROBE_READS_FOR_S: RQ's scheduler keeps whole seconds and looks once a second, so a successor job would
        # add one to two seconds between the end of maintenance and the first delivery.
        until = time.monotonic() + PROBE_READS_FOR_S
        while (maintenance := check_maintenance(delivery)).check == Check.ONGOING:
            if time.monotonic() + maintenance.next_in_s > until or gate.status(r).paused:
                return ProbeResult("closed", next_probe_s=maintenance.next_in_s)
            time.sleep(maintenance.next_in_s)
        check = maintenance.check
    receipt = gate.oldest_parked(r)
    if receipt is None:
        if check == Check.ENDED:
            gate.end_probe(r)
            return ProbeResult("open", opened=tuple(gate.open_(r)))
        return _probe_without_application(delivery)
    result = deliver(delivery, receipt, probe=True)
    delivered = receipt if result.outcome == Outcome.DELIVERED else ""
    found = ProbeResult(result.outcome.value, opened=result.opened, delivered=delivered)
    if result.outcome == Outcome.SKIPPED:
        record = store.load(r, receipt)
        if record is None or record.state in store.AT_REST:
            gate.unpark(r, receipt)  # nothing left to send: probe with the next one
            return replace(found, next_probe_s=0)
        return replace(found, next_probe_s=1)  # another worker holds its lease right now
    if gate.status(r).closed:
        return replace(found, next_probe_s=result.probe_delay_s)
    gate.end_probe(r)
    return found


def _probe_without_application(delivery: Delivery) -> ProbeResult:
    """Nothing is parked: a cheap call tells whether Lever is back."""
    r = delivery.redis
    try:
        next(delivery.lever.within(MAX_IN_PROCESS_WAIT_S).iter_opportunity_pages(limit=1), None)
    except RateLimitWait as e:  # Lever's limits are full: nothing learned, look again once a slot is free
        return ProbeResult("closed", next_probe_s=max(e.wait_s, delivery.settings.probe_interval_s))
    except LeverError as e:
        if CHECK[sender.reading(e)] == Check.ONGOING:
            return ProbeResult("closed", next_probe_s=gate.probe_failed(r, delivery.settings.probe_cap_s))
        # any other answer (even 403) means Lever is out of maintenance
    gate.end_probe(r)
    return ProbeResult("open", opened=tuple(gate.open_(r)))


def _definite_failure(fence: Fence, record: Record, applying: bool) -> None:
    """Lever answered the apply with an error, so it was not processed: no need to reconcile before re-sending.
    (An error from an upload or a reconciliation says nothing about an earlier apply whose outcome is unknown.)"""
    if applying and record.inflight_at:
        fence.write(lambda pipe: store.update(pipe, record, inflight_at=0.0))


def _upload_files(delivery: Delivery, fence: Fence, record: Record, lever: LeverClient) -> dict[str, str]:
    """Upload stored files to Lever, reusing uploads that are still valid (Lever keeps them 24 h)."""
    r = delivery.redis
    uris: dict[str, str] = {}
    now_ms = time.time() * 1000
    for f in record.files:
        known = record.uploads.get(f["field"])
        if known and known["expires_at_ms"] - UPLOAD_MARGIN_MS > now_ms:
            uris[f["field"]] = known["uri"]
            continue
        content = uploads.read(r, record.receipt, f)
        fence.lock.reacquire()
        upload = lever.upload_file(uploads.safe_name(f), content, f["content_type"])
        uris[f["field"]] = upload.uri
        _uploaded(fence, record, f["field"], store.LeverUpload(uri=upload.uri, expires_at_ms=upload.expires_at_ms))
        store.log_attempt(r, record.receipt, "upload", 200, f"{f['kind']} file uploaded")
    return uris


def _uploaded(fence: Fence, record: Record, field: str, upload: store.LeverUpload) -> None:
    """Remember Lever's copy of a file (reused by a later attempt while Lever keeps it)."""
    uploads = {**record.uploads, field: upload}
    fence.write(lambda pipe: store.update(pipe, record, uploads=uploads))


def receipt_link(settings: Settings, receipt: str) -> str:
    """Our marker on what Lever stores with an application: the receipt page's address, sent in `urls` (Lever keeps
    it among the opportunity's links). A receipt is a 128-bit random token: no other application carries it."""
    return f"{settings.public_url or f'http://localhost:{settings.port}'}/applications/{receipt}"


def _marks(opportunity: dict[str, Any]) -> set[str]:
    """The receipts whose marker an opportunity carries."""
    return {
        tail
        for link in opportunity.get("links") or []
        for head, sep, tail in [str(link).rpartition("/applications/")]
        if sep and head and tail
    }


def _claimed(delivery: Delivery, record: Record, app_id: str, opportunity: dict[str, Any]) -> bool:
    """Another of our applications is this one in Lever: it carries that one's marker, or that one recorded it
    when it was delivered (before markers were sent)."""
    r = delivery.redis
    if any(mark != record.receipt and store.known(r, mark) for mark in _marks(opportunity)):
        return True
    others = [x for x in store.of_contact(r, str(opportunity.get("contact") or "")) if x != record.receipt]
    return any(
        o.lever_application_id == app_id or o.opportunity_id == opportunity.get("id")
        for o in store.load_many(r, others)
        if o.lever_application_id
    )


def _reconcile(delivery: Delivery, fence: Fence, record: Record, lever: LeverClient, probe: bool) -> Result | None:
    """After an apply whose outcome is unknown: did Lever create it? Only an opportunity carrying this application's
    marker is it: delivered. None when Lever does not have it (send it again). While Lever may still be processing
    an apply that got no answer, "not found" is not trusted: look again once the settle time has passed. Where
    Lever lists an application by the same person for the posting that no record of ours explains, no answer can
    tell whether it is this one: a person decides (maybe delivered)."""
    r = delivery.redis
    if not _can_reconcile(r):
        store.log_attempt(r, record.receipt, "reconcile", None, "the API key may not list opportunities: re-sending")
        _resending(fence, record)
        return None
    try:
        found = _lever_applications(delivery, record, lever)  # no time window: the marker alone says which is ours
    except LeverError as e:
        if sender.reading(e) != sender.Action.DO_WITHOUT:
            raise
        note_can_reconcile(r, False)
        log.warning(
            "the Lever API key may not list opportunities: an apply with an unknown outcome is re-sent, "
            "which can create a duplicate"
        )
        store.log_attempt(r, record.receipt, "reconcile", 403, "the API key may not list opportunities: re-sending")
        _resending(fence, record)
        return None
    mine = [(app_id, opp) for app_id, opp in found if record.receipt in _marks(opp)]
    if mine:
        app_id, opp = mine[0]
        store.log_attempt(r, record.receipt, "reconcile", 200, "Lever already had this application")
        duplicates = _new_duplicates(record, [str(o.get("id")) for _, o in mine[1:]])
        _delivered(delivery, fence, record, app_id, lever, opportunity=opp, duplicates=duplicates)
        _say_duplicates(r, record, duplicates)
        return Result(Outcome.DELIVERED)
    if settling := sender.settling_s(r, record.settle_until):
        why = "Lever does not list it yet and may still be processing it: looking again before sending it again"
        store.log_attempt(r, record.receipt, "reconcile", 200, why)
        return _wait(fence, record, settling, why, probe)
    unexplained = [
        {"opportunity": str(opp.get("id", "")), "application": app_id, "contact": str(opp.get("contact") or "")}
        for app_id, opp in found
        if not _marks(opp) and not _claimed(delivery, record, app_id, opp)
    ]
    if unexplained:
        fence.write(lambda pipe: store.update(pipe, record, maybe_delivered=unexplained))
        store.log_attempt(r, record.receipt, "reconcile", 200, "maybe delivered: a person decides")
        metrics.incr(r, "jobsite_deliveries_total", outcome="maybe_delivered")
        return _needs_attention(
            delivery,
            fence,
            record,
            "maybe delivered: Lever holds an application by the same person "
            "for this posting without our link, and we cannot tell whether it is this one. Look "
            "in Lever, then mark it delivered or send it again",
        )
    store.log_attempt(r, record.receipt, "reconcile", 200, "Lever does not have it: sending again")
    _resending(fence, record)
    return None


def _resending(fence: Fence, record: Record) -> None:
    """The unknown outcome is settled as "not in Lever": the next apply is a re-send (its follow-up looks for a late
    first copy)."""
    fence.write(lambda pipe: store.update(pipe, record, inflight_at=0.0, settle_until=0.0, resent=True))


def _new_duplicates(record: Record, others: list[str]) -> list[str]:
    """The opportunities among `others` that hold this application again and are not known as such yet."""
    return [x for x in others if x and x not in record.duplicates and x != record.opportunity_id]


def _say_duplicates(r: redis.Redis, record: Record, new: list[str]) -> None:
    """Lever holds this application more than once (recorded in `duplicates`): say so in the console (a person
    merges them in Lever)."""
    if not new:
        return
    store.log_attempt(
        r,
        record.receipt,
        "reconcile",
        None,
        f"duplicate: Lever holds this application again as opportunity {', '.join(new)}",
    )
    metrics.incr(r, "jobsite_deliveries_total", outcome="duplicate")
    log.warning("application %s is in Lever more than once (the console lists the duplicates)", record.receipt[:8])


def look_for_duplicates(delivery: Delivery, record: Record, lever: LeverClient) -> list[str]:
    """A follow-up of an application sent again after an unknown outcome: does Lever hold a late first copy beside
    the one delivered? Records and returns the other opportunities (List all opportunities, each page paced by `lever`).
    Raises LeverError."""
    if record.application is None:
        return []
    found = _lever_applications(delivery, record, lever)
    new = _new_duplicates(record, [str(o.get("id")) for _, o in found if record.receipt in _marks(o)])
    if new:  # (a follow-up holds no lease: it writes only this, which no attempt writes after delivery)
        store.update(delivery.redis, record, duplicates=record.duplicates + new)
        _say_duplicates(delivery.redis, record, new)
    return record.duplicates


class NotMaybeDelivered(Exception):
    """The application is not waiting for a person to say whether Lever has it."""


def settle_maybe_delivered(
    delivery: Delivery, receipt: str, who: str, *, delivered: bool, opportunity_id: str = ""
) -> Record:
    """A person looked in Lever: the application is there (`delivered`, as `opportunity_id`, default the first
    candidate) or not (its unknown outcome is settled: the next delivery sends it again). Holds the lease, like a
    discard. Raises NotMaybeDelivered, DeliveryUnderWay."""
    r = delivery.redis
    lease = _lease(r, receipt, delivery.settings.delivery_lease_s)
    with sender.leased(lease, f"application {receipt[:8]}") as held:
        if not held:
            raise DeliveryUnderWay(receipt)
        record = store.load(r, receipt)
        if record is None or record.state != State.NEEDS_ATTENTION or not record.maybe_delivered:
            raise NotMaybeDelivered(receipt)
        changes: dict[str, Any] = {"inflight_at": 0.0, "settle_until": 0.0, "maybe_delivered": []}
        if delivered:
            chosen = next(
                (c for c in record.maybe_delivered if c["opportunity"] == opportunity_id), record.maybe_delivered[0]
            )
            changes.update(
                lever_application_id=chosen["application"],
                delivered_at=time.time(),
                last_error="",
                opportunity_id=chosen["opportunity"],
                contact_id=chosen.get("contact", ""),
            )
            said = f"{who} marked it delivered: Lever's opportunity {chosen['opportunity']}"
        else:
            changes.update(resent=True)
            said = f"{who} found it is not in Lever: send it again"

        def write(pipe: redis.client.Pipeline) -> None:
            store.update(pipe, record, State.DELIVERED if delivered else None, **changes)
            if delivered:
                uploads.remove(pipe, receipt)

        try:
            sender.commit(r, lease, write)
        except LockError:  # this process stalled past the lease: a worker has it now
            raise DeliveryUnderWay(receipt) from None
        store.log_attempt(r, receipt, "reconcile", None, said)
        return record


def _delivered(
    delivery: Delivery,
    fence: Fence,
    record: Record,
    application_id: str,
    lever: LeverClient,
    opportunity: dict[str, Any] | None = None,
    duplicates: list[str] | None = None,
) -> None:
    """Lever has it (and, found by a reconcile, again as `duplicates`): written while the lease is ours, as everything
    an attempt writes. Paused past the lease after Lever's answer, the attempt still writes it if the record carries
    the mark of the send Lever answered (store.if_marked: nothing has moved it on since), or it says so already (a
    first try applied, its answer lost); else LockError. "Lever has it" is true whoever holds the lease now, and
    dropped, a key that may not list opportunities could only send it again."""
    r = delivery.redis
    mark = record.inflight_at  # the send Lever answered: this attempt's, or the earlier one a reconcile found
    if opportunity is None:
        opportunity = _find_opportunity(delivery, record, application_id, lever)
    fields: dict[str, Any] = {
        "lever_application_id": application_id,
        "inflight_at": 0.0,
        "delivered_at": time.time(),
        "last_error": "",
        "opportunity_id": (opportunity or {}).get("id", ""),
        "contact_id": (opportunity or {}).get("contact", ""),
    }
    if duplicates:
        fields["duplicates"] = record.duplicates + duplicates

    def write(pipe: redis.client.Pipeline, record: Record) -> None:
        store.update(pipe, record, State.DELIVERED, **fields)
        uploads.remove(pipe, record.receipt)  # Lever has copies now; ours were only kept until delivery

    try:
        fence.write(lambda pipe: write(pipe, record))
    except LockError:
        if not store.if_marked(r, record.receipt, mark, write) and not _already(r, record.receipt, application_id):
            raise
    store.log_attempt(r, record.receipt, "apply", 201, f"delivered: Lever application {application_id}")
    gate.lever_answered(r)
    metrics.incr(r, "jobsite_deliveries_total", outcome="delivered")
    log.info("application %s delivered", record.receipt[:8])


def _already(r: redis.Redis, receipt: str, application_id: str) -> bool:
    """The record already says delivered as `application_id`: a first try of the write was applied although its
    answer was lost with the connection (and the lease passed on before the second)."""
    now = store.load(r, receipt)
    return now is not None and now.state == State.DELIVERED and now.lever_application_id == application_id


def _find_opportunity(
    delivery: Delivery, record: Record, application_id: str, lever: LeverClient
) -> dict[str, Any] | None:
    """Lever's apply answer holds only the application id; the opportunity and contact are looked up (best effort:
    the application is delivered either way, and the follow-up looks again later)."""
    if not _can_reconcile(delivery.redis):
        return None
    try:
        return locate_opportunity(delivery, record, application_id, lever)
    except (LeverError, RateLimitWait):  # whatever it means (a 429 slowed everyone already), the follow-up looks again
        return None


def locate_opportunity(
    delivery: Delivery, record: Record, application_id: str, lever: LeverClient
) -> dict[str, Any] | None:
    """The opportunity Lever made of a delivered application, by the candidate's email and posting (List all
    opportunities, each page paced by `lever`); None while Lever does not list it yet, or once the answers are
    purged. Raises LeverError."""
    if record.application is None:
        return None
    found = _lever_applications(delivery, record, lever)
    return next((opp for app_id, opp in found if app_id == application_id), None)


def _lever_applications(
    delivery: Delivery, record: Record, lever: LeverClient, **filters: Any
) -> list[tuple[str, dict[str, Any]]]:
    """(application id, opportunity) pairs Lever holds for this candidate's email and posting."""
    assert record.application is not None  # noqa: S101 (not purged: it is being delivered; narrows the type)
    opportunities = lever.list_opportunities(
        email=record.application.email, posting_id=record.posting_id, expand="applications", **filters
    )
    return [
        (str(app["id"] if isinstance(app, dict) else app), opp)
        for opp in opportunities
        for app in opp.get("applications") or []
    ]


def _wait(fence: Fence, record: Record, wait_s: float, why: str, probe: bool) -> Result:
    retry_at = time.time() + max(wait_s, 0.5)
    fence.write(lambda pipe: store.update(pipe, record, State.WAITING, next_attempt_at=retry_at, last_error=why))
    return Result(Outcome.RETRY, retry_at=retry_at, probe_delay_s=max(wait_s, 0.5) if probe else 0.0)


def _close_gate(
    delivery: Delivery,
    fence: Fence,
    record: Record,
    verdict: outcomes.Verdict,
    decision: sender.Decision,
    probe: bool,
) -> Result:
    """Lever cannot take any application now (maintenance, failing, or our key is refused): park, and probe with
    backoff."""
    r, s = delivery.redis, delivery.settings
    cause, why = decision.cause, decision.why
    assert cause is not None  # noqa: S101 (always set with CLOSE_GATE; narrows the type)
    store.log_attempt(r, record.receipt, "apply", verdict.status or "no answer", verdict.message)
    metrics.incr(r, "jobsite_deliveries_total", outcome=cause.value)
    closed = gate.close(r, cause, why)
    delay = gate.probe_failed(r, s.probe_cap_s) if probe else gate.probe_delay(0, s.probe_cap_s)
    if not probe:
        gate.park(r, record.receipt, record.created_at)
    waited = record.waited_maintenance or cause == gate.Cause.MAINTENANCE
    fence.write(
        lambda pipe: store.update(
            pipe, record, State.WAITING, next_attempt_at=0.0, last_error=why, waited_maintenance=waited
        )
    )
    if closed:
        log.warning("delivery paused, probing Lever with backoff: %s", why)
    return Result(Outcome.PARKED, gate_closed=closed, probe_delay_s=delay)


def _retry(delivery: Delivery, fence: Fence, record: Record, why: str, probe: bool) -> Result:
    r, s = delivery.redis, delivery.settings
    if time.time() - record.created_at > s.retry_window_s:
        return _needs_attention(delivery, fence, record, f"Lever kept failing for {s.retry_window_s // 3600} h: {why}")
    # A failed probe backs off the gate's probing; any other failure backs off this application.
    delay = gate.probe_failed(r, s.probe_cap_s) if probe else retry_delay(record.attempts - 1)
    retry_at = time.time() + delay
    fence.write(lambda pipe: store.update(pipe, record, State.WAITING, next_attempt_at=retry_at, last_error=why))
    metrics.incr(r, "jobsite_deliveries_total", outcome="retry")
    return Result(Outcome.RETRY, retry_at=retry_at, probe_delay_s=delay if probe else 0.0)


def _needs_attention(delivery: Delivery, fence: Fence, record: Record, why: str) -> Result:
    """Stop trying until a recruiter acts. Says nothing about Lever's state, so the gate is left as it is."""
    r = delivery.redis
    fence.write(lambda pipe: store.update(pipe, record, State.NEEDS_ATTENTION, last_error=why, next_attempt_at=0.0))
    gate.unpark(r, record.receipt)  # a probe moves on to the next waiting application
    metrics.incr(r, "jobsite_deliveries_total", outcome="needs_attention")
    # Not `why`: Lever's message may repeat what the candidate wrote (an email address); the console shows it.
    log.warning("application %s needs attention (the console says why)", record.receipt[:8])
    return Result(Outcome.NEEDS_ATTENTION)


def _opened(delivery: Delivery, result: Result) -> Result:
    """A probe got an answer from Lever: open the gate; the task layer queues what was parked."""
    released = gate.open_(delivery.redis)
    log.info("Lever accepts applications again: releasing %d waiting applications", len(released))
    return replace(result, opened=tuple(released))

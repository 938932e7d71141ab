"""Delivering a sourced person to Lever exactly once, as Lever asks sourcing integrations to: Create an opportunity
(origin `sourced`, `perform_as` a Lever user, company-prefixed tags), one request per posting, then the note on
each with Create a note as the same user.

It shares the applications' machinery without changing it: the delivery gate (a person waits while the gate is
closed or paused; a 503 closes it like an application's would, and the same probe opens it), the shared pacing on
Lever's all-calls limit, and a lease per person so two workers never send the same one. Create an opportunity has no
idempotency key, so each send is marked in flight before it leaves; after a timeout, a dropped answer or a crash,
List opportunities (by email, created since the attempt, with the posting and the tag) says whether Lever has it
before it is sent again. Notes are checked the same way (List notes) before a re-send.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import redis
from redis.exceptions import LockError

from .. import metrics
from ..delivery import backoff, gate, jobs, outcomes
from ..delivery.deliverer import Outcome, Result  # a person's delivery ends as an application's does
from ..lever.client import LeverAuthError, LeverError
from ..lever.pacing import Pacer, RateLimitWait
from ..records import uploads
from ..records.uploads import FileMissing
from ..services import Services
from ..settings import Settings
from . import people, performers
from .people import Kind, Person, Send, Standing

log = logging.getLogger(__name__)

LEASE = "sourced:lease:{}"  # a redis-py Lock per person while a worker delivers them
MAX_IN_PROCESS_WAIT_S = 10.0
RECONCILE_MARGIN_MS = 120 * 1000  # clock skew allowed when looking for what Lever may already have
RETRY_BASE_S = 5.0
RETRY_CAP_S = 900.0


def tags(settings: Settings, person: Person) -> list[str]:
    """The company-prefixed tags: `<Prefix> talent community` and one per interest, or `<Prefix> event: <name>`.
    The first one is what reconciliation looks for."""
    p = settings.tag_prefix
    if person.kind == Kind.EVENT:
        return [f"{p} event: {person.event_name}"]
    return ([f"{p} talent community"] + [f"{p} interest: {t}" for t in person.teams]
            + [f"{p} location: {loc}" for loc in person.locations])


def opportunity_body(settings: Settings, person: Person, send: Send) -> dict[str, Any]:
    """Create an opportunity's body for one send: one posting at most, never more."""
    body: dict[str, Any] = {"name": person.name, "emails": [person.email], "origin": "sourced",
                            "tags": tags(settings, person),
                            "sources": [person.event_name if person.kind == Kind.EVENT
                                        else person.source or settings.application_source]}
    if person.phone:
        body["phones"] = [{"value": person.phone}]
    if person.links:
        body["links"] = list(person.links)
    if send.posting:
        body["postings"] = [send.posting]
    return body


def note_text(person: Person) -> str:
    """The note a capture adds to each of its opportunities ("" for none)."""
    rating = f"Rating: {person.rating}/5" if person.rating else ""
    return "\n\n".join(x for x in (person.note, rating) if x)


def _lease(r: redis.Redis, person_id: str, ttl_s: int) -> redis.lock.Lock:
    return r.lock(LEASE.format(person_id), timeout=ttl_s, blocking=False)


def lease_alive(r: redis.Redis, person_id: str) -> bool:
    return bool(r.exists(LEASE.format(person_id)))


def deliver(services: Services, person_id: str) -> Result:
    """Try to deliver one sourced person now: every send not yet in Lever, then their notes."""
    r, s = services.redis, services.settings
    person = people.load(r, person_id)
    if person is None or person.standing in people.FINAL:
        return Result(Outcome.SKIPPED)
    lease = _lease(r, person_id, s.delivery_lease_s)
    if not lease.acquire():
        return Result(Outcome.SKIPPED)
    pacer = Pacer(r, min(MAX_IN_PROCESS_WAIT_S, s.delivery_lease_s / 2))
    try:
        person = people.load(r, person_id)  # again, under the lease
        if person is None or person.standing in people.FINAL:
            return Result(Outcome.SKIPPED)
        if not gate.status(r).is_open:
            people.park(r, person)
            people.save(r, person, Standing.WAITING)
            return Result(Outcome.PARKED)
        return _send(services, person, lease, pacer)
    finally:
        pacer.record()
        try:
            lease.release()
        except LockError:
            log.warning("sourced person %s: the lease ran out during delivery", person_id[:8])


class _Sending:
    """Which request is on its way, so that an error Lever answered clears its in-flight mark (it was not made)."""

    def __init__(self) -> None:
        self.send: Send | None = None
        self.note = False

    def failed(self, r: redis.Redis, person: Person) -> None:
        if self.send is not None:
            if self.note:
                self.send.note_inflight_at = 0.0
            else:
                self.send.inflight_at = 0.0
            people.save(r, person)
        self.send = None


def _send(services: Services, person: Person, lease: redis.lock.Lock, pacer: Pacer) -> Result:
    r, s, lever, lever_limit = services.redis, services.settings, services.lever, (services.limits.lever,)
    person.attempts += 1
    people.save(r, person, Standing.DELIVERING)
    sending = _Sending()
    try:
        performer = performers.perform_as(services, person.recruiter, pacer)
        resume = None
        if person.resume:
            f = person.resume
            resume = (uploads.safe_name(f), uploads.read(r, person.id, f), f["content_type"])
        for send in person.sends:
            if not send.opportunity_id and not (send.inflight_at and _reconcile(services, person, send, pacer)):
                lease.reacquire()

                def mark(at: float, send: Send = send) -> None:
                    send.inflight_at, send.first_sent_at = at, send.first_sent_at or at
                    people.save(r, person)

                pacer.take(lever_limit, before_send=mark)
                sending.send, sending.note = send, False
                made = lever.create_opportunity(opportunity_body(s, person, send), perform_as=performer,
                                                resume=resume)
                sending.send = None
                send.opportunity_id, send.contact_id = str(made["id"]), str(made.get("contact") or "")
                send.inflight_at = 0.0
                people.save(r, person)
                people.log(r, person.id, "create", 201, "opportunity created" + (" for a posting" if send.posting
                                                                                  else ""))
            text = note_text(person)
            if text and not send.note_done:
                if send.note_inflight_at and _note_arrived(services, send, text, performer, pacer):
                    continue
                lease.reacquire()

                def mark_note(at: float, send: Send = send) -> None:
                    send.note_inflight_at = at
                    people.save(r, person)

                pacer.take(lever_limit, before_send=mark_note)
                sending.send, sending.note = send, True
                lever.create_note(send.opportunity_id, text, perform_as=performer)
                sending.send = None
                send.note_done, send.note_inflight_at = True, 0.0
                people.save(r, person)
                people.log(r, person.id, "note", 201, "note added")
    except RateLimitWait as e:
        return _retry_at(r, person, time.time() + max(e.wait_s, 0.5), "waiting for a rate-limit slot")
    except FileMissing:
        return _needs_attention(r, person, "the resume is no longer in Redis: ask the person to send it again")
    except LockError:
        return Result(Outcome.SKIPPED)  # our lease ran out and another worker may hold it: nothing more is sent
    except performers.NoPerformer as e:
        return _needs_attention(r, person, str(e))
    except _Settling as e:
        return _retry_at(r, person, time.time() + e.wait_s, "Lever may still be creating it: looking again soon")
    except LeverError as e:
        verdict = outcomes.judge(e, pacer, lever_limit)  # the one policy for Lever's answers (a 429 slows everyone)
        if not verdict.outcome_unknown:
            sending.failed(r, person)  # Lever answered: the request was not carried out
        people.log(r, person.id, "send", verdict.status if verdict.status is not None else "no answer",
                   verdict.message)
        if verdict.gate_cause is not None:
            return _close_gate(services, person, verdict.gate_cause, verdict.why, verdict.status)
        if verdict.meaning == outcomes.Meaning.RATE_LIMITED:
            return _retry_at(r, person, time.time() + max(verdict.wait_s, 0.5), verdict.why)
        if verdict.meaning == outcomes.Meaning.REJECTED:
            return _needs_attention(r, person, verdict.why)
        return _retry(services, person, verdict.why)
    person.delivered_at, person.last_error = time.time(), ""
    with r.pipeline() as pipe:
        people.save(pipe, person, Standing.DELIVERED)
        uploads.remove(pipe, person.id)  # Lever has the resume now
        pipe.execute()
    metrics.incr(r, "jobsite_sourced_total", outcome="delivered", kind=person.kind.value)
    log.info("sourced person %s delivered (%d opportunities)", person.id[:8], len(person.sends))
    return Result(Outcome.DELIVERED)


class _Settling(Exception):
    """Lever does not list it yet, but an answer-less create may still be processing: look again in `wait_s`."""

    def __init__(self, wait_s: float):
        super().__init__(wait_s)
        self.wait_s = wait_s


def _reconcile(services: Services, person: Person, send: Send, pacer: Pacer) -> bool:
    """After a create whose outcome is unknown: did Lever make it? Looked up by email, created since the first
    attempt, the posting and the tag. Records it and returns True if so. "Not found" is trusted only once
    JOBSITE_RECONCILE_SETTLE_S has passed since the attempt (raises _Settling before); then the mark is cleared and
    it is sent again."""
    r = services.redis
    pacer.take((services.limits.lever,))
    filters: dict[str, Any] = {"email": person.email, "tag": tags(services.settings, person)[0],
                               "created_at_start": int(send.first_sent_at * 1000) - RECONCILE_MARGIN_MS}
    if send.posting:
        filters["posting_id"] = send.posting
    taken = {s.opportunity_id for s in person.sends if s.opportunity_id}
    try:
        found = [o for o in services.lever.list_opportunities(**filters) if o.get("id") not in taken]
    except LeverAuthError:  # the key may not list opportunities: re-send, as applications do (it may duplicate)
        log.warning("the Lever API key may not list opportunities: a sourced opportunity whose outcome is unknown "
                    "is created again, which can duplicate it")
        found = []
    else:
        settle = send.inflight_at + services.settings.reconcile_settle_s - time.time()
        if not found and settle > 0:
            raise _Settling(settle)
    if found:
        send.opportunity_id, send.contact_id = str(found[0]["id"]), str(found[0].get("contact") or "")
        send.inflight_at = 0.0
        people.save(r, person)
        people.log(r, person.id, "reconcile", 200, "Lever already had this opportunity")
        return True
    send.inflight_at = 0.0
    people.save(r, person)
    people.log(r, person.id, "reconcile", 200, "Lever does not have it: sending again")
    return False


def _note_arrived(services: Services, send: Send, text: str, performer: str, pacer: Pacer) -> bool:
    """After a note whose outcome is unknown: is it on the opportunity already?"""
    pacer.take((services.limits.lever,))
    try:
        notes = services.lever.list_notes(send.opportunity_id)
    except LeverAuthError:  # the key may not read notes: add it again (it may duplicate)
        notes = []
    if any(n.get("text") == text and n.get("user") in (None, performer) for n in notes):
        send.note_done, send.note_inflight_at = True, 0.0
        return True
    send.note_inflight_at = 0.0
    return False


def _retry_at(r: redis.Redis, person: Person, at: float, why: str) -> Result:
    person.last_error = why
    people.save(r, person, Standing.WAITING)
    return Result(Outcome.RETRY, retry_at=at)


def _retry(services: Services, person: Person, why: str) -> Result:
    r, s = services.redis, services.settings
    if time.time() - person.created_at > s.retry_window_s:
        return _needs_attention(r, person, f"Lever kept failing for {s.retry_window_s // 3600} h: {why}")
    return _retry_at(r, person, time.time() + backoff.delay(person.attempts - 1, RETRY_BASE_S, RETRY_CAP_S), why)


def _close_gate(services: Services, person: Person, cause: gate.Cause, why: str, status: int | None) -> Result:
    """Lever cannot take anything now: close the gate (as an application's 503 would) and wait behind it."""
    r, s = services.redis, services.settings
    people.log(r, person.id, "send", status, why)
    closed = gate.close(r, cause, why)
    person.last_error = why
    people.park(r, person)
    people.save(r, person, Standing.WAITING)
    if closed:
        log.warning("delivery paused, probing Lever with backoff: %s", why)
    return Result(Outcome.PARKED, gate_closed=closed, probe_delay_s=gate.probe_delay(0, s.probe_cap_s))


def _needs_attention(r: redis.Redis, person: Person, why: str) -> Result:
    person.last_error = why
    people.save(r, person, Standing.NEEDS_ATTENTION)
    metrics.incr(r, "jobsite_sourced_total", outcome="needs_attention", kind=person.kind.value)
    log.warning("sourced person %s needs attention (the console says why)", person.id[:8])
    return Result(Outcome.NEEDS_ATTENTION)


def release_parked(r: redis.Redis) -> list[str]:
    """The gate is open: the people parked behind it, oldest first, to be queued."""
    return people.take_parked(r) if gate.status(r).is_open else []


def lost(services: Services) -> list[str]:
    """People whose delivery was interrupted: untouched for longer than a lease, no worker holding them, not parked,
    and either left mid-delivery (a worker died) or waiting without a job to run (it vanished)."""
    r = services.redis
    parked = {x.decode() for x in r.zrange(people.PARKED, 0, -1)}
    now = time.time()
    return [p.id for p in people.load_many(r, people.pending(r))
            if p.id not in parked and now - p.updated_at > services.settings.delivery_lease_s
            and not lease_alive(r, p.id)
            and (p.standing == Standing.DELIVERING or not jobs.job_alive(r, people.job_of(r, p.id)))]

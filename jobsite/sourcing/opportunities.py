"""Delivering a sourced person to Lever exactly once, as Lever asks sourcing integrations to: Create an opportunity
(origin `sourced`, `perform_as` a Lever user, company-prefixed tags), one request per posting, then the note on
each with Create a note as the same user.

A flow on the exactly-once sender (delivery/sender.py), like applications: the same lease per item, the fence
checked in the transaction that marks each create and each note in flight (and again after the wait for its slot),
the settle time on the Redis server's clock, the same gate and the same policy for Lever's answers. What is its own:
the bodies, the two sends, and its marker: each opportunity carries a link of ours naming the person and the send
(`marker`), and each note carries it in its text, so that after a timeout, a dropped answer or a crash, List
opportunities (by email) and List notes find this send's copy, and never another capture's of the same person.

After delivery, what a member changes on the manage page is told to Lever on the same sender, on the same queue
(policy row `Work.CHANGE`): new interests or locations remove the old company tags and add the new ones; consent
withdrawn adds `<Prefix> consent withdrawn` and a note carrying the send's marker + WITHDRAWN_MARK, then nothing more
is sent (before any opportunity exists, none is ever created). Only the lease holder writes the record: the manage
page and retention leave a wish (people.wish) that `take_wish` writes in under the lease; a withdrawal or purge
wished during a delivery stops it before its next create or note (the next holder writes the wish in first).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

import redis
from redis.exceptions import LockError

from .. import metrics
from ..delivery import gate, outcomes, sender
from ..delivery.sender import MAX_IN_PROCESS_WAIT_S, Delivery, Fence, Outcome, Result
from ..keyspace.sourcing_keys import LEASE
from ..lever.client import LeverClient, LeverError
from ..lever.pacing import RateLimitWait
from ..records import store, uploads
from ..records.uploads import FileMissing
from ..settings import Settings
from . import people, performers
from .people import Kind, Person, Send, Standing

log = logging.getLogger(__name__)

LEGACY_MARGIN_MS = 120 * 1000  # clock skew allowed by the releases before markers (see `_reconcile`)
APPLY_WAIT_S = 2.0  # the manage page waits at most this for a delivery in progress to let it write a change in
MARKER_PATH = "/admin/sourced/"  # our marker: <site>/admin/sourced/<person id>/<send>


def tags(settings: Settings, person: Person) -> list[str]:
    """The company-prefixed tags: `<Prefix> talent community` and one per interest, or `<Prefix> event: <name>`.
    The first one is what reconciliation looks for."""
    p = settings.tag_prefix
    if person.kind == Kind.EVENT:
        return [f"{p} event: {person.event_name}"]
    return (
        [f"{p} talent community"]
        + [f"{p} interest: {t}" for t in person.teams]
        + [f"{p} location: {loc}" for loc in person.locations]
    )


def opportunity_body(settings: Settings, person: Person, send: Send) -> dict[str, Any]:
    """Create an opportunity's body for one send: one posting at most, never more."""
    body: dict[str, Any] = {
        "name": person.name,
        "emails": [person.email],
        "origin": "sourced",
        "tags": tags(settings, person),
        "sources": [person.event_name if person.kind == Kind.EVENT else person.source or settings.application_source],
    }
    if person.phone:
        body["phones"] = [{"value": person.phone}]
    # The person's own links never carry a marker of ours (one pasted in): only ours does.
    body["links"] = [*(x for x in person.links if MARKER_PATH not in x), marker(settings, person, send)]
    if send.posting:
        body["postings"] = [send.posting]
    return body


def note_text(person: Person) -> str:
    """The note a capture adds to each of its opportunities ("" for none)."""
    rating = f"Rating: {person.rating}/5" if person.rating else ""
    return "\n\n".join(x for x in (person.note, rating) if x)


def marker(settings: Settings, person: Person, send: Send) -> str:
    """Our marker on one send's opportunity (among its links) and its note (the note's last line): the person's
    id, 80 random bits, and the send's place among theirs. No other send carries it."""
    return (settings.public_url or f"http://localhost:{settings.port}") + _mark(person, send)


def _mark(person: Person, send: Send) -> str:
    """What identifies the marker, whatever the site's address was when it was sent (JOBSITE_PUBLIC_URL may change
    between a send and its reconcile)."""
    place = next(i for i, x in enumerate(person.sends) if x is send)
    return f"{MARKER_PATH}{person.id}/{place + 1}"


def _lease(r: redis.Redis, person_id: str, ttl_s: int) -> redis.lock.Lock:
    return sender.lease(r, LEASE.format(person_id), ttl_s)


def deliver(delivery: Delivery, person_id: str) -> Result:
    """Try to deliver one sourced person now: every send not yet in Lever, then their notes; and, at any time, what
    they changed on the manage page since (their tags; consent withdrawn: a tag and a note, then nothing more)."""
    r, s = delivery.redis, delivery.settings
    person = people.load(r, person_id)
    if person is None:  # removed (an unconfirmed sign-up expired or left): a wish for it has no one to go to
        r.delete(people.WISH.format(person_id))
        r.zrem(people.CHANGED, person_id)
        return Result(Outcome.SKIPPED)
    if person.standing in store.AT_REST and not changed(r, s, person):
        _told(r, person_id)  # (a change that changed nothing Lever has; a wish keeps them in CHANGED)
        return Result(Outcome.SKIPPED)
    lease = _lease(r, person_id, s.delivery_lease_s)
    with sender.leased(lease, f"sourced person {person_id[:8]}") as held:
        if not held:
            if r.exists(people.WISH.format(person_id)) or r.zscore(people.CHANGED, person_id) is not None:
                return Result(Outcome.RETRY, retry_at=time.time() + 1.0)  # the holder may be past its last look
            return Result(Outcome.SKIPPED)
        person = people.load(r, person_id)  # again, under the lease
        if person is None:
            return Result(Outcome.SKIPPED)
        fence = Fence.of(delivery, lease)
        try:
            return _attempt(delivery, fence, person)
        except LockError:  # the lease passed on (sender.commit): the new holder's record stands, ours is not written
            return Result(Outcome.SKIPPED)


def _attempt(delivery: Delivery, fence: Fence, person: Person) -> Result:
    """What the lease's holder does with the person now. Every write of their record goes through `fence`
    (sender.commit): raises LockError, nothing written, once the lease has passed on."""
    r, s = delivery.redis, delivery.settings
    take_wish(delivery, person, fence.lock)
    if person.unconfirmed:  # nothing goes to Lever before the address is confirmed (its change is written in)
        _told(r, person.id, fence=fence)
        return Result(Outcome.SKIPPED)
    follow_ups_only = person.standing in store.AT_REST
    if follow_ups_only and not _follow_ups_due(s, person):
        _told(r, person.id, fence=fence)
        return Result(Outcome.SKIPPED)
    if person.withdrawn and not any(x.opportunity_id or x.inflight_at for x in person.sends):
        _withdrawn_done(fence, person)  # consent withdrawn before anything reached Lever: nothing ever will
        return Result(Outcome.SKIPPED)
    if gate.park(r, person.id, person.created_at, people.PARKED):
        if not follow_ups_only:
            fence.write(lambda pipe: people.save(pipe, person, Standing.WAITING))
        return Result(Outcome.PARKED)
    return _send(
        delivery,
        fence,
        person,
        delivery.lever.within(min(MAX_IN_PROCESS_WAIT_S, s.delivery_lease_s / 2)),
        follow_ups_only=follow_ups_only,
    )


def changed(r: redis.Redis, settings: Settings, person: Person) -> bool:
    """Whether the person changed something (on the manage page) that is not in their record or in Lever yet."""
    return bool(r.exists(people.WISH.format(person.id))) or _follow_ups_due(settings, person)


def take_wish(delivery: Delivery, person: Person, lease: redis.lock.Lock) -> bool:
    """Write what the person asked on the manage page into their record (the holder of `lease` only, checked in the
    transaction: a holder stalled past it would take the wish away from the new holder, whose next save would then
    write its copy without it; `person` is changed in place): new interests, unsubscribed, or consent withdrawn (the
    site's copy goes now; the address stays only while a create whose outcome is unknown must be looked for by it).
    Lever is told after, by `_follow_up`. The wish is removed in the same transaction that writes it in, so a wish
    written meanwhile is never lost. Raises LockError."""
    r, s = delivery.redis, delivery.settings
    key = people.WISH.format(person.id)
    with r.pipeline() as pipe:
        while True:
            try:
                sender.hold(pipe, lease)
                pipe.watch(key, people.KEY.format(person.id))  # (an unconfirmed sign-up is written without a lease)
                raw = pipe.get(key)
                if not raw:
                    return False
                # Read again under the watch: a confirm between the caller's load and the watch is kept, not
                # written over by the caller's older copy.
                if (now := people.load(pipe, person.id)) is None:
                    return False
                vars(person).update(vars(now))
                for send in person.sends:  # the tags Lever has: those it was created with, until now
                    if send.opportunity_id and send.tags is None:
                        send.tags = tags(s, person)
                asked = json.loads(raw)
                people.as_wished(person, asked)
                person.changed_at = time.time()
                pipe.multi()
                pipe.delete(key)
                people.save(pipe, person)
                if (person.withdrawn or asked.get("purge")) and not person.purged:
                    in_doubt = any(x.inflight_at and not x.opportunity_id for x in person.sends)
                    uploads.remove(pipe, person.id)
                    people.purge_personal_data(r, person, pipe, keep_email=in_doubt)
                if _follow_ups_due(s, person):
                    pipe.zadd(people.CHANGED, {person.id: time.time()}, nx=True)  # Lever is to be told
                elif person.standing in store.AT_REST:
                    pipe.zrem(people.CHANGED, person.id)  # nothing for Lever: done
                pipe.execute()
                return True
            except redis.WatchError:
                continue  # read again (above): the caller's object becomes the record as it now is


def apply_now(delivery: Delivery, person_id: str, wait_s: float = APPLY_WAIT_S) -> Person | None:
    """Write the person's wish in at once if their lease is free within `wait_s` and no delivery was left midway
    (the page then shows it done); otherwise the holder, or the job the wish queued, writes it in moments later.
    Returns the person as they now stand."""
    r, s = delivery.redis, delivery.settings
    lease = r.lock(LEASE.format(person_id), timeout=s.delivery_lease_s, blocking=True, blocking_timeout=wait_s)
    held = lease.acquire()
    try:
        person = people.load(r, person_id)
        # Left mid-delivery (its worker died, or stalls past its lease and will write nothing: sender.commit):
        # recovery's holder, which takes the delivery up, writes the wish in with it.
        if person is not None and held and person.standing != Standing.DELIVERING:
            take_wish(delivery, person, lease)
    except LockError:  # this process stalled past the lease: the worker that holds it now writes the wish in
        pass
    finally:
        if held:
            try:
                lease.release()
            except LockError:
                log.warning("sourced person %s: its lease ran out while a change was written in", person_id[:8])
    return person


def _withdrawn_done(fence: Fence, person: Person) -> None:
    """Consent withdrawn and Lever told (or nothing of the person in Lever): the last of their data goes, and
    nothing more is sent."""
    person.email, person.last_error = "", ""

    def write(pipe: redis.client.Pipeline) -> None:
        people.save(
            pipe, person, Standing.DELIVERED if any(x.opportunity_id for x in person.sends) else Standing.DISCARDED
        )
        pipe.zrem(people.CHANGED, person.id)
        pipe.zrem(people.PENDING, person.id)
        pipe.zrem(people.DELIVERED, person.id)

    fence.write(write)
    people.log(fence.r, person.id, "withdrawn", None, "consent withdrawn: nothing more is sent")


_MARKS = {
    "create": ("inflight_at", "settle_until"),
    "note": ("note_inflight_at", "note_settle_until"),
    "change": ("change_inflight_at", ""),
    "withdrawn_note": ("withdrawn_note_inflight_at", "withdrawn_note_settle_until"),
}


class _Sending:
    """Which request is on its way, so that Lever's answer to it updates its in-flight mark: an error Lever answered
    clears it (it was not made); a 5xx ends Lever's processing, so its settle time too. `work` is the policy's row
    for it: a delivery's create and note, or a change told after delivery."""

    def __init__(self) -> None:
        self.send: Send | None = None
        self.what = ""  # "create", "note", "change" (tags), "withdrawn_note"
        self.work = sender.Work.PERSON

    def on(self, send: Send, what: str) -> None:
        self.send, self.what = send, what
        self.work = sender.Work.CHANGE if what in ("change", "withdrawn_note") else sender.Work.PERSON

    def not_sent(self, fence: Fence, person: Person) -> None:
        """The request was marked in flight but never left: withdraw its mark (a reconcile would wait for nothing)."""
        send = self.send
        if send is not None:
            for mark in _MARKS[self.what]:
                if mark:
                    setattr(send, mark, 0.0)
            fence.write(lambda pipe: people.save(pipe, person))
        self.send = None

    def failed(self, fence: Fence, person: Person, verdict: outcomes.Verdict) -> None:
        send = self.send
        if send is None:
            return
        inflight, settle = _MARKS[self.what]
        if not verdict.outcome_unknown:
            setattr(send, inflight, 0.0)
        elif verdict.status is not None and settle:
            setattr(send, settle, 0.0)
        fence.write(lambda pipe: people.save(pipe, person))
        self.send = None


def _send(
    delivery: Delivery, fence: Fence, person: Person, lever: LeverClient, *, follow_ups_only: bool = False
) -> Result:
    r, s = delivery.redis, delivery.settings
    first_delivery, before = not person.delivered_at, person.standing
    # Telling Lever of a member's change after delivery: waiting for a retry or behind the gate, they stay as
    # delivered (the console says why in last_error), and the next try is a follow-up again, not a delivery attempt.
    waiting = before if follow_ups_only else Standing.WAITING
    if not follow_ups_only:
        person.attempts += 1
    # (killed now, recovery takes it up once the lease runs out)
    fence.write(lambda pipe: people.save(pipe, person, Standing.DELIVERING))
    sending = _Sending()

    def save(pipe: redis.client.Pipeline) -> None:
        people.save(pipe, person)

    try:
        performer = performers.perform_as(delivery, person.recruiter, lever)
        resume = None
        if person.resume and not follow_ups_only and any(not x.opportunity_id for x in person.sends):
            f = person.resume  # (only a create carries it: Lever has it once they are made, and its bytes go)
            resume = (uploads.safe_name(f), uploads.read(r, person.id, f), f["content_type"])
        for send in [] if follow_ups_only else person.sends:
            if person.withdrawn and not send.opportunity_id:  # consent withdrawn: only a create in doubt is looked
                if send.inflight_at:  # for (to tell Lever), nothing is sent
                    _reconcile(delivery, fence, person, send, lever)
                continue
            if person.purged:  # Lever deleted them, or retention's time came: nothing more of them is sent
                continue
            if not send.opportunity_id and not (send.inflight_at and _reconcile(delivery, fence, person, send, lever)):
                _stop_if_wished(r, person)

                def mark(m: sender.Mark, send: Send = send) -> Callable[[redis.client.Pipeline], None]:
                    send.inflight_at, send.settle_until, send.marked = m.at, m.settle_until, True
                    send.first_sent_at = send.first_sent_at or m.at
                    return save

                body = opportunity_body(s, person, send)
                sending.on(send, "create")
                made = fence.send(
                    lever,
                    s.reconcile_settle_s,
                    mark,
                    partial(lever.create_opportunity, body, perform_as=performer, resume=resume),
                )
                sending.send = None
                _record_answer(fence, person, send, "inflight_at", partial(_created, made=made, sent_tags=body["tags"]))
                people.log(
                    r, person.id, "create", 201, "opportunity created" + (" for a posting" if send.posting else "")
                )
            text = note_text(person)
            if text and not send.note_done and not person.withdrawn:
                unmarked = None if send.note_marked else _sent_before_markers(text, performer)
                if send.note_inflight_at and _note_arrived(
                    delivery, fence, person, send, lever, _NOTE, unmarked=unmarked
                ):
                    continue

                def mark_note(m: sender.Mark, send: Send = send) -> Callable[[redis.client.Pipeline], None]:
                    send.note_inflight_at, send.note_settle_until, send.note_marked = m.at, m.settle_until, True
                    return save

                _stop_if_wished(r, person)
                value = f"{text}\n\n{marker(s, person, send)}"
                sending.on(send, "note")
                fence.send(
                    lever,
                    s.reconcile_settle_s,
                    mark_note,
                    partial(lever.create_note, send.opportunity_id, value, perform_as=performer),
                )
                sending.send = None
                _record_answer(fence, person, send, "note_inflight_at", _noted)
                people.log(r, person.id, "note", 201, "note added")
        for send in person.sends:
            if _due(s, person, send):
                _follow_up(delivery, person, send, fence, lever, performer, sending)
    except RateLimitWait as e:
        return _retry_at(fence, person, time.time() + max(e.wait_s, 0.5), "waiting for a rate-limit slot", waiting)
    except FileMissing:
        return _needs_attention(fence, person, "the resume is no longer in Redis: ask the person to send it again")
    except sender.Unreplicated as e:
        # The mark may be on the primary alone: a failover now would forget it, so the send does not leave yet.
        sending.not_sent(fence, person)
        return _retry_at(fence, person, time.time() + sender.unreplicated_retry_s(r), f"not sent yet: {e}", waiting)
    except LockError:
        # Our lease ran out (a stall longer than JOBSITE_DELIVERY_LEASE_S) and another worker may hold it: nothing
        # more is sent. (A mark this attempt recorded stays: the lease holder reconciles it, never sends blindly.)
        return Result(Outcome.SKIPPED)
    except performers.NoPerformer as e:
        return _needs_attention(fence, person, str(e))
    except _Wished:
        return _retry_at(
            fence, person, time.time(), "a withdrawal or deletion asked meanwhile is written in first", waiting
        )
    except _Unlisted as e:
        return _needs_attention(
            fence,
            person,
            "consent withdrawn, but a create whose outcome is unknown may be in Lever "
            "and the API key may not list opportunities: look in Lever for an opportunity with a "
            f"link ending in {e.mark}; if there is one, tag it consent withdrawn and anonymise it",
        )
    except _Settling as e:
        return _retry_at(
            fence, person, time.time() + e.wait_s, "Lever may still be creating it: looking again soon", waiting
        )
    except LeverError as e:
        verdict = outcomes.judge(e)  # the one policy for Lever's answers
        sending.failed(fence, person, verdict)
        people.log(r, person.id, "send", verdict.status if verdict.status is not None else "no answer", verdict.message)
        decision = sender.decide(r, verdict, sending.work)
        act = {  # what each of the policy's actions is for a person
            sender.Action.CLOSE_GATE: lambda: _close_gate(delivery, fence, person, decision, verdict.status, waiting),
            sender.Action.WAIT: lambda: _retry_at(
                fence, person, time.time() + max(verdict.wait_s, 0.5), verdict.why, waiting
            ),
            sender.Action.NEEDS_ATTENTION: lambda: _needs_attention(fence, person, verdict.why),
            sender.Action.RETRY: lambda: _retry(delivery, fence, person, verdict.why, waiting),
        }
        return act[decision.action]()
    if person.withdrawn:
        _withdrawn_done(fence, person)
        return Result(Outcome.SKIPPED)
    if follow_ups_only:
        person.last_error = ""
        _told(r, person.id, lambda pipe: people.save(pipe, person, before), fence=fence)
        return Result(Outcome.SKIPPED)
    person.delivered_at, person.last_error = person.delivered_at or time.time(), ""
    if person.purged:  # Lever deleted them: a create in doubt is not looked for, and the address kept for it goes
        person.email = ""

    def delivered(pipe: redis.client.Pipeline) -> None:
        people.save(pipe, person, Standing.DELIVERED)
        uploads.remove(pipe, person.id)  # Lever has the resume now

    _told(r, person.id, delivered, fence=fence)
    if first_delivery:
        metrics.incr(r, "jobsite_sourced_total", outcome="delivered", kind=person.kind.value)
        log.info("sourced person %s delivered (%d opportunities)", person.id[:8], len(person.sends))
    return Result(Outcome.DELIVERED)


def _record_answer(fence: Fence, person: Person, send: Send, mark: str, answered: Callable[[Send], None]) -> None:
    """Record Lever's answer to a send that must not be made twice (a create, a note), as `answered` sets it on the
    send: while the lease is ours, as everything an attempt writes. Paused past the lease after Lever's answer, the
    attempt still writes it if the person's record still carries this send's mark (people.if_marked: nothing has
    moved it on since), then stops (LockError): "Lever has it" is true whoever holds the lease now, and dropped, a
    key that may not list opportunities or notes could only send it again."""
    at = getattr(send, mark)
    answered(send)
    try:
        fence.write(lambda pipe: people.save(pipe, person))
    except LockError:
        place = next(i for i, x in enumerate(person.sends) if x is send)
        people.if_marked(fence.r, person.id, place, mark, at, answered)
        raise


def _created(send: Send, *, made: dict[str, Any], sent_tags: list[str]) -> None:
    send.opportunity_id, send.contact_id = str(made["id"]), str(made.get("contact") or "")
    send.tags, send.inflight_at = list(sent_tags), 0.0


def _noted(send: Send) -> None:
    send.note_done, send.note_inflight_at = True, 0.0


def _withdrawal_noted(send: Send) -> None:
    send.withdrawn_noted, send.withdrawn_note_inflight_at = True, 0.0


def _told(
    r: redis.Redis,
    person_id: str,
    write: Callable[[redis.client.Pipeline], None] | None = None,
    *,
    fence: Fence | None = None,
) -> None:
    """Take the person out of CHANGED (Lever has been told) unless a wish is waiting, with `write` in the same
    transaction: the wish is watched, so one written meanwhile keeps them in CHANGED. With the attempt's `fence`,
    only while its lease is ours (sender.hold): raises LockError."""
    with r.pipeline() as pipe:
        while True:
            try:
                if fence is not None:
                    sender.hold(pipe, fence.lock)
                pipe.watch(people.WISH.format(person_id))
                told = not pipe.exists(people.WISH.format(person_id))
                pipe.multi()
                if write is not None:
                    write(pipe)
                if told:
                    pipe.zrem(people.CHANGED, person_id)
                pipe.execute()
                return
            except redis.WatchError:
                continue


WITHDRAWN_MARK = "/withdrawn"  # after the send's marker: the withdrawal's note, told apart from the capture's


def withdrawn_tag(settings: Settings) -> str:
    """The company-prefixed tag that tells recruiters in Lever the person withdrew consent."""
    return f"{settings.tag_prefix} consent withdrawn"


def withdrawn_note(settings: Settings, person: Person, send: Send) -> str:
    """The note on each of the person's opportunities when they withdraw consent (for recruiters, in Lever), with
    its marker as its last line."""
    day = datetime.fromtimestamp(person.changed_at or time.time(), UTC).strftime("%Y-%m-%d")
    return (
        f"Consent withdrawn: on {day} this person withdrew their consent on the careers site and asked to be "
        "deleted. The site deleted its copy of their details and will send nothing more about them; please "
        f"remove or anonymise them in Lever as your policy requires.\n\n{marker(settings, person, send)}"
        f"{WITHDRAWN_MARK}"
    )


def _follow_ups_due(settings: Settings, person: Person) -> bool:
    return any(_due(settings, person, send) for send in person.sends)


def _due(settings: Settings, person: Person, send: Send) -> bool:
    """Whether Lever is still to be told of the person's change on this send's opportunity."""
    if not send.opportunity_id:
        return False
    if person.withdrawn:
        return not (send.withdrawn_tagged and send.withdrawn_noted)
    return send.tags is not None and send.tags != tags(settings, person)


def _follow_up(
    delivery: Delivery, person: Person, send: Send, fence: Fence, lever: LeverClient, performer: str, sending: _Sending
) -> None:
    """Tell Lever what the person changed, on one opportunity, each call through the fence and recorded as it
    goes: consent withdrawn (the tag, then the note, reconciled by its marker), or their interests (the tags that
    went removed, the new ones added; setting tags twice changes nothing, so one in doubt is sent again)."""
    r, s = delivery.redis, delivery.settings

    def save(pipe: redis.client.Pipeline) -> None:
        people.save(pipe, person)

    def mark(m: sender.Mark) -> Callable[[redis.client.Pipeline], None]:
        send.change_inflight_at = m.at
        return save

    if person.withdrawn:
        if not send.withdrawn_tagged:
            sending.on(send, "change")
            fence.send(
                lever, s.reconcile_settle_s, mark, partial(lever.add_tags, send.opportunity_id, [withdrawn_tag(s)])
            )
            send.withdrawn_tagged, send.change_inflight_at, sending.send = True, 0.0, None
            fence.write(save)
            people.log(r, person.id, "withdrawn", 200, "tagged in Lever: consent withdrawn")
        if not send.withdrawn_noted and not (
            send.withdrawn_note_inflight_at
            and _note_arrived(delivery, fence, person, send, lever, _WITHDRAWN_NOTE, suffix=WITHDRAWN_MARK)
        ):

            def mark_note(m: sender.Mark) -> Callable[[redis.client.Pipeline], None]:
                send.withdrawn_note_inflight_at, send.withdrawn_note_settle_until = m.at, m.settle_until
                return save

            sending.on(send, "withdrawn_note")
            fence.send(
                lever,
                s.reconcile_settle_s,
                mark_note,
                partial(lever.create_note, send.opportunity_id, withdrawn_note(s, person, send), perform_as=performer),
            )
            sending.send = None
            _record_answer(fence, person, send, "withdrawn_note_inflight_at", _withdrawal_noted)
            people.log(r, person.id, "withdrawn", 201, "note added in Lever: consent withdrawn")
        return
    wanted, current = tags(s, person), list(send.tags or [])
    gone, new = [t for t in current if t not in wanted], [t for t in wanted if t not in current]
    if gone:
        sending.on(send, "change")
        fence.send(lever, s.reconcile_settle_s, mark, partial(lever.remove_tags, send.opportunity_id, gone))
        send.tags, send.change_inflight_at, sending.send = [t for t in current if t not in gone], 0.0, None
        fence.write(save)
    if new:
        sending.on(send, "change")
        fence.send(lever, s.reconcile_settle_s, mark, partial(lever.add_tags, send.opportunity_id, new))
        sending.send = None
    send.tags, send.change_inflight_at = wanted, 0.0
    fence.write(save)
    people.log(r, person.id, "tags", 200, f"interests changed: {len(gone)} tag(s) removed, {len(new)} added")


class _Wished(Exception):
    """Consent was withdrawn, or the person is to be purged, since this delivery took its wishes: nothing more of
    theirs is sent before the next holder writes the wish in."""


def _stop_if_wished(r: redis.Redis, person: Person) -> None:
    """Raise _Wished if a withdrawal or a purge waits as the person's wish (checked before each create and note)."""
    asked = people.wished(r, person.id)
    if asked.get("withdrawn") or asked.get("purge"):
        raise _Wished()


class _Unlisted(Exception):
    """Consent withdrawn while a create's outcome is unknown, and the key may not list opportunities: whether Lever
    has the person is for a recruiter to look (for the opportunity whose link ends with `mark`)."""

    def __init__(self, mark: str):
        super().__init__(mark)
        self.mark = mark


class _Settling(Exception):
    """Lever does not list it yet, but an answer-less send may still be processing: look again in `wait_s`."""

    def __init__(self, wait_s: float):
        super().__init__(wait_s)
        self.wait_s = wait_s


def _reconcile(delivery: Delivery, fence: Fence, person: Person, send: Send, lever: LeverClient) -> bool:
    """After a create whose outcome is unknown: did Lever make it? Only an opportunity carrying this send's marker is
    it (List opportunities by the person's email, no time window: no worker's clock decides). Records it and
    returns True if so. "Not found" is trusted only once the settle time has passed (raises _Settling before); then
    the mark is cleared and it is sent again."""
    r, s = delivery.redis, delivery.settings
    taken = {x.opportunity_id for x in person.sends if x.opportunity_id}
    filters: dict[str, Any] = {"email": person.email}  # no time window: no worker's clock decides
    if not send.marked:  # sent by a release before markers: looked for as it did
        filters.update(tag=tags(s, person)[0], created_at_start=int(send.first_sent_at * 1000) - LEGACY_MARGIN_MS)
        if send.posting:
            filters["posting_id"] = send.posting
    try:
        listed = lever.list_opportunities(**filters)
    except LeverError as e:  # the key may not list opportunities: re-send, as applications do (it may duplicate)
        if sender.reading(e) != sender.Action.DO_WITHOUT:
            raise
        if person.withdrawn:  # nothing is sent again, so "not found" would be a guess: Lever may have them
            raise _Unlisted(_mark(person, send)) from e
        log.warning(
            "the Lever API key may not list opportunities: a sourced opportunity whose outcome is unknown "
            "is created again, which can duplicate it"
        )
        found = []
    else:
        ours = _mark(person, send)
        found = [
            o
            for o in listed
            if o.get("id") not in taken
            and (any(str(x).endswith(ours) for x in o.get("links") or []) or not send.marked)
        ]
        settle = sender.settling_s(r, send.settle_until if send.marked else send.inflight_at + s.reconcile_settle_s)
        if not found and settle > 0:
            raise _Settling(settle)
    if found:
        send.opportunity_id, send.contact_id = str(found[0]["id"]), str(found[0].get("contact") or "")
        send.inflight_at = 0.0
        fence.write(lambda pipe: people.save(pipe, person))
        people.log(r, person.id, "reconcile", 200, "Lever already had this opportunity")
        return True
    send.inflight_at = 0.0
    fence.write(lambda pipe: people.save(pipe, person))
    people.log(r, person.id, "reconcile", 200, "Lever does not have it: sending again")
    return False


@dataclass(frozen=True)
class _NoteFields:
    """Where a send records one of its notes: done, in flight (the mark's time) and its settle time."""

    done: str
    inflight_at: str
    settle_until: str


_NOTE = _NoteFields("note_done", *_MARKS["note"])  # the capture's note
_WITHDRAWN_NOTE = _NoteFields("withdrawn_noted", *_MARKS["withdrawn_note"])


def _sent_before_markers(text: str, performer: str) -> Callable[[dict[str, Any]], bool]:
    """How a release before markers recognised its note: the same text, by the same user (or by none)."""
    return lambda note: note.get("text") == text and note.get("user") in (None, performer)


def _note_arrived(
    delivery: Delivery,
    fence: Fence,
    person: Person,
    send: Send,
    lever: LeverClient,
    fields: _NoteFields,
    *,
    suffix: str = "",
    unmarked: Callable[[dict[str, Any]], bool] | None = None,
) -> bool:
    """After a note whose outcome is unknown: is it on the opportunity already? Only a note ending with this send's
    marker (+ `suffix`, which tells the withdrawal's note apart from the capture's) is it; `unmarked`, for a note a
    release before markers sent, says which of the notes is it instead. Records it in `fields` and returns True if
    so. "Not found" is trusted only once the settle time has passed (raises _Settling before)."""
    try:
        notes = lever.list_notes(send.opportunity_id)
    except LeverError as e:  # the key may not read notes: add it again (it may duplicate)
        if sender.reading(e) != sender.Action.DO_WITHOUT:
            raise
        notes = []
    else:
        ours = _mark(person, send) + suffix
        if any(
            unmarked(n) if unmarked is not None else str(n.get("text") or "").rstrip().endswith(ours) for n in notes
        ):
            setattr(send, fields.done, True)
            setattr(send, fields.inflight_at, 0.0)
            fence.write(lambda pipe: people.save(pipe, person))
            return True
        settle = sender.settling_s(delivery.redis, getattr(send, fields.settle_until))
        if settle > 0:
            raise _Settling(settle)
    setattr(send, fields.inflight_at, 0.0)
    return False


def _retry_at(fence: Fence, person: Person, at: float, why: str, standing: Standing = Standing.WAITING) -> Result:
    person.last_error = why
    fence.write(lambda pipe: people.save(pipe, person, standing))
    return Result(Outcome.RETRY, retry_at=at)


def _retry(delivery: Delivery, fence: Fence, person: Person, why: str, standing: Standing = Standing.WAITING) -> Result:
    s = delivery.settings
    if time.time() - max(person.created_at, person.changed_at) > s.retry_window_s:
        return _needs_attention(fence, person, f"Lever kept failing for {s.retry_window_s // 3600} h: {why}")
    return _retry_at(fence, person, time.time() + sender.retry_delay(person.attempts - 1), why, standing)


def _close_gate(
    delivery: Delivery,
    fence: Fence,
    person: Person,
    decision: sender.Decision,
    status: int | None,
    standing: Standing = Standing.WAITING,
) -> Result:
    """Lever cannot take anything now: close the gate (as an application's 503 would) and wait behind it."""
    r, s = delivery.redis, delivery.settings
    cause, why = decision.cause, decision.why
    assert cause is not None  # noqa: S101 (always set with CLOSE_GATE; narrows the type)
    people.log(r, person.id, "send", status, why)
    closed = gate.close(r, cause, why)
    person.last_error = why

    def parked(pipe: redis.client.Pipeline) -> None:
        pipe.zadd(people.PARKED, {person.id: person.created_at})  # (upkeep releases it whenever the gate is open)
        people.save(pipe, person, standing)

    fence.write(parked)
    if closed:
        log.warning("delivery paused, probing Lever with backoff: %s", why)
    return Result(Outcome.PARKED, gate_closed=closed, probe_delay_s=gate.probe_delay(0, s.probe_cap_s))


def _needs_attention(fence: Fence, person: Person, why: str) -> Result:
    person.last_error = why
    fence.write(lambda pipe: people.save(pipe, person, Standing.NEEDS_ATTENTION))
    metrics.incr(fence.r, "jobsite_sourced_total", outcome="needs_attention", kind=person.kind.value)
    log.warning("sourced person %s needs attention (the console says why)", person.id[:8])
    return Result(Outcome.NEEDS_ATTENTION)


def release_parked(r: redis.Redis) -> list[str]:
    """The gate is open: the people parked behind it, oldest first, to be queued."""
    return gate.release(r, people.PARKED)


def lost(delivery: Delivery) -> list[str]:
    """People whose delivery, or the telling of their change to Lever, was interrupted: untouched for longer than a
    lease, no worker holding them, not parked nor waiting for a person, and either left mid-delivery (a worker
    died) or waiting without a job to run (it vanished)."""
    r = delivery.redis
    parked = {x.decode() for x in r.zrange(people.PARKED, 0, -1)}
    now, lease_s = time.time(), delivery.settings.delivery_lease_s
    changed = [x.decode() for x in r.zrange(people.CHANGED, 0, -1)]
    waiting = [
        p
        for p in people.load_many(r, list(dict.fromkeys(people.pending(r) + changed)))
        if p.id not in parked and (p.standing != Standing.NEEDS_ATTENTION or r.exists(people.WISH.format(p.id)))
    ]
    held = [
        sender.Held(LEASE.format(p.id), p.standing == Standing.DELIVERING, now - p.updated_at, job)
        for p, job in zip(waiting, people.jobs_of(r, [p.id for p in waiting]), strict=True)
    ]
    return [p.id for p, gone in zip(waiting, sender.lost_many(r, held, lease_s), strict=True) if gone]

"""Once an item's lease has passed to another worker, the attempt that held it sends nothing more and writes nothing
of the item's record but one thing, whichever write it was about to make, on each of the paths below (the common ones
and those a fault takes: Lever failing, in maintenance, refusing, rate-limiting, an answer lost, consent withdrawn);
and the new holder finishes it, with Lever holding it once. The one thing: Lever's answer to a send (created, added,
applied), while the record still carries that send's mark, since it is true whoever holds the lease, and a key that
may not list what Lever holds could otherwise only send it again.

A worker stopped past its lease (a paused VM, a long GC; the SIGSTOP tests of test_sender.py) wakes with an old copy
of its item. Any write of that copy, not only a send, undoes what the lease's new holder did since: the SIGSTOP
tests found a delivered person whose record had lost their opportunity, which the next retry would have created
again. A test of one write proves one write, so these tests stop no process at a chosen line: they count the writes
an attempt makes to its record on each path, then run the path once per write, giving the lease to another worker
just before that write, and check the record is as that worker found it (sender.commit is what makes it so)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import pytest
import redis

from jobsite.delivery import deliverer
from jobsite.delivery.sender import Delivery, Outcome, Result
from jobsite.intake import accept
from jobsite.intake.forms import answers_from_lever_body, build_form, validate
from jobsite.keyspace.delivery_keys import LEASE as APPLICATION_LEASE
from jobsite.keyspace.sourcing_keys import LEASE as PERSON_LEASE
from jobsite.records import store
from jobsite.records.uploads import UploadedFile
from jobsite.services import Services
from jobsite.settings import Settings
from jobsite.sourcing import enrol, events, opportunities, people

from .helpers import Sandbox, file_posting, lever_body

ANOTHER_WORKER = b"the token of the worker that took the lease"


@dataclass
class Takeover:
    """Counts the writes of one item's record made through a flow's one writing function and, at the `at`-th (0:
    never), gives the item's lease to another worker just before it, keeping what the record and Lever then held."""

    r: redis.Redis
    sandbox: Sandbox
    lease_key: str
    snapshot: Callable[[], Any]
    answer_only: Callable[[Any, Any], bool]  # (before, after): after differs from before by Lever's answer alone
    at: int
    writes: int = 0
    before: Any = None
    requests: int = 0

    def wrap(self, write: Callable[..., Any], ours: Callable[[Any], bool]) -> Callable[..., Any]:
        def counted(pipe: Any, item: Any, *args: Any, **kwargs: Any) -> Any:
            if ours(item):
                self.writes += 1
                if self.writes == self.at:
                    self.before, self.requests = self.snapshot(), len(self.sandbox.state.requests)
                    self.r.set(self.lease_key, ANOTHER_WORKER, px=60_000)
            return write(pipe, item, *args, **kwargs)

        return counted

    def check(self, result: Result) -> None:
        """Nothing was sent to Lever since the lease passed on, and nothing written of the item but Lever's answer."""
        after = self.snapshot()
        assert len(self.sandbox.state.requests) == self.requests, f"write {self.at}: Lever was called after it"
        if after == self.before:
            assert result.outcome == Outcome.SKIPPED, f"write {self.at}: {result}"
        else:
            assert self.answer_only(self.before, after), (
                f"write {self.at} of the attempt landed after the lease passed on"
            )


@pytest.fixture
def svc(settings: Settings, sandbox: Sandbox) -> Services:
    # Fast pacing (Lever's limits are lifted in the sandbox too): these tests count writes, not slots. No settle
    # time: a new holder trusts "not found" at once (one path sets a settle time of its own).
    return Services(replace(settings, apply_rate_per_s=200.0, lever_rate_per_s=200.0, reconcile_settle_s=0.0))


def _fresh(r: redis.Redis, sandbox: Sandbox) -> None:
    r.flushall()
    sandbox.control("reset")
    sandbox.control("limits", mode="bucket", apply_per_s=1000, apply_burst=1000, per_s=1000, burst=1000)


# ---- applications -----------------------------------------------------------------------------------------------


def _application(svc: Services, sandbox: Sandbox) -> str:
    p = file_posting(sandbox)
    form = build_form(sandbox.state.questions[p["id"]])
    upload = {"resume": UploadedFile("cv.pdf", b"%PDF-1.7\n" + b"x" * 1000)}
    app = validate(form, answers_from_lever_body(form, lever_body(sandbox, p["id"])), upload, 2**20)
    return accept.submit(svc.intake, app, upload).receipt


def _application_snapshot(r: redis.Redis, receipt: str) -> Callable[[], Any]:
    return lambda: (
        r.hgetall(store.record_key(receipt)),
        {state: r.zscore(store.state_key(state), receipt) for state in store.State},
    )


def _application_answered(before: Any, after: Any) -> bool:
    """The record moved from a send in flight to delivered, and nothing else: Lever's answer to that send."""
    (was, _), (now, sets) = before, after
    return (
        float(was.get(b"inflight_at") or 0) > 0
        and now.get(b"state") == b"delivered"
        and bool(now.get(b"lever_application_id"))
        and [state for state, score in sets.items() if score is not None] == [store.State.DELIVERED]
    )


def _in_lever(sandbox: Sandbox) -> int:
    return len(sandbox.state.applications)


def _lost_answer(svc: Services, sandbox: Sandbox, receipt: str) -> None:
    sandbox.control("drop", path="/apply", count=1)  # Lever processes it; its answer never arrives
    assert deliverer.deliver(svc.delivery, receipt).outcome == Outcome.RETRY


def _marked_never_sent(settle_s: float) -> Callable[[Services, Sandbox, str], None]:
    def mark(svc: Services, sandbox: Sandbox, receipt: str) -> None:
        now = time.time()
        store.update(svc.redis, store.load(svc.redis, receipt), inflight_at=now - 1, settle_until=now + settle_s)

    return mark


def _fail(path: str, status: int) -> Callable[[Services, Sandbox, str], None]:
    return lambda svc, sandbox, receipt: sandbox.control("fail", path=path, status=status, count=1)


def _nothing(svc: Services, sandbox: Sandbox, item: str) -> None:
    pass


# (before the attempt, during it, whether the attempt delivers it)
APPLICATION_PATHS = {
    "delivered": (_nothing, _nothing, True),
    "Lever fails the apply (500)": (_nothing, _fail("/apply", 500), False),
    "Lever is in maintenance (503)": (_nothing, _fail("/apply", 503), False),
    "Lever refuses it (400)": (_nothing, _fail("/apply", 400), False),
    "Lever rate-limits it (429)": (_nothing, _fail("/apply", 429), False),
    "an answer lost: found in Lever": (_lost_answer, _nothing, True),
    "marked, never sent, settled: sent again": (_marked_never_sent(-1), _nothing, True),
    "marked, never sent, settling: looked for again later": (_marked_never_sent(60), _nothing, False),
}


def _application_delivered_once(r: redis.Redis, sandbox: Sandbox, receipt: str) -> None:
    assert store.load(r, receipt).state == store.State.DELIVERED
    assert _in_lever(sandbox) == 1, "the new holder sent it again, or not at all"


# ---- sourced people ---------------------------------------------------------------------------------------------


def _capture(svc: Services, sandbox: Sandbox) -> str:
    postings = [p["id"] for p in sandbox.public_postings()[:2]]
    fair = events.add(svc.redis, "Fair", "", postings)
    person = enrol.event_capture(
        {
            "name": "Grace Hopper",
            "email": "grace@example.com",
            "postings": postings,
            "note": "Compilers; wants a call",
            "rating": 4,
            "client_id": "c-0000001",
        },
        fair,
        "sam@acme.example",
    )
    return enrol.submit(svc.enrolment, person).person.id


def _person_snapshot(r: redis.Redis, person_id: str) -> Callable[[], Any]:
    return lambda: (
        r.get(people.KEY.format(person_id)),
        r.get(people.WISH.format(person_id)),
        {key: r.zscore(key, person_id) for key in (people.PENDING, people.DELIVERED, people.CHANGED, people.PARKED)},
    )


# A send's fields that Lever's answer to it sets (people.if_marked), and the marks that must have been on it.
ANSWERS = {
    "inflight_at": ("opportunity_id", "contact_id", "tags"),
    "note_inflight_at": ("note_done",),
    "withdrawn_note_inflight_at": ("withdrawn_noted",),
}


def _person_answered(before: Any, after: Any) -> bool:
    """One send moved from in flight to answered (its opportunity, its note), and nothing else of the person."""
    (was_json, was_wish, was_sets), (now_json, now_wish, now_sets) = before, after
    if (was_wish, was_sets) != (now_wish, now_sets):
        return False
    was, now = json.loads(was_json), json.loads(now_json)
    was_sends, now_sends = was.pop("sends"), now.pop("sends")
    was.pop("updated_at"), now.pop("updated_at")
    if was != now or len(was_sends) != len(now_sends):
        return False
    changed = [(a, b) for a, b in zip(was_sends, now_sends, strict=True) if a != b]
    if len(changed) != 1:
        return False
    (a, b) = changed[0]
    for mark, fields in ANSWERS.items():
        if a[mark] and not b[mark]:
            different = {k for k in a if a[k] != b[k]}
            return different <= {mark, *fields} and all(b[f] for f in fields if f != "contact_id")
    return False


def _person_lost_answer(path: str) -> Callable[[Services, Sandbox, str], None]:
    def lose(svc: Services, sandbox: Sandbox, person_id: str) -> None:
        sandbox.control("drop", path=path, count=1)
        assert opportunities.deliver(svc.delivery, person_id).outcome == Outcome.RETRY

    return lose


def _withdrawing(svc: Services, sandbox: Sandbox, person_id: str) -> None:
    assert opportunities.deliver(svc.delivery, person_id).outcome == Outcome.DELIVERED
    people.wish(svc.redis, person_id, withdrawn=True)


PERSON_PATHS = {
    "delivered: two opportunities, each with its note": (_nothing, _nothing, True),
    "Lever fails the create (500)": (_nothing, _fail("/v1/opportunities", 500), False),
    "Lever is in maintenance (503)": (_nothing, _fail("/v1/opportunities", 503), False),
    "Lever refuses it (400)": (_nothing, _fail("/v1/opportunities", 400), False),
    "Lever rate-limits the note (429)": (_nothing, _fail("/notes", 429), False),
    "a create's answer lost: found in Lever": (_person_lost_answer("/v1/opportunities"), _nothing, True),
    "a note's answer lost: found in Lever": (_person_lost_answer("/notes"), _nothing, True),
    "consent withdrawn after delivery: Lever told": (_withdrawing, _nothing, False),
}


def _person_delivered_once(r: redis.Redis, sandbox: Sandbox, person_id: str) -> None:
    person = people.load(r, person_id)
    assert person is not None
    assert person.standing == people.Standing.DELIVERED
    made = sandbox.state.opportunities
    assert len(made) == 2, "the new holder created an opportunity again, or not at all"
    assert sorted(s.opportunity_id for s in person.sends) == sorted(o["id"] for o in made)
    assert len([n for n in sandbox.state.notes if n["opportunity"] in {o["id"] for o in made}]) == 2


# ---- every write of every path, in both flows -------------------------------------------------------------------

Step = Callable[[Services, Sandbox, str], None]


@dataclass(frozen=True)
class Flow:
    """What the test below needs of one flow on the sender."""

    make: Callable[[Services, Sandbox], str]  # a fresh item: its id
    lease: str  # its lease's key, for the item's id
    snapshot: Callable[[redis.Redis, str], Callable[[], Any]]  # what is kept of its record
    deliver: Callable[[Delivery, str], Result]
    written_through: tuple[Any, str]  # the one function every write of its record goes through
    ours: Callable[[str], Callable[[Any], bool]]  # whether that function's argument is the item
    answer_only: Callable[[Any, Any], bool]  # (before, after) differ by Lever's answer to the item's send alone
    delivered_once: Callable[[redis.Redis, Sandbox, str], None]
    paths: dict[str, tuple[Step, Step, bool]]  # before the attempt, during it, whether it delivers


FLOWS = {
    "application": Flow(
        _application,
        APPLICATION_LEASE,
        _application_snapshot,
        deliverer.deliver,
        (store, "update"),
        lambda receipt: lambda record: record.receipt == receipt,
        _application_answered,
        _application_delivered_once,
        APPLICATION_PATHS,
    ),
    "sourced person": Flow(
        _capture,
        PERSON_LEASE,
        _person_snapshot,
        opportunities.deliver,
        (people, "save"),
        lambda person_id: lambda person: person.id == person_id,
        _person_answered,
        _person_delivered_once,
        PERSON_PATHS,
    ),
}


@pytest.mark.parametrize(("flow", "path"), [(f, p) for f, flow in FLOWS.items() for p in flow.paths], ids=lambda x: x)
def test_an_attempt_writes_nothing_once_its_lease_passed_on(
    flow: str, path: str, svc: Services, r: redis.Redis, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run the path once to count its writes, then once per write with the lease taken just before it; where the
    path delivers, the new holder then delivers the item, once."""
    it = FLOWS[flow]
    before, during, delivers = it.paths[path]
    module, name = it.written_through

    def run(at: int) -> Takeover:
        _fresh(r, sandbox)
        item = it.make(svc, sandbox)
        before(svc, sandbox, item)
        during(svc, sandbox, item)
        takeover = Takeover(r, sandbox, it.lease.format(item), it.snapshot(r, item), it.answer_only, at)
        with monkeypatch.context() as m:
            m.setattr(module, name, takeover.wrap(getattr(module, name), it.ours(item)))
            result = it.deliver(svc.delivery, item)
        if at:
            takeover.check(result)
            if delivers:
                r.delete(it.lease.format(item))  # the new holder's turn
                sandbox.control("fail", clear=True)
                for _ in range(3):
                    if it.deliver(svc.delivery, item).outcome == Outcome.DELIVERED:
                        break
                it.delivered_once(r, sandbox, item)
        return takeover

    writes = run(0).writes
    assert writes >= 2, "the path wrote less than it must: it is not the path meant"
    for at in range(1, writes + 1):
        run(at)


# ---- a copy read before the lease, a connection dropped at a write ----------------------------------------------


@pytest.mark.parametrize("with_file", [True, False], ids=["with a resume", "without a file"])
def test_an_application_read_before_its_lease_was_taken_is_read_again_under_it(
    with_file: bool, svc: Services, r: redis.Redis, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker stopped between its first look at the record and taking the lease, while another delivered the
    application and let the lease go, took the free lease (its own: every check of it passes) with its old copy: no
    in-flight mark, not delivered. It applied again, or (with a resume, whose copy in Redis had gone with the
    delivery) wrote "needs attention" over "delivered". Found by a review of the fencing change."""
    from .helpers import submit_one

    receipt = _application(svc, sandbox) if with_file else submit_one(svc, sandbox)
    take = deliverer._lease
    other: list[Outcome] = []

    def stopped_here(r_: redis.Redis, receipt_: str, ttl_s: int) -> Any:
        monkeypatch.setattr(deliverer, "_lease", take)  # once: the other worker takes its lease as usual
        other.append(deliverer.deliver(svc.delivery, receipt_).outcome)  # and delivers it meanwhile
        return take(r_, receipt_, ttl_s)

    monkeypatch.setattr(deliverer, "_lease", stopped_here)
    assert deliverer.deliver(svc.delivery, receipt).outcome == Outcome.SKIPPED
    assert other == [Outcome.DELIVERED]
    assert store.load(r, receipt).state == store.State.DELIVERED
    assert _in_lever(sandbox) == 1


@pytest.mark.parametrize("at", [store.State.DELIVERING, store.State.DELIVERED], ids=lambda s: f"at {s.value}")
def test_a_connection_dropped_at_a_write_s_exec_leaves_one_state_and_counts_once(
    at: store.State, svc: Services, r: redis.Redis, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """redis-py raises WatchError when the connection drops while keys are watched, EXEC included, whether or not
    the server applied it; sender.commit then makes the write again while the lease is still ours. The record had
    already moved when the write was first queued, so the second try moved it between no sets (the hash said
    delivered, the sets delivering: recovery queued a delivered application at every upkeep) and counted the
    attempt twice. Found by a review of the fencing change."""
    receipt = _application(svc, sandbox)
    update, dropped = store.update, []

    def dropping(target: Any, record: Any, state: Any = None, **changes: Any) -> Any:
        out = update(target, record, state, **changes)
        if not dropped and isinstance(target, redis.client.Pipeline) and state == at:
            dropped.append(state)
            svc.redis.client_kill_filter(_type="normal", skipme=True)  # before EXEC reaches the server
        return out

    monkeypatch.setattr(store, "update", dropping)
    assert deliverer.deliver(svc.delivery, receipt).outcome == Outcome.DELIVERED
    monkeypatch.undo()
    assert dropped == [at]
    record = store.load(r, receipt)
    assert record.attempts == 1
    assert {s for s in store.State if r.zscore(store.state_key(s), receipt) is not None} == {store.State.DELIVERED}
    assert _in_lever(sandbox) == 1


def test_lever_s_answer_is_kept_when_the_lease_ran_out_before_it_was_written(
    svc: Services, r: redis.Redis, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lever answered the apply and the create, then the worker paused past its lease, and nobody took it. Fenced
    alone, "delivered" and the opportunity were dropped; with a key that may not list opportunities the next holder
    could only send them again: two copies in Lever. Found by a second review of the fencing change."""
    receipt = _application(svc, sandbox)
    person_id = _capture(svc, sandbox)
    deliverer.note_can_reconcile(r, False)  # the key may not list opportunities
    update, save = store.update, people.save

    def paused_before_delivered(pipe: Any, record: Any, state: Any = None, **changes: Any) -> Any:
        if state == store.State.DELIVERED:
            r.delete(APPLICATION_LEASE.format(receipt))  # ran out while the worker was paused; nobody holds it
        return update(pipe, record, state, **changes)

    def paused_before_the_opportunity(pipe: Any, person: Any, standing: Any = None) -> Any:
        if any(s.opportunity_id for s in person.sends) and r.exists(PERSON_LEASE.format(person.id)):
            r.delete(PERSON_LEASE.format(person.id))
        return save(pipe, person, standing)

    monkeypatch.setattr(store, "update", paused_before_delivered)
    assert deliverer.deliver(svc.delivery, receipt).outcome == Outcome.DELIVERED  # recorded all the same
    monkeypatch.setattr(people, "save", paused_before_the_opportunity)
    assert opportunities.deliver(svc.delivery, person_id).outcome == Outcome.SKIPPED  # stopped after it
    monkeypatch.undo()
    assert store.load(r, receipt).state == store.State.DELIVERED
    sandbox.control("fail", path="/v1/opportunities", endpoint="opportunities.list", status=403, count=5)  # nor list
    assert opportunities.deliver(svc.delivery, person_id).outcome == Outcome.DELIVERED
    assert _in_lever(sandbox) == 1
    assert len(sandbox.state.opportunities) == 3  # the application's, and the person's two, each once


def test_a_release_writes_nothing_over_a_delivery_made_between_its_read_and_its_write(
    svc: Services, r: redis.Redis, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A recruiter's retry (jobs.release) read an application while its job was delivering it, then wrote "queued"
    over the delivery that landed meanwhile, and the job it queued applied again. Found by a second review of the
    fencing change (older than it)."""
    from jobsite.delivery import jobs

    from .helpers import submit_one

    receipt = submit_one(svc, sandbox)
    load_many = store.load_many

    def read_then_delivered(r_: redis.Redis, ids: list[str]) -> Any:
        found = load_many(r_, ids)
        monkeypatch.setattr(store, "load_many", load_many)  # once: the read that follows sees the delivery
        assert deliverer.deliver(svc.delivery, receipt).outcome == Outcome.DELIVERED  # the running job finishes
        return found

    monkeypatch.setattr(store, "load_many", read_then_delivered)
    jobs.release(r, [receipt], retry_attention=True)
    assert store.load(r, receipt).state == store.State.DELIVERED
    assert deliverer.deliver(svc.delivery, receipt).outcome == Outcome.SKIPPED
    assert _in_lever(sandbox) == 1


def test_a_delivered_write_applied_before_its_connection_dropped_is_reported_delivered(
    svc: Services, r: redis.Redis, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The EXEC of "delivered" was applied but its answer lost with the connection, and the lease passed on before
    the write was tried again: the record said delivered, the attempt SKIPPED, so the task layer never queued its
    follow-up tagging. Named by the second review of the fencing change."""
    receipt = _application(svc, sandbox)
    update, applied = store.update, []

    def applied_then_dropped(target: Any, record: Any, state: Any = None, **changes: Any) -> Any:
        out = update(target, record, state, **changes)
        if not applied and isinstance(target, redis.client.Pipeline) and state == store.State.DELIVERED:
            applied.append(True)
            update(r, store.load(r, receipt), state, **changes)  # the EXEC, applied by the server
            r.delete(APPLICATION_LEASE.format(receipt))  # the lease runs out
            svc.redis.client_kill_filter(_type="normal", skipme=True)  # and the answer is lost
        return out

    monkeypatch.setattr(store, "update", applied_then_dropped)
    assert deliverer.deliver(svc.delivery, receipt).outcome == Outcome.DELIVERED
    monkeypatch.undo()
    assert applied
    assert store.load(r, receipt).state == store.State.DELIVERED
    assert _in_lever(sandbox) == 1

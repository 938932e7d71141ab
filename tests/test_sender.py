"""The exactly-once sender under the faults issue 26 found in sourcing and in reconcile (two recruiters and a 500, a
note processed after the read timeout, a worker's clock ahead or stepping) and issue 27's stalled workers: real
Redis, the sandbox over HTTP, real worker processes where a worker (or its clock) is what fails."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import redis
import requests

from jobsite.keyspace.sourcing_keys import LEASE
from jobsite.services import Services
from jobsite.settings import Settings
from jobsite.sourcing import enrol, events, opportunities, people
from jobsite.sourcing.people import Standing

from .helpers import Sandbox, Workers, clock_env, wait_for, worker_env


def held(sandbox: Sandbox) -> list[dict[str, Any]]:
    return list(requests.get(f"{sandbox.url}/_sandbox/opportunities", timeout=5).json()["data"])


def capture(
    svc: Services,
    event: events.Event,
    postings: list[str],
    recruiter: str,
    client_id: str,
    note: str = "Compilers; wants a call",
) -> people.Person:
    person = enrol.event_capture(
        {
            "name": "Grace Hopper",
            "email": "grace@example.com",
            "postings": postings,
            "note": note,
            "rating": 4,
            "client_id": client_id,
        },
        event,
        recruiter,
    )
    return enrol.submit(svc.enrolment, person).person


def test_two_recruiters_capture_one_person_and_the_second_meets_an_unprocessed_500(
    settings: Settings, r: redis.Redis, sandbox: Sandbox
) -> None:
    """Issue 26, 4: the same person for the same posting, captured by two recruiters; the second's create meets a
    500 Lever did not process. Reconcile must not take the first capture's opportunity for the second's: each
    capture is in Lever once, as its own opportunity."""
    svc = Services(settings)
    posting = sandbox.public_postings()[0]["id"]
    fair = events.add(r, "Fair", "", [posting])
    first = capture(svc, fair, [posting], "sam@acme.example", "c-0000001")
    assert opportunities.deliver(svc.delivery, first.id).outcome == opportunities.Outcome.DELIVERED
    second = capture(svc, fair, [posting], "hana@acme.example", "c-0000002", note="Met her again at the stand")
    sandbox.control("fail", path="/v1/opportunities", status=500, count=1)  # refused before it was processed
    assert opportunities.deliver(svc.delivery, second.id).outcome == opportunities.Outcome.RETRY
    assert opportunities.deliver(svc.delivery, second.id).outcome == opportunities.Outcome.DELIVERED
    made = held(sandbox)
    assert len(made) == 2
    a, b = people.load(r, first.id), people.load(r, second.id)
    assert a is not None
    assert b is not None
    assert a.sends[0].opportunity_id != b.sends[0].opportunity_id
    assert {a.sends[0].opportunity_id, b.sends[0].opportunity_id} == {o["id"] for o in made}
    notes = {n["opportunity"]: n["text"] for n in sandbox.received()["notes"]}
    assert notes[b.sends[0].opportunity_id].startswith("Met her again at the stand")
    assert notes[a.sends[0].opportunity_id].startswith("Compilers")


def test_a_note_processed_after_the_read_timeout_is_in_lever_once(
    settings: Settings, r: redis.Redis, sandbox: Sandbox
) -> None:
    """Issue 26, 3: Lever adds the note after the client gave up waiting (3 s against a 1 s read timeout). The
    retry finds nothing yet and must not add it again before the settle time; then it finds it by our marker."""
    svc = Services(replace(settings, lever_read_timeout_s=1.0, reconcile_settle_s=6.0))
    grace = capture(svc, events.add(r, "Fair", "", []), [], "sam@acme.example", "c-0000001")
    sandbox.control("latency", seconds=3, path="/notes")
    assert (
        opportunities.deliver(svc.delivery, grace.id).outcome == opportunities.Outcome.RETRY
    )  # timed out: outcome unknown
    sandbox.control("latency", seconds=0)  # Lever is fast again; the first note is still being processed
    early = opportunities.deliver(svc.delivery, grace.id)
    assert early.outcome == opportunities.Outcome.RETRY
    wait_for(lambda: sandbox.received()["notes"], timeout=30, what="Lever to add the first note")
    assert opportunities.deliver(svc.delivery, grace.id).outcome == opportunities.Outcome.DELIVERED
    assert len(sandbox.received()["notes"]) == 1
    assert sandbox.count("opportunities.create") == 1


def _stop_while(
    r: redis.Redis,
    sandbox: Sandbox,
    settings: Settings,
    workers: Workers,
    tmp_path: Path,
    stalled: Callable[[people.Person], bool],
    n: int,
) -> list[people.Person]:
    """Capture `n` people for one posting each; a worker paced slowly (one Lever call every 3.25 s, so that it
    spends its time waiting for slots) is SIGSTOPped (a paused VM, a long GC) once one person is `stalled` with
    slots ahead, past its lease; a second worker takes them up. The first is then woken and must send nothing."""
    svc = Services(settings)
    postings = [p["id"] for p in sandbox.public_postings()[:n]]
    fair = events.add(r, "Fair", "", postings)
    env = worker_env(
        settings, JOBSITE_LEVER_RATE_PER_S="0.4", JOBSITE_DELIVERY_LEASE_S="8", JOBSITE_RECONCILE_SETTLE_S="1"
    )
    first_log = tmp_path / "first.log"
    first = workers.start(env, log=first_log)
    ids = [
        enrol.submit(
            svc.enrolment,
            enrol.event_capture(
                {
                    "name": f"Person {i}",
                    "email": f"p{i}@example.com",
                    "postings": [posting],
                    "note": f"note {i}",
                    "client_id": f"c-000000{i}",
                },
                fair,
                "sam@acme.example",
            ),
        ).person.id
        for i, posting in enumerate(postings)
    ]

    def holding_a_stalled_lease() -> bool:
        return any(
            p.standing == Standing.DELIVERING and stalled(p) and r.exists(LEASE.format(p.id))
            for p in people.load_many(r, ids)
        )

    def waiting_for_a_slot() -> bool:
        """A slot a second or more ahead, and a person `stalled` whose lease is held: the worker is inside a delivery,
        waiting (a slot ahead alone may be one a job left when it rescheduled itself, the worker then idle: woken,
        it would have nothing to find gone)."""
        seconds, micros = r.time()
        ahead = r.zrangebyscore("ratelimit:lever:slots", seconds * 1000 + micros / 1000 + 1000, "+inf")
        return bool(ahead) and holding_a_stalled_lease()

    def stopped_holding_the_lease() -> bool:
        """Stop the worker (and the scheduler it forked) while it waits for a slot, holding a stalled person's lease.
        A job whose slot is too far away holds the lease a few milliseconds before it reschedules itself, so the
        worker may have let go between the look and the signal: then it goes on, and the next wait is tried."""
        wait_for(waiting_for_a_slot, timeout=60, interval=0.01, what="the worker to wait for a slot")
        os.killpg(first.pid, signal.SIGSTOP)
        if holding_a_stalled_lease():  # stopped, only this worker can hold it: it holds it
            return True
        os.killpg(first.pid, signal.SIGCONT)
        return False

    wait_for(stopped_holding_the_lease, timeout=120, interval=0, what="the worker stopped holding a lease")
    try:
        workers.start(env)
        wait_for(
            lambda: all(p.standing == Standing.DELIVERED for p in people.load_many(r, ids)),
            timeout=90,
            interval=0.1,
            what="everyone delivered by the second worker",
        )
    finally:
        os.killpg(first.pid, signal.SIGCONT)
    wait_for(
        lambda: first_log.exists() and "lease ran out" in first_log.read_text(),
        timeout=60,
        what="the woken worker to find its lease gone",
    )
    return people.load_many(r, ids)


@pytest.mark.slow
def test_a_worker_stopped_past_its_lease_while_creating_a_sourced_opportunity_sends_nothing_when_it_wakes(
    settings: Settings, r: redis.Redis, strict_lever: Sandbox, workers: Workers, tmp_path: Path
) -> None:
    """Issue 27: sourcing had no fence. Stopped while it waits for a create's slot, the woken worker must not create
    the opportunity the second worker has created since."""
    sandbox = strict_lever
    done = _stop_while(r, sandbox, settings, workers, tmp_path, lambda p: not p.sends[0].opportunity_id, 3)
    made = held(sandbox)
    assert sorted((o["emails"][0], o["posting"]) for o in made) == sorted(
        (p.email, p.sends[0].posting) for p in done
    )  # none twice
    assert {o["id"] for o in made} == {p.sends[0].opportunity_id for p in done}
    assert len(sandbox.received()["notes"]) == 3


@pytest.mark.slow
def test_a_worker_stopped_between_an_opportunity_and_its_note_adds_no_second_note(
    settings: Settings, r: redis.Redis, strict_lever: Sandbox, workers: Workers, tmp_path: Path
) -> None:
    """Issue 27: stopped after the create, while it waits for the note's slot; the second worker adds the note.
    The woken worker adds no second one (nor a second opportunity)."""
    sandbox = strict_lever
    done = _stop_while(
        r,
        sandbox,
        settings,
        workers,
        tmp_path,
        lambda p: bool(p.sends[0].opportunity_id) and not p.sends[0].note_done,
        3,
    )
    made = held(sandbox)
    assert len(made) == 3
    notes = sandbox.received()["notes"]
    assert sorted(n["opportunity"] for n in notes) == sorted(p.sends[0].opportunity_id for p in done)  # once each


def test_lever_failing_for_tags_closes_the_gate_as_it_does_for_deliveries(
    settings: Settings, r: redis.Redis, sandbox: Sandbox
) -> None:
    """Issue 27, 3: one policy for every kind of work that writes to Lever. Tagging retried 5xx each on its own
    backoff and never counted them towards the gate's failing state; three in a row (any worker's, any flow's) now
    close the gate, and the tagging waits behind it, released with everything else when Lever answers."""
    from jobsite.delivery import deliverer as applications
    from jobsite.delivery import gate
    from jobsite.followup import tagging

    from .helpers import submit_one

    svc = Services(settings)
    receipt = submit_one(svc, sandbox)
    assert applications.deliver(svc.delivery, receipt).outcome == applications.Outcome.DELIVERED
    sandbox.control("fail", path="/addTags", status=500, count=3)
    steps = [tagging.tag(svc.delivery, receipt, attempt) for attempt in range(3)]
    assert [s.step for s in steps] == [tagging.Step.RETRY, tagging.Step.RETRY, tagging.Step.PARKED]
    assert steps[-1].gate_closed
    assert gate.status(r).cause == gate.Cause.FAILING
    assert tagging.take_parked(r) == []  # held while the gate is closed
    gate.open_(r)  # the probe found Lever answering
    assert tagging.take_parked(r) == [receipt]


def test_a_worker_whose_clock_is_150_s_ahead_creates_no_duplicate_opportunity_or_note(
    settings: Settings, r: redis.Redis, sandbox: Sandbox, workers: Workers
) -> None:
    """Issue 26, 2, for sourcing: a create and a note Lever processed before the answer was lost, delivered by a
    worker whose clock is 150 s ahead. Sourcing looked for the opportunity created since its own clock's first
    attempt - 120 s, so it missed it and created it again."""

    svc = Services(settings)
    posting = sandbox.public_postings()[0]["id"]
    fair = events.add(r, "Fair", "", [posting])
    workers.start(clock_env(worker_env(settings, JOBSITE_RECONCILE_SETTLE_S="0"), FAKETIME="+150s"))
    wait_for(lambda: sandbox.count("opportunities.list") >= 1, what="the worker's start-up check")
    sandbox.control("drop", path="/v1/opportunities", count=1)  # the first create: made, its answer lost
    sandbox.control("drop", path="/notes", count=1)
    ids = [capture(svc, fair, [posting], "sam@acme.example", f"c-000000{i}").id for i in range(2)]
    wait_for(
        lambda: all(p.standing == Standing.DELIVERED for p in people.load_many(r, ids)),
        timeout=60,
        interval=0.1,
        what="both captures delivered",
    )
    assert sorted(o["id"] for o in held(sandbox)) == sorted(p.sends[0].opportunity_id for p in people.load_many(r, ids))
    assert sorted(n["opportunity"] for n in sandbox.received()["notes"]) == sorted(o["id"] for o in held(sandbox))

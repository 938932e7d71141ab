"""The exactly-once sender under the faults issue 26 found in sourcing and in reconcile (two recruiters and a 500, a
note processed after the read timeout, a worker's clock ahead or stepping) and issue 27's stalled workers: real
Redis, the sandbox over HTTP, real worker processes where a worker (or its clock) is what fails."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import redis
import requests

from jobsite.services import Services
from jobsite.settings import Settings
from jobsite.sourcing import accept, deliverer, events, people

from .helpers import Sandbox, wait_for


def held(sandbox: Sandbox) -> list[dict[str, Any]]:
    return list(requests.get(f"{sandbox.url}/_sandbox/opportunities", timeout=5).json()["data"])


def capture(svc: Services, event: events.Event, postings: list[str], recruiter: str, client_id: str,
            note: str = "Compilers; wants a call") -> people.Person:
    person = accept.event_capture({"name": "Grace Hopper", "email": "grace@example.com", "postings": postings,
                                   "note": note, "rating": 4, "client_id": client_id}, event, recruiter)
    return accept.submit(svc, person).person


def test_two_recruiters_capture_one_person_and_the_second_meets_an_unprocessed_500(
        settings: Settings, r: redis.Redis, sandbox: Sandbox) -> None:
    """Issue 26, 4: the same person for the same posting, captured by two recruiters; the second's create meets a
    500 Lever did not process. Reconcile must not take the first capture's opportunity for the second's: each
    capture is in Lever once, as its own opportunity."""
    svc = Services(settings)
    posting = sandbox.public_postings()[0]["id"]
    fair = events.add(r, "Fair", "", [posting])
    first = capture(svc, fair, [posting], "sam@acme.example", "c-0000001")
    assert deliverer.deliver(svc, first.id).outcome == deliverer.Outcome.DELIVERED
    second = capture(svc, fair, [posting], "hana@acme.example", "c-0000002", note="Met her again at the stand")
    sandbox.control("fail", path="/v1/opportunities", status=500, count=1)  # refused before it was processed
    assert deliverer.deliver(svc, second.id).outcome == deliverer.Outcome.RETRY
    assert deliverer.deliver(svc, second.id).outcome == deliverer.Outcome.DELIVERED
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


def test_a_note_processed_after_the_read_timeout_is_in_lever_once(settings: Settings, r: redis.Redis,
                                                                  sandbox: Sandbox) -> None:
    """Issue 26, 3: Lever adds the note after the client gave up waiting (3 s against a 1 s read timeout). The
    retry finds nothing yet and must not add it again before the settle time; then it finds it by our marker."""
    svc = Services(replace(settings, lever_read_timeout_s=1.0, reconcile_settle_s=6.0))
    grace = capture(svc, events.add(r, "Fair", "", []), [], "sam@acme.example", "c-0000001")
    sandbox.control("latency", seconds=3, path="/notes")
    assert deliverer.deliver(svc, grace.id).outcome == deliverer.Outcome.RETRY  # timed out: outcome unknown
    sandbox.control("latency", seconds=0)  # Lever is fast again; the first note is still being processed
    early = deliverer.deliver(svc, grace.id)
    assert early.outcome == deliverer.Outcome.RETRY
    wait_for(lambda: sandbox.received()["notes"], timeout=30, what="Lever to add the first note")
    assert deliverer.deliver(svc, grace.id).outcome == deliverer.Outcome.DELIVERED
    assert len(sandbox.received()["notes"]) == 1
    assert sandbox.count("opportunities.create") == 1

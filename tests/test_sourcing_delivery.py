"""Sourced people reach Lever exactly once: real workers, real redis-server and the sandbox over HTTP."""

from __future__ import annotations

import re
import time
from typing import Any

import redis
import requests

from jobsite.console import accounts
from jobsite.services import Services
from jobsite.settings import Settings
from jobsite.sourcing import enrol, events, opportunities, people
from jobsite.sourcing.people import Standing

from .helpers import LiveServer, Sandbox, Workers, csrf_in, wait_for, worker_env


def held(sandbox: Sandbox) -> list[dict[str, Any]]:
    return list(requests.get(f"{sandbox.url}/_sandbox/opportunities", timeout=5).json()["data"])


def user(sandbox: Sandbox, email: str) -> str:
    return next(u["id"] for u in sandbox.state.users if u["email"] == email)


def capture(
    svc: Services,
    event: events.Event,
    postings: list[str],
    client_id: str = "c-0000001",
    email: str = "grace@example.com",
) -> enrol.Accepted:
    person = enrol.event_capture(
        {
            "name": "Grace Hopper",
            "email": email,
            "postings": postings,
            "note": "Compilers; wants a call",
            "rating": 4,
            "client_id": client_id,
        },
        event,
        "sam@acme.example",
    )
    return enrol.submit(svc.enrolment, person)


def test_a_signup_and_a_capture_wait_out_maintenance_then_arrive_once_each(
    settings: Settings, r: redis.Redis, strict_lever: Sandbox, workers: Workers, live: LiveServer
) -> None:
    """Both arrive over HTTP (the API and the console's capture endpoint), real workers deliver them."""
    sandbox = strict_lever
    three = [p["id"] for p in sandbox.public_postings()[:3]]
    meetup = events.add(r, "Berlin Robotics Meetup", "2026-12-03", three)
    hana = user(sandbox, "hana@acme.example")
    accounts.add_user(r, "sam@acme.example", "a long enough password", accounts.Role.ADMIN)
    sandbox.control("maintenance", on=True)
    workers.start(worker_env(settings, JOBSITE_LEVER_PERFORM_AS=hana))
    team = sandbox.public_postings()[0]["categories"]["team"]
    joined = requests.post(
        f"{live.url}/api/v1/talent",
        timeout=10,
        files={"resume": ("ada.pdf", b"%PDF-1.4 ada")},
        data={
            "name": "Ada Lovelace",
            "email": "ada@example.com",
            "phone": "+49 30 1",
            "links": "https://ada.example",
            "teams": team,
            "locations": "Berlin, Germany",
            "consent": "true",
        },
    )
    assert joined.status_code == 202, joined.text
    console = requests.Session()
    page = console.get(f"{live.url}/admin/login", timeout=10).text
    console.post(
        f"{live.url}/admin/login",
        timeout=10,
        data={"email": "sam@acme.example", "password": "a long enough password", "csrf_token": csrf_in(page)},
    )  # type: ignore[union-attr]
    page = console.get(f"{live.url}/admin/events/{meetup.id}/capture", timeout=10).text
    token = re.search(r'data-csrf="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    taken = console.post(
        f"{live.url}/admin/api/events/{meetup.id}/people",
        timeout=10,
        headers={"X-CSRF-Token": token},
        json={
            "name": "Grace Hopper",
            "email": "grace@example.com",
            "postings": three,
            "note": "Compilers; wants a call",
            "rating": 4,
            "client_id": "c-0000001",
        },
    )
    assert taken.status_code == 202, taken.text
    ada, grace = people.load(r, joined.json()["receipt"]), people.load(r, taken.json()["id"])
    assert ada is not None
    assert grace is not None
    wait_for(lambda: r.zcard(people.PARKED) == 2, what="both to wait behind the gate")
    wait_for(lambda: sandbox.count("stages.list", 503) >= 2, what="the probe's light reads")
    assert not held(sandbox)
    assert sandbox.count("opportunities.create", 503) >= 1
    sandbox.control("maintenance", on=False)
    wait_for(
        lambda: all(p.standing == Standing.DELIVERED for p in people.load_many(r, [ada.id, grace.id])),
        timeout=60,
        interval=0.1,
        what="both delivered",
    )
    made = held(sandbox)
    assert len(made) == 4
    assert sandbox.count("opportunities.create", 201) == 4
    theirs = [o for o in made if o["emails"] == ["grace@example.com"]]
    [mine] = [o for o in made if o["emails"] == ["ada@example.com"]]
    assert sorted(o["posting"] for o in theirs) == sorted(three)
    assert mine["posting"] is None
    assert len({o["contact"] for o in theirs}) == 1
    assert mine["contact"] != theirs[0]["contact"]
    assert all(o["origin"] == "sourced" for o in made)
    assert {o["performAs"] for o in theirs} == {user(sandbox, "sam@acme.example")}
    assert mine["performAs"] == hana
    assert all(o["tags"] == ["Acme Robotics event: Berlin Robotics Meetup"] for o in theirs)
    assert mine["tags"] == [
        "Acme Robotics talent community",
        f"Acme Robotics interest: {team}",
        "Acme Robotics location: Berlin, Germany",
    ]
    assert mine["resume"]["name"] == "ada.pdf"
    assert mine["phones"] == [{"value": "+49 30 1"}]
    notes = sandbox.received()["notes"]
    assert sorted(n["opportunity"] for n in notes) == sorted(o["id"] for o in theirs)
    for n in notes:  # the note, then our marker: the same as its opportunity's, and no other's
        [ours] = [x for x in next(o for o in theirs if o["id"] == n["opportunity"])["links"] if "/admin/sourced/" in x]
        assert n["text"] == f"Compilers; wants a call\n\nRating: 4/5\n\n{ours}"
        assert n["user"] == theirs[0]["performAs"]
    assert mine["links"][0] == "https://ada.example"
    assert mine["links"][1].endswith(f"/admin/sourced/{ada.id}/1")
    assert not any(q["status"] == 429 for q in sandbox.received()["requests"])
    assert not r.exists(f"upload:{ada.id}")  # Lever has the resume: ours is gone


def test_one_client_id_is_one_person(settings: Settings, r: redis.Redis, sandbox: Sandbox) -> None:
    svc = Services(settings)
    meetup = events.add(r, "Fair", "", [sandbox.public_postings()[0]["id"]])
    first, again = capture(svc, meetup, []), capture(svc, meetup, [])
    assert first.new
    assert not again.new
    assert again.person.id == first.person.id
    assert len(people.of_event(r, meetup.id)) == 1
    assert capture(svc, meetup, [], client_id="c-0000002").new  # another capture of the page


def test_an_ambiguous_create_is_found_not_sent_again(settings: Settings, r: redis.Redis, sandbox: Sandbox) -> None:
    svc = Services(settings)
    posting = sandbox.public_postings()[0]["id"]
    meetup = events.add(r, "Fair", "", [posting])
    grace = capture(svc, meetup, [posting]).person
    sandbox.control("drop", path="/v1/opportunities", count=1)  # Lever makes it; the answer is lost
    assert opportunities.deliver(svc.delivery, grace.id).outcome == opportunities.Outcome.RETRY
    assert len(held(sandbox)) == 1
    assert opportunities.deliver(svc.delivery, grace.id).outcome == opportunities.Outcome.DELIVERED
    [made] = held(sandbox)
    assert sandbox.count("opportunities.create") == 1
    assert sandbox.count("opportunities.list") == 1
    assert people.load(r, grace.id).sends[0].opportunity_id == made["id"]  # type: ignore[union-attr]
    assert len(sandbox.received()["notes"]) == 1


def test_a_dropped_note_answer_is_not_sent_twice(settings: Settings, r: redis.Redis, sandbox: Sandbox) -> None:
    svc = Services(settings)
    meetup = events.add(r, "Fair", "", [])
    grace = capture(svc, meetup, []).person
    sandbox.control("drop", path="/notes", count=1)
    assert opportunities.deliver(svc.delivery, grace.id).outcome == opportunities.Outcome.RETRY
    assert opportunities.deliver(svc.delivery, grace.id).outcome == opportunities.Outcome.DELIVERED
    assert len(held(sandbox)) == 1
    assert len(sandbox.received()["notes"]) == 1


def test_a_person_whose_worker_died_mid_send_is_taken_up_and_reconciled(
    settings: Settings, r: redis.Redis, sandbox: Sandbox
) -> None:
    from jobsite.worker import tasks

    svc = tasks.use(Services(settings))
    posting = sandbox.public_postings()[0]["id"]
    grace = capture(svc, events.add(r, "Fair", "", [posting]), [posting]).person
    sandbox.control("drop", path="/v1/opportunities", count=1)
    opportunities.deliver(svc.delivery, grace.id)  # Lever made it; then, as if the worker died right there:
    stuck = people.load(r, grace.id)
    assert stuck is not None
    assert stuck.sends[0].inflight_at
    stuck.standing, stuck.updated_at = Standing.DELIVERING, stuck.updated_at - settings.delivery_lease_s - 1
    r.set(people.KEY.format(grace.id), stuck.to_json())
    assert opportunities.lost(svc.delivery) == [grace.id]
    assert tasks.deliver_sourced(grace.id) == "delivered"
    assert len(held(sandbox)) == 1
    assert sandbox.count("opportunities.create") == 1
    assert opportunities.lost(svc.delivery) == []


def test_a_key_that_may_not_list_opportunities_resends_without_closing_the_gate(
    settings: Settings, r: redis.Redis, sandbox: Sandbox
) -> None:
    from jobsite.delivery import gate

    svc = Services(settings)
    grace = capture(svc, events.add(r, "Fair", "", []), []).person
    sandbox.control("forbid", endpoints=["opportunities.list"])
    sandbox.control("drop", path="/v1/opportunities", count=1)
    assert opportunities.deliver(svc.delivery, grace.id).outcome == opportunities.Outcome.RETRY
    assert opportunities.deliver(svc.delivery, grace.id).outcome == opportunities.Outcome.DELIVERED
    assert gate.status(r).is_open
    assert sandbox.count("opportunities.list", 403) == 1
    assert sandbox.count("opportunities.create", 201) == 2  # the documented cost of a key without that grant


def test_a_create_lever_answered_500_is_looked_for_then_sent_again_at_once(
    settings: Settings, r: redis.Redis, sandbox: Sandbox
) -> None:
    """A 5xx is an answer: Lever's processing has ended, so what it made is listed already and there is no settle
    time to wait out (as for applications); not listed, it is sent again, once."""
    svc = Services(settings)
    grace = capture(svc, events.add(r, "Fair", "", []), []).person
    sandbox.control("fail", path="/v1/opportunities", status=500, count=1)  # a 5xx: Lever may have done it
    assert opportunities.deliver(svc.delivery, grace.id).outcome == opportunities.Outcome.RETRY
    assert opportunities.deliver(svc.delivery, grace.id).outcome == opportunities.Outcome.DELIVERED
    assert sandbox.count("opportunities.list") == 1  # looked for first
    assert sandbox.count("opportunities.create") == 2
    assert len(held(sandbox)) == 1


def test_an_answerless_create_lever_lacks_is_sent_again_once_the_settle_time_has_passed(
    settings: Settings, r: redis.Redis, sandbox: Sandbox
) -> None:
    svc = Services(settings)
    grace = capture(svc, events.add(r, "Fair", "", []), []).person
    sandbox.control("fail", path="/v1/opportunities", status=500, count=1)
    sandbox.control("drop", path="/v1/opportunities", count=1)  # no answer (the 500 is dropped): it may be made
    assert opportunities.deliver(svc.delivery, grace.id).outcome == opportunities.Outcome.RETRY
    waiting = opportunities.deliver(
        svc.delivery, grace.id
    )  # not listed, but it may still be processing: not sent again yet
    assert waiting.outcome == opportunities.Outcome.RETRY
    assert waiting.retry_at > time.time() + 60
    assert sandbox.count("opportunities.create") == 1
    later = people.load(r, grace.id)  # as if the settle time (on the Redis server's clock) had passed
    later.sends[0].settle_until = float(r.time()[0] - 1)  # type: ignore[union-attr]
    r.set(people.KEY.format(grace.id), later.to_json())  # type: ignore[union-attr]
    assert opportunities.deliver(svc.delivery, grace.id).outcome == opportunities.Outcome.DELIVERED
    assert sandbox.count("opportunities.create") == 2
    assert len(held(sandbox)) == 1


def test_nothing_more_of_a_person_is_sent_once_lever_deleted_them_mid_delivery(
    settings: Settings, r: redis.Redis, sandbox: Sandbox, monkeypatch: Any
) -> None:
    """Review 6: a capture for two postings went on creating (and adding notes with personal data) after Lever
    deleted the person: the purge waited as a wish that only the next delivery took."""
    from jobsite.privacy import sourced as retention

    svc = Services(settings)
    two = [p["id"] for p in sandbox.public_postings()[:2]]
    grace = capture(svc, events.add(r, "Fair", "", two), two).person
    real, forgotten = people.log, []

    def log(conn: Any, person_id: str, action: str, status: Any, message: str = "") -> None:
        real(conn, person_id, action, status, message)
        if action == "create" and not forgotten:  # the first opportunity made: Lever deletes the person now
            forgotten.append(retention.forget(svc.delivery, people.load(r, person_id).contact_id))  # type: ignore[union-attr]

    monkeypatch.setattr(people, "log", log)
    assert opportunities.deliver(svc.delivery, grace.id).outcome == opportunities.Outcome.RETRY
    monkeypatch.undo()
    assert forgotten == [1]
    assert sandbox.count("opportunities.create") == 1
    assert sandbox.count("opportunities.notes") == 0  # no note with their details after the deletion
    assert opportunities.deliver(svc.delivery, grace.id).outcome == opportunities.Outcome.DELIVERED
    gone = people.load(r, grace.id)
    assert gone is not None
    assert gone.purged
    assert gone.name == ""
    assert sandbox.count("opportunities.create") == 1
    assert sandbox.count("opportunities.notes") == 0


def test_a_person_lever_deleted_with_a_create_in_doubt_keeps_no_address(
    settings: Settings, r: redis.Redis, sandbox: Sandbox, monkeypatch: Any
) -> None:
    """The purge keeps the address while a create is in doubt (to look for it); once Lever deleted the person
    nothing is looked for any more, so the address must go too."""
    from jobsite.privacy import sourced as retention

    svc = Services(settings)
    two = [p["id"] for p in sandbox.public_postings()[:2]]
    grace = capture(svc, events.add(r, "Fair", "", two), two).person
    real = people.log

    def log(conn: Any, person_id: str, action: str, status: Any, message: str = "") -> None:
        real(conn, person_id, action, status, message)
        if action == "create":  # the first made: the second's answer is lost
            sandbox.control("drop", path="/v1/opportunities", endpoint="opportunities.create", count=1)

    monkeypatch.setattr(people, "log", log)
    assert opportunities.deliver(svc.delivery, grace.id).outcome == opportunities.Outcome.RETRY
    monkeypatch.undo()
    assert people.load(r, grace.id).sends[1].inflight_at  # type: ignore[union-attr]
    assert retention.forget(svc.delivery, people.load(r, grace.id).contact_id) == 1  # type: ignore[union-attr]
    assert people.load(r, grace.id).email  # type: ignore[union-attr]  # kept while the create is in doubt
    assert opportunities.deliver(svc.delivery, grace.id).outcome == opportunities.Outcome.DELIVERED
    gone = people.load(r, grace.id)
    assert gone is not None
    assert gone.purged
    assert gone.email == ""

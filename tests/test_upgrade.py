"""Upgrades lose nothing: what the previous release left in Redis, mid-delivery too (applications and sourced people
in flight, parked behind the gate, queued as RQ jobs by their dotted paths), is delivered once by this one. The
previous release's own code writes it (its tree from git, run in a subprocess), then a worker of this one delivers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from jobsite.records import store
from jobsite.records.store import State
from jobsite.settings import Settings
from jobsite.sourcing import people
from jobsite.sourcing.people import Standing

from .helpers import Sandbox, Workers, lever_body, simple_posting, wait_for, worker_env

PREVIOUS = "55011b2"  # main before the exactly-once sender (records, people, jobs as it writes them)
ROOT = Path(__file__).resolve().parent.parent

# Run by the previous release: an apply and a create and a note each processed by Lever with the answer lost (in
# flight), an application and a person parked behind the gate Lever's maintenance closed, the rest queued.
PREVIOUS_RELEASE_WRITES = r"""
import json, sys
import requests
import jobsite
from jobsite.delivery import deliverer
from jobsite.intake import accept as intake
from jobsite.intake.forms import answers_from_lever_body, build_form, validate
from jobsite.services import Services
from jobsite.settings import load_settings
from jobsite.sourcing import accept, events
from jobsite.sourcing import deliverer as sourcing

plan = json.load(sys.stdin)
svc = Services(load_settings())

def control(action, **body):
    requests.post(f"{plan['sandbox']}/_sandbox/{action}", json=body, timeout=5).raise_for_status()

def apply(n):
    form = build_form(svc.lever.get_application_questions(plan["posting"]))
    application = validate(form, answers_from_lever_body(form, plan["bodies"][n]), {}, 2**20)
    return intake.submit(svc, application, {}, posting_title="Engineer").receipt

fair = events.add(svc.redis, "Fair", "", [plan["posting"]])

def capture(i):
    person = accept.event_capture({"name": f"Person {i}", "email": f"p{i}@example.com", "postings": [plan["posting"]],
                                   "note": f"note {i}", "client_id": f"c-000000{i}"}, fair, "sam@acme.example")
    return accept.submit(svc, person).person.id

out = {"tree": jobsite.__file__, "applications": [], "people": []}
receipt = apply(0)
control("drop", path="/apply", count=1)
assert deliverer.deliver(svc, receipt).outcome == "retry"
out["applications"].append(receipt)
person = capture(1)
control("drop", path="/v1/opportunities", count=1)
assert sourcing.deliver(svc, person).outcome == "retry"
out["people"].append(person)
person = capture(2)
control("drop", path="/notes", count=1)
assert sourcing.deliver(svc, person).outcome == "retry"
out["people"].append(person)
control("maintenance", on=True)
receipt = apply(1)
assert deliverer.deliver(svc, receipt).outcome == "parked"
out["applications"].append(receipt)
person = capture(3)
assert sourcing.deliver(svc, person).outcome == "parked"
out["people"].append(person)
control("maintenance", on=False)
out["applications"].append(apply(2))
out["people"].append(capture(4))
print(json.dumps(out))
"""


def previous_release(tmp_path: Path) -> Path:
    """The previous release's `jobsite` package, from git (skipped where the history lacks it: a shallow clone)."""
    tree = tmp_path / "previous"
    tree.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", PREVIOUS, "jobsite"], capture_output=True)
    if archive.returncode != 0:
        pytest.skip(f"the previous release ({PREVIOUS}) is not in this clone's history")
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True)
    return tree


def test_what_the_previous_release_left_mid_delivery_is_delivered_once(
    settings: Settings, r: redis.Redis, sandbox: Sandbox, workers: Workers, tmp_path: Path
) -> None:
    tree = previous_release(tmp_path)
    posting = simple_posting(sandbox)["id"]
    plan = {
        "sandbox": sandbox.url,
        "posting": posting,
        "bodies": [lever_body(sandbox, posting, 80 + n) for n in range(3)],
    }
    env = {**worker_env(settings), "PYTHONPATH": str(tree)}
    ran = subprocess.run(
        [sys.executable, "-c", PREVIOUS_RELEASE_WRITES],
        env=env,
        input=json.dumps(plan),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tree,
    )  # (-c puts the cwd first)
    assert ran.returncode == 0, ran.stderr
    left = json.loads(ran.stdout)
    assert left["tree"].startswith(str(tree))  # the previous release's code wrote it, not this one's
    receipts, ids = left["applications"], left["people"]
    assert len(sandbox.received()["applications"]) == 1  # Lever has the one in flight
    assert len(sandbox.received()["notes"]) == 1  # and the note in flight
    workers.start(worker_env(settings))  # this release takes over
    wait_for(
        lambda: (
            all(rec.state == State.DELIVERED for rec in store.load_many(r, receipts))
            and all(p.standing == Standing.DELIVERED for p in people.load_many(r, ids))
        ),
        timeout=90,
        interval=0.1,
        what="everything delivered by this release",
    )
    for receipt in receipts:
        assert (
            len(
                [
                    a
                    for a in sandbox.received()["applications"]
                    if any(u["value"].endswith(f"/applications/{receipt}") for u in a["body"]["urls"])
                ]
            )
            == 1
        )
    assert len(sandbox.received()["applications"]) == 3
    made = sandbox.state.opportunities
    for i, person in enumerate(people.load_many(r, ids), start=1):
        theirs = [o for o in made if o["emails"] == [f"p{i}@example.com"]]
        assert [o["id"] for o in theirs] == [person.sends[0].opportunity_id]  # once
        assert len([n for n in sandbox.received()["notes"] if n["opportunity"] == theirs[0]["id"]]) == 1

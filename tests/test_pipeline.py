"""The pipeline report (issue 9, item 4): a sync from Lever, the CLI's JSON, signed webhooks, refusals, deletion."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

import pytest
import redis
import requests

from jobsite.delivery import deliverer
from jobsite.followup import report, tagging
from jobsite.records import store
from jobsite.services import Services
from jobsite.settings import Settings
from jobsite.web.app import create_app
from jobsite.worker import tasks

from .helpers import LiveServer, Sandbox, other_posting, submit_one, worker_env

TOKEN = "signing-token"
HIRED = "63dd55b2-a99f-4e7b-985f-22c7bf80ab42"
WITHDREW = "b7f0c9a2-3d4e-4f5a-8b6c-7d8e9f0a1b2c"
PHONE = "6a0f3c7e-1c52-4e4b-9f0e-2d1f8f3a5b10"


@pytest.fixture
def hooked(settings: Settings) -> Settings:
    return replace(settings, lever_webhook_token=TOKEN)


@pytest.fixture
def svc(hooked: Settings, r: redis.Redis) -> Services:
    return tasks.use(Services(hooked))


def three_tagged(svc: Services, sandbox: Sandbox) -> list[store.Record]:
    sandbox.control("limits", apply_per_s=100, apply_burst=100)
    receipts = [
        submit_one(svc, sandbox, 0),
        submit_one(svc, sandbox, 1),
        submit_one(svc, sandbox, 2, posting=other_posting(sandbox)),
    ]
    for receipt in receipts:
        assert deliverer.deliver(svc.delivery, receipt).outcome == deliverer.Outcome.DELIVERED
        assert tasks.tag_opportunity(receipt) == "done"
    return store.load_many(svc.redis, receipts)


def cli_json(hooked: Settings) -> dict:
    env = worker_env(hooked)
    done = subprocess.run(
        [sys.executable, "-m", "jobsite", "report", "pipeline", "--format", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_a_sync_and_the_report_show_stages_hires_and_the_funnel(
    svc: Services, hooked: Settings, sandbox: Sandbox
) -> None:
    a, b, c = three_tagged(svc, sandbox)
    sandbox.control(f"opportunities/{a.opportunity_id}/stage", stage=PHONE)
    sandbox.control(f"opportunities/{a.opportunity_id}/stage", stage="offer")
    sandbox.control(f"opportunities/{a.opportunity_id}/archive", reason=HIRED)
    sandbox.control(f"opportunities/{b.opportunity_id}/archive", reason=WITHDREW)
    assert report.sync(svc.delivery) == 3
    printed = cli_json(hooked)
    stages = {row["opportunity_id"]: (row["stage"], row["archive_reason"], row["hired"]) for row in printed["rows"]}
    assert stages == {
        a.opportunity_id: ("Offer", "Hired", True),
        b.opportunity_id: ("New applicant", "Withdrew", False),
        c.opportunity_id: ("New applicant", "", False),
    }
    assert printed["hired"] == 1
    first = next(f for f in printed["by_posting"] if f["group"] == a.posting_title)
    reached = {s["stage"]: s["count"] for s in first["stages"]}
    assert first["applied"] == 2
    assert reached["New applicant"] == 2
    assert reached["Phone screen"] == 1
    assert reached["Offer"] == 1
    assert first["hired"] == 1
    assert first["hired_rate"] == 0.5
    calls = len(sandbox.received()["requests"])
    assert report.sync(svc.delivery) == 3  # nothing changed: the margin re-reads, one page, no more calls than that
    assert len(sandbox.received()["requests"]) == calls + 1
    sandbox.control("maintenance", on=True)
    from jobsite.delivery import gate

    gate.close(svc.redis, gate.Cause.MAINTENANCE, "test")
    assert report.sync(svc.delivery) is None
    assert len(sandbox.received()["requests"]) == calls + 1


def test_signed_webhooks_update_the_report_and_bad_or_replayed_ones_change_nothing(
    svc: Services, hooked: Settings, r: redis.Redis, sandbox: Sandbox
) -> None:
    app = create_app(hooked)
    live = LiveServer(app)
    try:
        a, b, _ = three_tagged(svc, sandbox)
        report.refresh_names(svc.delivery)
        calls = len(sandbox.received()["requests"])
        sandbox.control("webhooks", url=f"{live.url}/webhooks/lever", token=TOKEN)
        assert sandbox.control(f"opportunities/{a.opportunity_id}/stage", stage="offer") == {"webhooks": [200]}
        assert sandbox.control(f"opportunities/{a.opportunity_id}/archive", reason=HIRED)["webhooks"] == [200, 200]
        [row] = [x for x in report.rows(r) if x.opportunity_id == a.opportunity_id]
        assert (row.stage, row.hired) == ("Offer", True)
        assert len(sandbox.received()["requests"]) == calls  # no polling: the webhooks did it
        replayed = sandbox.received()["webhooks"][-1]["envelope"]
        again = requests.post(f"{live.url}/webhooks/lever", json=replayed, timeout=5)
        assert again.status_code == 409
        sandbox.control("webhooks", url=f"{live.url}/webhooks/lever", token=TOKEN, bad_signature=True)
        assert sandbox.control(f"opportunities/{b.opportunity_id}/stage", stage="offer") == {"webhooks": [403]}
        assert next(x for x in report.rows(r) if x.opportunity_id == b.opportunity_id).stage == "New applicant"
        # candidateDeleted: that person's data goes, the counts stay
        sandbox.control("webhooks", url=f"{live.url}/webhooks/lever", token=TOKEN)
        assert sandbox.control(f"contacts/{a.contact_id}/delete") == {"webhooks": [200]}
        gone = store.load(r, a.receipt)
        assert gone.application is None
        assert gone.contact_id == ""
        assert gone.state == store.State.DELIVERED
        assert store.of_contact(r, a.contact_id) == []
        assert store.load(r, b.receipt).application is not None
        assert report.report(r)["opportunities"] == 3
        assert report.report(r)["hired"] == 1
    finally:
        live.stop()


def test_without_a_token_the_endpoint_does_not_exist(client) -> None:
    assert client.post("/webhooks/lever", json={}).status_code == 404


def test_tags_for_follow_the_settings(settings: Settings, svc: Services, sandbox: Sandbox) -> None:
    record = store.Record("x", "p", store.State.DELIVERED, 0.0, None, source="linkedin", campaign="spring")
    assert tagging.tags_for(replace(settings, tags=("campaign",), tag_prefix="Zed"), record) == ["Zed campaign: spring"]


def test_a_sync_page_read_before_a_webhook_does_not_undo_it(r) -> None:
    """The webhook's change (updated later) stands; the page's older view of the opportunity is ignored."""
    r.hset(report.OPP.format("o1"), mapping={"stage_id": "offer", "updated_at": 2_000})
    report._apply(r, {"id": "o1", "stage": {"id": "applicant-new"}, "updatedAt": 1_000})
    assert r.hget(report.OPP.format("o1"), "stage_id") == b"offer"
    report._apply(r, {"id": "o1", "stage": {"id": "phone-screen"}, "updatedAt": 3_000})
    assert r.hget(report.OPP.format("o1"), "stage_id") == b"phone-screen"

"""The closed gate's probe with real worker processes, real redis-server and the sandbox over HTTP: while Lever is in
maintenance a light read (List stages) tells when it has ended, and the oldest application is sent at once; where
the key may not make the read, the probe falls back to re-sending the oldest application, and says so."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import redis

from jobsite.console import accounts, dashboard
from jobsite.delivery import gate
from jobsite.records import store
from jobsite.services import Services
from jobsite.settings import Settings

from .helpers import ADMIN, Sandbox, Workers, clock_env, csrf_in, lever_body, simple_posting, wait_for, worker_env

pytestmark = pytest.mark.slow


def submit(client, sandbox: Sandbox, n: int) -> str:
    posting = simple_posting(sandbox)
    answer = client.post(f"/api/v1/postings/{posting['id']}/applications", json=lever_body(sandbox, posting["id"], n))
    assert answer.status_code == 202
    return answer.get_json()["receipt"]


def probe_log(sandbox: Sandbox) -> list[tuple[str, int]]:
    """What the sandbox received of reads and applies, in order: (endpoint, status)."""
    return [
        (q["endpoint"], q["status"])
        for q in sandbox.received()["requests"]
        if q["endpoint"] in ("stages.list", "postings.apply")
    ]


def emails_received(sandbox: Sandbox) -> list[str]:
    return [
        next(p["value"] for p in a["body"]["personalInformation"] if p["name"] == "email")
        for a in sandbox.received()["applications"]
    ]


def console(client) -> str:
    """The recruiters' dashboard as an admin sees it."""

    accounts.add_user(client.application.extensions["jobsite"].redis, *ADMIN, accounts.Role.ADMIN)
    page = client.get("/admin/login").get_data(as_text=True)
    token = csrf_in(page)
    client.post("/admin/login", data={"email": ADMIN[0], "password": ADMIN[1], "csrf_token": token})
    return client.get("/admin/").get_data(as_text=True)


def test_a_light_read_tells_when_maintenance_ends_then_the_oldest_goes_first(
    settings: Settings, r: redis.Redis, client, sandbox: Sandbox, workers: Workers
) -> None:
    sandbox.control("maintenance", on=True)
    env = worker_env(settings)
    for _ in range(2):  # two workers: still one probe at a time
        workers.start(env)
    receipts = [submit(client, sandbox, n) for n in range(5)]
    wait_for(lambda: store.counts(r)["waiting"] == 5, what="all five to wait for Lever")
    wait_for(lambda: sandbox.count("stages.list", 503) >= 3, what="a few read probes")
    during = probe_log(sandbox)
    first_read = during.index(("stages.list", 503))
    assert set(during[:first_read]) == {("postings.apply", 503)}  # the delivery (or two) that closed the gate
    assert set(during[first_read:]) == {("stages.list", 503)}  # then reads only: no application re-sent
    assert "Checking Lever every 1 s with a light read" in console(client)

    sandbox.control("maintenance", on=False)
    wait_for(lambda: store.counts(r)["delivered"] == 5, timeout=60, interval=0.1, what="the backlog to drain")
    after = probe_log(sandbox)[len(during) :]
    passed = after.index(("stages.list", 200))
    assert set(after[:passed]) <= {("stages.list", 503)}
    assert after[passed + 1 :] == [("postings.apply", 201)] * 5  # the oldest at once, then the rest: each once
    oldest_first = [rec.application.email for rec in sorted(store.load_many(r, receipts), key=lambda x: x.created_at)]
    assert emails_received(sandbox) == oldest_first
    assert not gate.status(r).closed
    assert not r.exists(gate.PROBE)


def test_a_key_that_may_not_read_stages_probes_by_resending_the_oldest_and_says_so(
    settings: Settings, r: redis.Redis, client, sandbox: Sandbox, workers: Workers, tmp_path: Path
) -> None:
    sandbox.control("forbid", endpoints=["stages"])
    sandbox.control("maintenance", on=True)
    log = tmp_path / "worker.log"
    workers.start(worker_env(settings), log=log)
    receipts = [submit(client, sandbox, n) for n in range(3)]
    wait_for(lambda: store.counts(r)["waiting"] == 3, what="all three to wait for Lever")
    wait_for(lambda: sandbox.count("postings.apply", 503) >= 3, what="probes re-sending the oldest application")
    assert probe_log(sandbox).count(("stages.list", 403)) == 1  # refused once, remembered: not read again
    assert sandbox.count("stages.list") == 1
    assert 3500 < r.ttl(gate.READ_REFUSED) <= 3600  # tried again in an hour (JOBSITE_PROBE_READ_RETRY_S)
    why = "Checking Lever by re-sending the oldest application: the API key may not read stages (403)"
    svc: Services = client.application.extensions["jobsite"]
    assert dashboard.status(svc.board)["gate"]["check"] == why
    assert why in console(client)
    assert "re-sending the oldest application" in log.read_text()
    assert "may not read stages (403)" in log.read_text()

    sandbox.control("maintenance", on=False)
    wait_for(lambda: store.counts(r)["delivered"] == 3, timeout=60, interval=0.1, what="the backlog to drain")
    assert sorted(emails_received(sandbox)) == sorted(rec.application.email for rec in store.load_many(r, receipts))
    assert len(sandbox.received()["applications"]) == 3  # each exactly once
    assert sandbox.count("stages.list") == 1


def test_a_probe_scheduled_by_a_machine_whose_clock_is_150_s_ahead_runs_on_time_on_another(
    settings: Settings, r: redis.Redis, client, sandbox: Sandbox, workers: Workers
) -> None:
    """The nemesis, seed 5 (issue 26, new finding): a worker 150 s ahead closed the gate and scheduled its probe by
    its own clock; the worker whose scheduler held RQ's lock, on the right clock, ran it 150 s late, and the backlog
    waited that long. Times that cross machines are on Redis's clock, and so is the scheduler's."""
    gate.close(r, gate.Cause.MAINTENANCE, "Lever said maintenance")
    receipt = submit(client, sandbox, 90)
    ahead = clock_env(worker_env(settings), FAKETIME="+150s")
    schedule = (
        "from jobsite.delivery import jobs; from jobsite.services import Services; "
        "from jobsite.settings import load_settings; "
        "assert jobs.schedule_probe(Services(load_settings()).redis, 1.0, 5)"
    )
    subprocess.run([sys.executable, "-c", schedule], env=ahead, check=True, timeout=30)
    workers.start(worker_env(settings))  # its own clock is right; its scheduler runs the probe
    wait_for(
        lambda: store.load(r, receipt).state == store.State.DELIVERED and not gate.status(r).closed,
        timeout=20,
        what="the probe to open the gate and the application to be delivered",
    )

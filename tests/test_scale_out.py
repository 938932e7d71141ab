"""Several machines, one Redis (issue 8, item 6): two `jobsite web` processes and three workers, each with its own
data dir, as on separate machines, deliver 40 applications (half with a resume) accepted before, during and after a
maintenance window into a Lever that allows 10 applies (and 40 calls) in any second: each exactly once, with its
file, and never a 429. The limit is five times Lever's 2 applies/s, as in test_applications_flow's backlog test: a
strict window is the same whatever its number, and test_applications_flow's three workers keep Lever's real one."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import unquote

import pytest
import redis
import requests

from jobsite.records import store
from jobsite.settings import Settings

from .helpers import TIMING, Sandbox, Workers, file_posting, free_port, lever_body, simple_posting, wait_for, worker_env

pytestmark = [pytest.mark.slow, TIMING]  # Lever's real 2 applies/s, a strict window, no 429

APPLICATIONS = 40  # a quarter before the window, half during it, a quarter after; the even ones with a resume
RATES = {"JOBSITE_APPLY_RATE_PER_S": "10", "JOBSITE_LEVER_RATE_PER_S": "30"}  # every machine paces to the window


def _serves(url: str) -> bool:
    try:
        return requests.get(url + "/healthz", timeout=2).ok
    except requests.RequestException:
        return False


@pytest.fixture
def webs(settings: Settings, tmp_path: Path) -> Iterator[list[str]]:
    """Two web machines: their own data dirs, the same Redis and secret key."""
    procs, urls = [], []
    try:
        for name in ("web-a", "web-b"):
            port = free_port()
            env = worker_env(
                settings, JOBSITE_DATA_DIR=str(tmp_path / name), JOBSITE_SUBMISSIONS_PER_IP_PER_HOUR="100000", **RATES
            )
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "jobsite", "web", "--workers", "1", "--port", str(port)],
                    env=env,
                    start_new_session=True,
                )
            )
            urls.append(f"http://127.0.0.1:{port}")
        for url in urls:
            wait_for(lambda url=url: _serves(url), timeout=60, what=f"{url} to serve")
        yield urls
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(20)


def test_two_webs_and_three_workers_share_only_redis(
    settings: Settings, r: redis.Redis, sandbox: Sandbox, workers: Workers, webs: list[str], tmp_path: Path
) -> None:
    sandbox.control("limits", mode="window", apply_per_s=10, per_s=40)
    plain, with_file = simple_posting(sandbox), file_posting(sandbox)
    for i in range(3):
        workers.start(worker_env(settings, JOBSITE_DATA_DIR=str(tmp_path / f"worker-{i}"), **RATES))
    resumes = {n: b"%PDF-1.7\n" + os.urandom(20_000) for n in range(0, APPLICATIONS, 2)}

    def apply(n: int) -> str:
        url = webs[n % 2]
        posting = with_file if n in resumes else plain
        target = f"{url}/api/v1/postings/{posting['id']}/applications"
        body = lever_body(sandbox, posting["id"], n)
        if n in resumes:
            answer = requests.post(
                target, data={"application": json.dumps(body)}, files={"resume": ("cv.pdf", resumes[n])}, timeout=60
            )
        else:
            answer = requests.post(target, json=body, timeout=60)
        assert answer.status_code == 202, answer.text
        return str(answer.json()["receipt"])

    with ThreadPoolExecutor(8) as pool:
        first = list(pool.map(apply, range(0, APPLICATIONS // 4)))  # Lever up: some go at once
        sandbox.control("maintenance", on=True)
        during = list(pool.map(apply, range(APPLICATIONS // 4, 3 * APPLICATIONS // 4)))
        wait_for(lambda: store.counts(r)["waiting"] > 0, what="applications to wait out the window")
        sandbox.control("maintenance", on=False)
        after = list(pool.map(apply, range(3 * APPLICATIONS // 4, APPLICATIONS)))
    receipts = first + during + after
    assert len(set(receipts)) == APPLICATIONS

    wait_for(
        lambda: store.counts(r)["delivered"] == APPLICATIONS,
        timeout=120,
        interval=0.5,
        what=f"all {APPLICATIONS} to be delivered",
    )
    got = sandbox.received()
    emails = [
        next(p["value"] for p in a["body"]["personalInformation"] if p["name"] == "email") for a in got["applications"]
    ]
    assert len(emails) == len(set(emails)) == APPLICATIONS  # each exactly once
    for application in got["applications"]:
        fields = {p["name"]: p["value"] for p in application["body"]["personalInformation"]}
        n = int(fields["email"].removeprefix("candidate").split("@")[0])
        if n in resumes:
            upload = sandbox.state.uploads[unquote(fields["resume"].rsplit("/", 1)[1])]
            assert upload["sha256"] == hashlib.sha256(resumes[n]).hexdigest()
        else:
            assert "resume" not in fields
    assert [q for q in got["requests"] if q["status"] == 429] == []
    assert r.keys("upload:*") == []

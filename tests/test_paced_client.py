"""The pacing mounted on the Lever client: every request takes its slot (each page of a list too), every answer goes
through the same policy (a 429 on any read slows every worker), and an exactly-once send cannot skip its fence."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import redis

from jobsite import metrics
from jobsite.lever import pacing
from jobsite.lever.client import LeverClient
from jobsite.postings.catalog import CatalogUnavailable
from jobsite.services import Services
from jobsite.settings import Settings

from .helpers import TIMING, Sandbox, worker_env

PAGES = 12

# One process listing every opportunity a page at a time, through the client every worker uses.
LIST_ALL = """
from jobsite.services import Services
from jobsite.settings import load_settings
print(len(Services(load_settings()).lever.list_opportunities(limit=1)))
"""


def _seed(sandbox: Sandbox, lever: LeverClient, n: int) -> None:
    user = str(lever.list_users()[0]["id"])
    for i in range(n):
        lever.create_opportunity({"name": f"Person {i}", "emails": [f"p{i}@example.com"]}, perform_as=user)


@TIMING
def test_every_page_of_a_list_takes_its_slot_in_every_process(
    settings: Settings, strict_lever: Sandbox, lever: LeverClient, r: redis.Redis
) -> None:
    """Two processes each list 12 opportunities one per page (24 GETs) against a strict Lever (10 calls in any 1 s,
    429 without Retry-After): none is refused, and each page took a slot on the shared schedule."""
    strict_lever.control("limits", mode="bucket", per_s=1000, burst=1000, apply_per_s=1000, apply_burst=1000)
    _seed(strict_lever, lever, PAGES)
    strict_lever.control("limits", mode="window", apply_per_s=2, per_s=10)
    before = strict_lever.count("opportunities.list")
    env = worker_env(settings)
    procs = [
        subprocess.Popen([sys.executable, "-c", LIST_ALL], env=env, stdout=subprocess.PIPE, text=True) for _ in range(2)
    ]
    outs = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    assert outs == [str(PAGES), str(PAGES)]
    assert strict_lever.count("opportunities.list") - before == 2 * PAGES
    assert strict_lever.count("opportunities.list", 429) == 0
    paced = json.dumps(["jobsite_pacing_lag_seconds", {"limit": "lever"}, "+Inf"], separators=(",", ":"))
    assert int(r.hget(metrics.HISTOGRAMS, paced) or 0) >= 2 * PAGES  # each page left at its own slot


def test_a_429_on_a_catalog_read_slows_and_pauses_every_worker(
    settings: Settings, sandbox: Sandbox, r: redis.Redis
) -> None:
    """The catalog's read of the postings is answered 429: every worker's pace is lowered and paused, as after a
    refused apply (before, only the flows that judged their own errors did so)."""
    svc = Services(settings)
    sandbox.control("fail", path="/v1/postings", status=429, count=1, message="Too many requests")
    with pytest.raises(CatalogUnavailable):
        svc.catalog.postings()
    pace = pacing.pace(r, svc.limits.lever)
    assert pace.factor < 1  # slower for everyone
    assert pace.paused_s > 0.5  # a whole window without Retry-After
    slot = pacing.reserve(r, (svc.limits.lever,), 10)  # any worker's next call waits for the pause's end
    assert slot.wait_s > 0.5


def test_an_exactly_once_send_cannot_leave_without_its_fence(settings: Settings, sandbox: Sandbox) -> None:
    """A paced client refuses an apply, a create or a note outside the sender's fence, before anything is sent."""
    lever = Services(settings).lever
    posting = next(iter(sandbox.public_postings()))
    with pytest.raises(pacing.Unfenced):
        lever.apply(posting["id"], {"name": "Ada", "email": "ada@example.com"})
    with pytest.raises(pacing.Unfenced):
        lever.create_opportunity({"name": "Ada"}, perform_as="someone")
    assert sandbox.count("postings.apply") == 0
    assert sandbox.count("opportunities.create") == 0


def test_a_local_wait_timeout_is_not_an_answer_from_lever(settings: Settings, sandbox: Sandbox, r: redis.Redis) -> None:
    """No slot free within the caller's wait is RateLimitWait: nothing was sent, and nobody else is slowed."""
    svc = Services(settings)
    lever = svc.lever.within(0.05)
    pacing.reserve(r, (svc.limits.lever,), 10)  # another worker holds the next slot
    pacing.reserve(r, (svc.limits.lever,), 10)
    with pytest.raises(pacing.RateLimitWait):
        lever.list_users()
    assert sandbox.count("users.list") == 0
    assert pacing.pace(r, svc.limits.lever).factor == 1

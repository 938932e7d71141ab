"""The sandbox's switches that the nemesis drives (issue 26): per endpoint, a 500 after processing, a dropped
connection, a 429 storm with Retry-After and slow answers, each ended by its tag alone."""

from __future__ import annotations

import time

import requests

from jobsite.sandbox import API_KEY

from .helpers import Sandbox, application_body, odd_posting

AUTH = (API_KEY, "")


def apply(sandbox: Sandbox, posting: str, email: str, timeout: float = 5) -> requests.Response:
    return requests.post(
        f"{sandbox.url}/v1/postings/{posting}/apply",
        json=application_body(sandbox, posting, email),
        auth=AUTH,
        timeout=timeout,
    )


def test_a_500_after_processing_keeps_what_was_processed_and_a_500_before_does_not(sandbox: Sandbox) -> None:
    posting = odd_posting(sandbox)
    sandbox.control("fail", endpoint="postings.apply", status=500, count=1, after=True, tag="late")
    assert apply(sandbox, posting, "late@example.com").status_code == 500
    sandbox.control("fail", endpoint="postings.apply", status=500, count=1, tag="early")
    assert apply(sandbox, posting, "early@example.com").status_code == 500
    emails = [o["emails"][0] for o in sandbox.state.opportunities]
    assert emails == ["late@example.com"]
    assert requests.get(f"{sandbox.url}/v1/postings", auth=AUTH, timeout=5).ok  # other endpoints untouched


def test_failures_drops_and_storms_end_by_their_tag(sandbox: Sandbox) -> None:
    posting = odd_posting(sandbox)
    sandbox.control("fail", path="/v1/", status=429, count=10**6, retry_after=1, tag="storm")
    sandbox.control("drop", endpoint="opportunities.create", count=10**6, tag="drops")
    storm = apply(sandbox, posting, "a@example.com")
    assert (storm.status_code, storm.headers["Retry-After"], storm.json()["code"]) == (429, "1", "TooManyRequestsError")
    sandbox.control("fail", clear=True, tag="other")
    assert apply(sandbox, posting, "a@example.com").status_code == 429
    sandbox.control("fail", clear=True, tag="storm")
    assert apply(sandbox, posting, "a@example.com").status_code == 201
    user = sandbox.state.users[0]["id"]
    try:
        requests.post(
            f"{sandbox.url}/v1/opportunities",
            params={"perform_as": user},
            auth=AUTH,
            timeout=5,
            json={"name": "B", "emails": ["b@example.com"]},
        )
        dropped = False
    except requests.ConnectionError:
        dropped = True
    assert dropped
    assert "b@example.com" in [o["emails"][0] for o in sandbox.state.opportunities]  # processed, answer lost
    sandbox.control("drop", clear=True, tag="drops")
    assert (
        requests.post(
            f"{sandbox.url}/v1/opportunities",
            params={"perform_as": user},
            auth=AUTH,
            timeout=5,
            json={"name": "C", "emails": ["c@example.com"]},
        ).status_code
        == 201
    )


def test_one_endpoint_answers_slower_than_a_read_timeout_and_still_processes(sandbox: Sandbox) -> None:
    posting = odd_posting(sandbox)
    sandbox.control("latency", endpoint="postings.apply", seconds=1.0)
    started = time.monotonic()
    try:
        apply(sandbox, posting, "slow@example.com", timeout=0.3)
        timed_out = False
    except requests.Timeout:
        timed_out = True
    assert timed_out
    assert requests.get(f"{sandbox.url}/v1/postings", auth=AUTH, timeout=0.5).ok  # the others answer at once
    while not sandbox.state.opportunities and time.monotonic() - started < 5:
        time.sleep(0.02)
    assert [o["emails"][0] for o in sandbox.state.opportunities] == ["slow@example.com"]
    assert sandbox.control("latency", endpoint="postings.apply", seconds=0)["latency_by_endpoint"] == {}

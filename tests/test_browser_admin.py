"""A recruiter watches a maintenance backlog drain, in headless Chromium against a real worker."""

from __future__ import annotations

import re

import pytest
import redis
import requests
from playwright.sync_api import expect

from jobsite.console import accounts
from jobsite.records import store

from .helpers import LiveServer, Sandbox, Workers, lever_body, simple_posting, wait_for, worker_env

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_recruiter_watches_the_backlog_drain(
    page, live: LiveServer, r: redis.Redis, settings, sandbox: Sandbox, workers: Workers
) -> None:
    accounts.add_user(r, "rita@acme.test", "a long enough password", accounts.Role.ADMIN)
    posting = simple_posting(sandbox)
    sandbox.control("maintenance", on=True)
    workers.start(worker_env(settings))
    receipts = [
        requests.post(
            f"{live.url}/api/v1/postings/{posting['id']}/applications",
            json=lever_body(sandbox, posting["id"], n),
            timeout=10,
        ).json()["receipt"]
        for n in range(6)
    ]
    wait_for(lambda: store.counts(r)["waiting"] == 6, what="the backlog to wait for Lever")

    page.goto(live.url + "/admin/")
    page.wait_for_url(re.compile("/admin/login"))
    page.fill("#email", "rita@acme.test")
    page.fill("#password", "a long enough password")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/admin/$"))
    assert page.locator('[data-field="lever.word"]').inner_text() == "In maintenance"
    assert page.locator('[data-field="backlog"]').inner_text() == "6"
    assert page.locator('[data-field="counts.waiting"]').inner_text() == "6"
    assert page.locator("#drain").is_visible()

    sandbox.control("maintenance", on=False)
    expect(page.locator('[data-field="backlog"]')).to_have_text("0", timeout=60_000)  # the page polls
    assert page.locator('[data-field="counts.delivered"]').inner_text() == "6"
    assert page.locator('[data-field="lever.word"]').inner_text() == "Available"  # the page polls words too

    page.get_by_role("link", name="6").last.click()  # the delivered count links to the delivered applications
    page.wait_for_url(re.compile(r"state=delivered"))
    page.locator("table.list a").first.click()
    page.wait_for_url(re.compile(r"/admin/applications/[\w-]+$"))
    receipt = page.url.rsplit("/", 1)[1]
    assert receipt in receipts
    rec = store.load(r, receipt)
    assert page.locator("#state").inner_text() == "Delivered"
    in_lever = page.get_by_role("link", name="Open in Lever")  # Lever's ids only behind it, never as text
    assert in_lever.get_attribute("href").endswith(f"/candidates/{rec.opportunity_id}")
    assert rec.opportunity_id != ""
    assert in_lever.get_attribute("data-application") == rec.lever_application_id
    assert rec.opportunity_id not in page.locator("main").inner_text()
    assert receipt not in page.locator("main").inner_text()
    assert page.locator("#reference").inner_text() == store.reference(receipt)
    assert rec.lever_application_id in {a["id"] for a in sandbox.received()["applications"]}

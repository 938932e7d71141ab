"""The capture page on a phone at a booth, in headless Chromium: offline, three captures, a reload, back online."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import redis
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect

from jobsite.console import accounts
from jobsite.sourcing import events, people

from .helpers import LiveServer, Sandbox, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.slow]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "screenshots"


def test_captures_made_offline_survive_a_reload_and_arrive_once(browser, live: LiveServer, r: redis.Redis,
                                                                 sandbox: Sandbox) -> None:
    accounts.add_user(r, "rita@acme.test", "a long enough password", accounts.Role.ADMIN)
    postings = [p["id"] for p in sandbox.public_postings()[:2]]
    event = events.add(r, "Berlin Robotics Meetup", "2026-12-03", postings)
    context = browser.new_context(viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True)
    page = context.new_page()
    page.set_default_timeout(20_000)
    try:
        page.goto(f"{live.url}/admin/login?next=/admin/events/{event.id}/capture")
        page.fill("#email", "rita@acme.test")
        page.fill("#password", "a long enough password")
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(re.compile(r"/capture$"))
        expect(page.locator("body")).to_have_attribute("data-offline-ready", "true")  # cached for offline use
        wait_for(lambda: page.evaluate("navigator.serviceWorker.controller !== null"), what="the service worker")

        context.set_offline(True)
        for n in range(3):
            page.fill("#c-name", f"Person {n}")
            page.fill("#c-email", f"person{n}@example.com")
            page.locator("label.toggle", has_text=sandbox.state.postings[postings[n % 2]]["text"]).click()
            page.get_by_role("button", name="Save and next person").click()
            expect(page.locator("#outbox")).to_have_attribute("data-waiting", str(n + 1))
            expect(page.locator("#c-name")).to_be_focused()  # the next person: type at once
        page.reload()  # offline: the service worker answers from its cache, IndexedDB still holds the three
        expect(page.locator("#outbox")).to_have_attribute("data-waiting", "3")
        assert "3 captures wait" in page.locator("#outbox").inner_text()
        assert not r.zcard(people.ALL)  # nothing reached the console while offline

        context.set_offline(False)
        expect(page.locator("#outbox")).to_have_attribute("data-waiting", "0", timeout=30_000)
        wait_for(lambda: len(people.of_event(r, event.id)) == 3, what="the three captures")
        captured = people.of_event(r, event.id)
        assert sorted(p.name for p in captured) == ["Person 0", "Person 1", "Person 2"]
        assert len({p.client_id for p in captured}) == 3
        assert [len(p.sends) for p in captured] == [1, 1, 1]
        assert {p.recruiter for p in captured} == {"rita@acme.test"}

        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "capture-390.png"), full_page=True)
        scroll, inner = page.evaluate("[document.documentElement.scrollWidth, innerWidth]")
        assert scroll <= inner
        results = Axe().run(page)
        assert results.violations_count == 0, results.generate_report()
    finally:
        context.close()


def test_the_talent_community_page_on_a_phone(page, live: LiveServer, r: redis.Redis, sandbox: Sandbox) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(live.url + "/")
    page.get_by_role("link", name="Don't see the right job? Join our talent community").first.click()
    page.wait_for_url(re.compile(r"/talent$"))
    page.get_by_role("button", name="Join the talent community").click()  # empty: errors, nothing sent
    expect(page.locator(".error-summary")).to_be_visible()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "talent-errors-390.png"), full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth")
    results = Axe().run(page)
    assert results.violations_count == 0, results.generate_report()
    page.fill("#t-name", "Ada Lovelace")
    page.fill("#t-email", "ada@example.com")
    page.locator("#t-teams label").first.click()
    page.locator("label[for=t-consent]").click()
    page.get_by_role("button", name="Join the talent community").click()
    expect(page.get_by_role("heading", name="Welcome to our talent community")).to_be_visible()
    assert [p.name for p in people.talent_community(r)] == ["Ada Lovelace"]


def test_a_shared_phone_keeps_nothing_of_the_last_recruiter(browser, live: LiveServer, r: redis.Redis,
                                                            sandbox: Sandbox) -> None:
    """Issue 28, item 4: after sign-out the service worker, Cache Storage and the outbox stayed (names, emails,
    notes, readable offline); refused captures stayed for good; the next recruiter to sign in sent the previous one's
    pending captures as themselves. Now the outbox is the signed-in recruiter's, a refused capture can be deleted,
    and sign-out clears the site's storage and caches."""
    for email in ("rita@acme.test", "sam@acme.test"):
        accounts.add_user(r, email, "a long enough password", accounts.Role.ADMIN)
    event = events.add(r, "Berlin Robotics Meetup", "2026-12-03", [])
    capture = f"{live.url}/admin/events/{event.id}/capture"
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    page.set_default_timeout(20_000)

    def sign_in(email: str) -> None:
        page.goto(f"{live.url}/admin/login?next=/admin/events/{event.id}/capture")
        page.fill("#email", email)
        page.fill("#password", "a long enough password")
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(re.compile(r"/capture$"))
        expect(page.locator("body")).to_have_attribute("data-offline-ready", "true")

    def save(name: str, email: str) -> None:
        page.fill("#c-name", name)
        page.fill("#c-email", email)
        page.get_by_role("button", name="Save and next person").click()

    def stored() -> int:
        return page.evaluate("""() => new Promise(done => {
            const req = indexedDB.open("jobsite-capture", 1);
            req.onupgradeneeded = () => req.result.createObjectStore("outbox", { keyPath: "client_id" });
            req.onsuccess = () => { const all = req.result.transaction("outbox").objectStore("outbox").count();
                                    all.onsuccess = () => { req.result.close(); done(all.result); }; };
        })""")

    try:
        sign_in("rita@acme.test")
        save("Refused Once", "refused@localhost")  # the browser takes it; the console does not (no dot)
        expect(page.locator("#refused li")).to_contain_text("Refused Once")
        page.get_by_role("button", name="Delete the capture of Refused Once").click()
        expect(page.locator("#refused")).to_be_hidden()
        assert stored() == 0
        page.route("**/admin/api/events/**", lambda route: route.abort())  # the venue's network fails the send
        save("Salary Talk", "pending@example.com")
        expect(page.locator("#outbox")).to_have_attribute("data-waiting", "1")
        save("Refused Twice", "again@localhost")
        expect(page.locator("#outbox")).to_have_attribute("data-waiting", "2")
        page.goto(f"{live.url}/admin/login")  # the phone passes to a colleague, rita never signed out
        page.unroute("**/admin/api/events/**")
        sign_in("sam@acme.test")
        expect(page.locator("#outbox")).to_have_attribute("data-waiting", "0")
        page.evaluate("window.dispatchEvent(new Event('online'))")  # a send round: nothing of rita's is in it
        expect(page.locator("#refused")).to_be_hidden()
        assert stored() == 2
        assert not r.zcard(people.ALL)

        page.goto(f"{live.url}/admin/")
        page.locator("summary", has_text="sam@acme.test").click()
        page.get_by_role("button", name="Sign out", exact=True).click()
        page.wait_for_url(re.compile(r"/admin/login"))
        assert stored() == 0
        assert page.evaluate("caches.keys()") == []
        assert page.evaluate("navigator.serviceWorker.getRegistrations().then(all => all.length)") == 0
        context.set_offline(True)
        with pytest.raises(PlaywrightError):
            page.goto(capture)  # nothing left to show it from
        assert not r.zcard(people.ALL)
    finally:
        context.close()

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


def kept_by_an_older_page(page, body: dict) -> None:
    """A capture in the outbox as the page kept it before its check was the console's (an email like quick@tap):
    what the console then refuses."""
    page.evaluate(
        """(body) => new Promise((done) => {
        const form = document.getElementById("capture");
        const req = indexedDB.open("jobsite-capture", 1);
        req.onsuccess = () => {
            const t = req.result.transaction("outbox", "readwrite");
            t.objectStore("outbox").put({ client_id: body.client_id, event: form.dataset.event,
                                          owner: form.dataset.owner, at: Date.now(), body });
            t.oncomplete = () => { req.result.close(); done(); };
        };
    })""",
        {"phone": "", "postings": [], "note": "", "rating": 0, **body},
    )


def test_captures_made_offline_survive_a_reload_and_arrive_once(
    browser, live: LiveServer, r: redis.Redis, sandbox: Sandbox
) -> None:
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

        save = page.get_by_role("button", name="Save and next person")
        # Issue 29, 3: the page checks an email as the console does (quick@tap passed the browser, not the console)
        page.fill("#c-name", "Quick Tap")
        page.fill("#c-email", "quick@tap")
        save.click()
        assert page.evaluate("document.getElementById('c-email').validity.patternMismatch")
        assert page.locator("#outbox").get_attribute("data-waiting") == "0"
        assert page.locator("#recent").is_hidden()

        context.set_offline(True)
        for n in range(3):
            page.fill("#c-name", f"Person {n}")
            page.fill("#c-email", f"person{n}@example.com")
            page.locator("label.toggle", has_text=sandbox.state.postings[postings[n % 2]]["text"]).click()
            save.click()
            expect(page.locator("#outbox")).to_have_attribute("data-waiting", str(n + 1))
            expect(page.locator("#saved")).to_have_text(f"Saved \u2713 Person {n} \u00b7 {n + 1} today")
            expect(page.locator("#c-name")).to_be_focused()  # the next person: type at once
            name, bar = page.locator("#c-name").bounding_box(), page.locator(".capture-bar").bounding_box()
            assert name["y"] >= bar["y"] + bar["height"], "the focused field sits under the sticky bar"
        expect(page.locator("#recent li")).to_have_count(3)
        page.fill("#c-name", "Wrong Person")
        page.fill("#c-email", "wrong@example.com")
        save.click()
        expect(page.locator("#outbox")).to_have_attribute("data-waiting", "4")
        page.get_by_role("button", name="Undo the capture of Wrong Person").click()  # not sent yet: undone
        expect(page.locator("#outbox")).to_have_attribute("data-waiting", "3")
        # a capture kept by the page before its check was the console's (quick@tap): the console will refuse it
        kept_by_an_older_page(
            page,
            {
                "name": "Quick Tap",
                "email": "quick@tap",
                "phone": "+49 30 1234567",
                "note": "Met at the robot arm demo",
                "rating": 4,
                "client_id": "quicktap0001abcd",
            },
        )
        page.reload()  # offline: the service worker answers from its cache, IndexedDB still holds the four
        expect(page.locator("#outbox")).to_have_attribute("data-waiting", "4")
        assert "4 captures wait" in page.locator("#outbox").inner_text()
        assert not r.zcard(people.ALL)  # nothing reached the console while offline

        context.set_offline(False)
        expect(page.locator("#outbox")).to_have_attribute("data-waiting", "0", timeout=30_000)
        wait_for(lambda: len(people.of_event(r, event.id)) == 3, what="the three captures")
        captured = people.of_event(r, event.id)
        assert sorted(p.name for p in captured) == ["Person 0", "Person 1", "Person 2"]
        assert len({p.client_id for p in captured}) == 3
        assert [len(p.sends) for p in captured] == [1, 1, 1]
        assert {p.recruiter for p in captured} == {"rita@acme.test"}
        expect(page.locator("#recent li", has_text="Person 0")).to_contain_text("sent")

        # the refused capture opens for editing, nothing of it lost, and goes again once right (offline, then online)
        expect(page.locator("#refused li")).to_contain_text("Quick Tap")
        page.get_by_role("button", name="Edit the capture of Quick Tap").click()
        expect(page.locator("#c-email")).to_have_value("quick@tap")
        assert page.locator("#c-phone").input_value() == "+49 30 1234567"
        assert page.locator("#c-note").input_value() == "Met at the robot arm demo"
        assert page.locator("input[name=rating][value='4']").is_checked()
        expect(page.locator("#c-name")).to_be_focused()
        context.set_offline(True)
        page.fill("#c-email", "quick@tap.example")
        save.click()
        expect(page.locator("#outbox")).to_have_attribute("data-waiting", "1")
        expect(page.locator("#refused")).to_be_hidden()
        context.set_offline(False)
        page.evaluate("window.dispatchEvent(new Event('online'))")
        expect(page.locator("#outbox")).to_have_attribute("data-waiting", "0", timeout=30_000)
        quick = next(p for p in people.of_event(r, event.id) if p.name == "Quick Tap")
        assert (quick.email, quick.phone, quick.note, quick.rating, quick.client_id) == (
            "quick@tap.example",
            "+49 30 1234567",
            "Met at the robot arm demo",
            4,
            "quicktap0001abcd",
        )

        # signed in again in another tab: the page's token is stale (a 400); it takes the fresh one and sends
        other = context.new_page()
        other.goto(f"{live.url}/admin/login")
        other.fill("#email", "rita@acme.test")
        other.fill("#password", "a long enough password")
        other.get_by_role("button", name="Sign in").click()
        other.wait_for_url(re.compile(r"/admin/$"))
        other.close()
        page.fill("#c-name", "Other Tab")
        page.fill("#c-email", "other@example.com")
        save.click()
        wait_for(
            lambda: "Other Tab" in [p.name for p in people.of_event(r, event.id)],
            timeout=8,
            what="the capture, at once (the page sends every 10 s)",
        )
        expect(page.locator("#outbox")).to_have_attribute("data-waiting", "0")
        assert page.locator("#signin").is_hidden()

        # the session ends (signed out elsewhere, or expired): signing in again happens here, the capture kept
        accounts.close_all_sessions(r, "rita@acme.test")
        page.fill("#c-name", "After Hours")
        page.fill("#c-email", "after@example.com")
        save.click()
        expect(page.locator("#signin")).to_be_visible()
        expect(page.locator("#outbox")).to_have_attribute("data-waiting", "1")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "capture-signin-390.png"), full_page=True)
        results = Axe().run(page)
        assert results.violations_count == 0, results.generate_report()
        page.fill("#s-email", "rita@acme.test")
        page.fill("#s-password", "a long enough password")
        page.locator("#signin").get_by_role("button", name="Sign in").click()
        expect(page.locator("#signin")).to_be_hidden()
        expect(page.locator("#outbox")).to_have_attribute("data-waiting", "0", timeout=30_000)
        assert "After Hours" in [p.name for p in people.of_event(r, event.id)]
        expect(page.locator("#saved")).to_contain_text("6 today")

        for width, height in ((390, 844), (1280, 800)):
            page.set_viewport_size({"width": width, "height": height})
            page.screenshot(path=str(ARTIFACTS / f"capture-{width}.png"), full_page=True)
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


def test_a_shared_phone_keeps_nothing_of_the_last_recruiter(
    browser, live: LiveServer, r: redis.Redis, sandbox: Sandbox
) -> None:
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
        kept_by_an_older_page(
            page, {"name": "Refused Once", "email": "refused@localhost", "client_id": "refusedonce00001"}
        )  # the console refuses it (no dot)
        page.reload()
        expect(page.locator("#refused li")).to_contain_text("Refused Once")
        page.get_by_role("button", name="Delete the capture of Refused Once").click()
        expect(page.locator("#refused")).to_be_hidden()
        assert stored() == 0
        page.route("**/admin/api/events/**", lambda route: route.abort())  # the venue's network fails the send
        save("Salary Talk", "pending@example.com")
        expect(page.locator("#outbox")).to_have_attribute("data-waiting", "1")
        save("Refused Twice", "again@example.com")
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


def test_a_refused_capture_is_edited_offline_and_accepted_online_at_a_desk(
    browser, live: LiveServer, r: redis.Redis, sandbox: Sandbox
) -> None:
    """Issue 29's done-when at the desk's width (the walk above is the phone's): a capture the console refuses
    opens for editing with nothing lost, is corrected offline, and is accepted once back online."""
    accounts.add_user(r, "rita@acme.test", "a long enough password", accounts.Role.ADMIN)
    event = events.add(r, "Lyon Job Fair", "2026-12-04", [sandbox.public_postings()[0]["id"]])
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(20_000)
    try:
        page.goto(f"{live.url}/admin/login?next=/admin/events/{event.id}/capture")
        page.fill("#email", "rita@acme.test")
        page.fill("#password", "a long enough password")
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(re.compile(r"/capture$"))
        expect(page.locator("body")).to_have_attribute("data-offline-ready", "true")
        kept_by_an_older_page(
            page,
            {
                "name": "Desk Person",
                "email": "desk@person",
                "phone": "+33 4 72 00 00 00",
                "note": "Asked about night shifts",
                "rating": 3,
                "client_id": "deskperson000001",
            },
        )
        page.reload()  # online: the page sends what it keeps, the console refuses the address
        expect(page.locator("#refused li")).to_contain_text("Desk Person", timeout=30_000)
        assert not people.of_event(r, event.id)
        page.get_by_role("button", name="Edit the capture of Desk Person").click()
        expect(page.locator("#c-email")).to_have_value("desk@person")
        assert page.locator("#c-phone").input_value() == "+33 4 72 00 00 00"
        assert page.locator("#c-note").input_value() == "Asked about night shifts"
        assert page.locator("input[name=rating][value='3']").is_checked()
        context.set_offline(True)
        page.fill("#c-email", "desk@person.example")
        page.get_by_role("button", name="Save and next person").click()
        expect(page.locator("#outbox")).to_have_attribute("data-waiting", "1")
        expect(page.locator("#refused")).to_be_hidden()
        assert not people.of_event(r, event.id)  # offline: kept on the page
        context.set_offline(False)
        page.evaluate("window.dispatchEvent(new Event('online'))")
        expect(page.locator("#outbox")).to_have_attribute("data-waiting", "0", timeout=30_000)
        [desk] = people.of_event(r, event.id)
        assert (desk.email, desk.phone, desk.note, desk.rating, desk.client_id) == (
            "desk@person.example",
            "+33 4 72 00 00 00",
            "Asked about night shifts",
            3,
            "deskperson000001",
        )
        assert page.evaluate("document.documentElement.scrollWidth <= innerWidth")
        results = Axe().run(page)
        assert results.violations_count == 0, results.generate_report()
    finally:
        context.close()

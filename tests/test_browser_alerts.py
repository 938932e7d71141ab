"""Job alerts in headless Chromium at a phone's and a desk's width: "Email me jobs like these" from the filtered job
list, the request page, the confirmation email read from the sandbox's outbox, the confirm page's one button, the
manage page (rhythm changed, then stopped) and the one-click stop page; axe finds nothing on each page and the Nu
checker no error on the new pages in en, de and fr. Screenshots of each page go to $JOBSITE_SHOTS when it is set."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from urllib.parse import quote

import pytest
import redis
from playwright.sync_api import expect

from jobsite.alerts import subscriptions as subs
from jobsite.alerts.subscriptions import Frequency, State
from jobsite.sandbox import SandboxServer
from jobsite.services import Services
from jobsite.settings import Settings
from jobsite.web.app import create_app
from jobsite.worker import tasks

from .helpers import LiveServer, Sandbox, outbox_mails, simple_posting
from .test_browser_pages import axe, run_axe
from .test_html_valid import VNU
from .test_mail import mail_settings

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.mark.parametrize("width", [390, 1280])
def test_ask_confirm_manage_stop(
    browser, width: int, settings: Settings, r: redis.Redis, sandbox: Sandbox, outbox: SandboxServer, tmp_path: Path
) -> None:
    assert outbox.smtp is not None
    s = mail_settings(settings, outbox.smtp.port)
    live = LiveServer(create_app(s))
    context = browser.new_context(viewport={"width": width, "height": 900})
    context.add_init_script(script=axe.axe_script)
    page = context.new_page()
    page.set_default_timeout(20_000)
    pages: dict[str, str] = {}
    shots = os.environ.get("JOBSITE_SHOTS")

    def checked(name: str) -> None:
        results = run_axe(page)
        assert results.violations_count == 0, f"{name} at {width} px:\n{results.generate_report()}"
        assert page.evaluate("document.documentElement.scrollWidth <= innerWidth"), f"{name} scrolls sideways"
        pages[name] = page.content()
        if shots:
            page.screenshot(path=f"{shots}/{name}-{width}.png", full_page=True)

    try:
        address = f"ada{width}@example.com"
        team = sandbox.public_postings()[0]["categories"]["team"]
        page.goto(f"{live.url}/?team={quote(team)}&q=engineer")
        if shots:
            page.screenshot(path=f"{shots}/jobs-{width}.png", full_page=True)
        page.get_by_role("link", name="Email me jobs like these").click()
        expect(page.get_by_role("heading", name="Get job alerts")).to_be_visible()
        expect(page.locator("#a-team")).to_have_value(team)
        expect(page.locator("#a-q")).to_have_value("engineer")
        checked("new")
        page.get_by_role("button", name="Email me these jobs").click()  # no address: said, choices kept
        expect(page.locator(".error-summary")).to_contain_text("valid email address")
        expect(page.locator("#a-q")).to_have_value("engineer")
        checked("new-error")
        page.fill("#a-email", address)
        page.get_by_label("Once a week").check()
        page.get_by_role("button", name="Email me these jobs").click()
        expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
        checked("asked")
        [ada] = subs.of_address(r, address)
        assert (ada.state, ada.frequency, ada.filters) == (
            State.PENDING,
            Frequency.WEEKLY,
            {"team": team, "q": "engineer"},
        )

        tasks.use(Services(s))
        assert tasks.send_alert_confirmation(ada.id) == "sent"
        [mail] = outbox_mails(outbox, address)
        [link] = mail["links"]
        page.goto(link.replace(s.public_url or "", live.url))
        expect(page.get_by_role("heading", name="Confirm your job alerts")).to_be_visible()
        checked("confirm")
        assert subs.get(r, ada.id).state == State.PENDING  # opening the link is not confirming
        page.get_by_role("button", name="Start my job alerts").click()
        expect(page.get_by_role("heading", name="Your job alerts are on")).to_be_visible()
        checked("confirmed")
        assert subs.get(r, ada.id).state == State.CONFIRMED

        page.get_by_role("link", name="Change or stop these alerts").click()
        expect(page.get_by_role("heading", name="Your job alerts")).to_be_visible()
        checked("manage")
        page.get_by_label("Once a day").check()
        page.get_by_role("button", name="Save changes").click()
        expect(page.get_by_role("status")).to_contain_text("Your changes are saved")
        assert subs.get(r, ada.id).frequency == Frequency.DAILY
        page.get_by_role("button", name="Stop these alerts").click()
        expect(page.get_by_role("status")).to_contain_text("Your job alerts are stopped")
        checked("manage-stopped")
        assert subs.get(r, ada.id).state == State.STOPPED

        other = subs.subscribe(r, f"bob{width}@example.com", {"location": "Berlin"}, "instant", "en").subscription
        subs.confirm(r, other.id)
        stop = subs.unsubscribe_url(s, other.id).replace(s.public_url or "", live.url)
        page.goto(stop)
        expect(page.get_by_role("heading", name="Stop job alerts")).to_be_visible()
        checked("stop")
        page.get_by_role("button", name="Stop these alerts").click()
        expect(page.get_by_role("heading", name="Your job alerts are stopped")).to_be_visible()
        checked("stop-done")
        assert subs.get(r, other.id).state == State.STOPPED

        # the unticked choices on the application form and the talent community's, as offered with a mail server
        page.goto(f"{live.url}/jobs/{simple_posting(sandbox)['id']}/apply")
        expect(page.get_by_label("Tell me about similar jobs by email", exact=False)).not_to_be_checked()
        checked("apply-choice")
        page.goto(f"{live.url}/talent")
        expect(page.get_by_label("Also email me new jobs that fit my interests", exact=False)).not_to_be_checked()
        checked("talent-choice")

        if width == 1280:  # the new pages in de and fr through axe, then the Nu checker once on all of them
            third = subs.subscribe(r, "cleo@example.com", {"q": "python"}, "daily", "en").subscription
            for lang in ("de", "fr"):
                for name, url in (
                    ("new", f"{live.url}/alerts/new?team={quote(team)}"),
                    ("asked", f"{live.url}/alerts/asked"),
                    ("confirm", subs.confirm_url(s, third.id)),
                    ("manage", subs.manage_url(s, third.id)),
                    ("stop", subs.unsubscribe_url(s, third.id)),
                ):
                    page.goto(url.replace(s.public_url or "", live.url) + ("&" if "?" in url else "?") + f"lang={lang}")
                    expect(page.locator("html")).to_have_attribute("lang", lang)
                    checked(f"{name}-{lang}")  # axe, and the page for the Nu checker
            for name, html in pages.items():
                (tmp_path / f"{name}.html").write_text(html)
            run = subprocess.run(
                [
                    "java",
                    "-Xss1024k",
                    "-jar",
                    str(VNU),
                    "--errors-only",
                    "--format",
                    "json",
                    *sorted(str(f) for f in tmp_path.glob("*.html")),
                ],
                capture_output=True,
                text=True,
                timeout=240,
            )
            messages = json.loads(run.stderr)["messages"]  # the checker's report, even when empty
            found = [
                f"{Path(m['url']).name}:{m.get('lastLine')}: {m['message']}" for m in messages if m["type"] == "error"
            ]
            assert not found, "\n".join(found)
    finally:
        context.close()
        live.stop()

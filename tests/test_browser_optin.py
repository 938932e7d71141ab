"""The talent community's double opt-in in headless Chromium at a phone's and a desk's width: join, the summary, the
opt-in email read from the sandbox's outbox, the confirm page's one button, the manage page, unsubscribe; axe finds
nothing on each page and the Nu checker no error on the new pages in en, de and fr."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import redis
import requests
from playwright.sync_api import expect

from jobsite.sandbox import SandboxServer
from jobsite.services import Services
from jobsite.settings import Settings
from jobsite.sourcing import people
from jobsite.web.app import create_app
from jobsite.worker import tasks

from .helpers import LiveServer, Sandbox, outbox_mails
from .test_browser_pages import axe, run_axe
from .test_html_valid import VNU
from .test_mail import mail_settings

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def held(sandbox: Sandbox) -> list[dict]:
    return list(requests.get(f"{sandbox.url}/_sandbox/opportunities", timeout=5).json()["data"])


@pytest.mark.parametrize("width", [390, 1280])
def test_join_confirm_manage_unsubscribe(
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

    def checked(name: str) -> None:
        results = run_axe(page)
        assert results.violations_count == 0, f"{name} at {width} px:\n{results.generate_report()}"
        assert page.evaluate("document.documentElement.scrollWidth <= innerWidth"), f"{name} scrolls sideways"
        pages[name] = page.content()

    try:
        address = f"ada{width}@example.com"
        page.goto(f"{live.url}/talent")
        page.get_by_role("button", name="Join the talent community").click()  # empty: errors named per field
        expect(page.locator(".error-summary")).to_contain_text("Full name: ")
        page.fill("#t-name", "Ada Lovelace")
        page.fill("#t-email", address)
        page.locator("#t-teams label").first.click()
        page.locator("label[for=t-consent]").click()
        page.get_by_role("button", name="Join the talent community").click()
        expect(page.get_by_role("heading", name="Check your email to finish joining")).to_be_visible()
        expect(page.locator("dl.summary")).to_contain_text("Ada Lovelace")
        checked("joined")
        [ada] = people.talent_community(r)
        assert ada.unconfirmed

        tasks.use(Services(s))
        assert tasks.send_optin_email(ada.id) == "sent"
        [mail] = outbox_mails(outbox, address)
        link, manage = mail["links"]
        page.goto(link.replace(s.public_url or "", live.url))
        checked("confirm")
        assert people.load(r, ada.id).unconfirmed  # opening the link is not confirming
        page.get_by_role("button", name="Confirm and join").click()
        expect(page.get_by_role("heading", name="You have joined our talent community")).to_be_visible()
        checked("confirmed")
        assert not people.load(r, ada.id).unconfirmed

        page.get_by_role("link", name="Change your interests, unsubscribe or leave").click()
        expect(page.get_by_role("heading", name="Your talent community membership")).to_be_visible()
        checked("manage")
        page.get_by_role("button", name="Unsubscribe from emails").click()
        expect(page.get_by_role("status")).to_contain_text("we will not email you again")
        checked("unsubscribed")
        assert people.load(r, ada.id).unsubscribed
        assert tasks.send_optin_email(ada.id) == "sent"  # the one email, recorded: never a second
        assert len(outbox_mails(outbox, address)) == 1

        # Joining twice: one record, one opportunity (the page says so, and shows nothing of the member).
        assert tasks.deliver_sourced(ada.id) == "delivered"
        page.goto(f"{live.url}/talent")
        page.fill("#t-name", "Someone Else")
        page.fill("#t-email", address.upper())
        page.locator("label[for=t-consent]").click()
        page.get_by_role("button", name="Join the talent community").click()
        expect(page.get_by_role("heading", name="This address is already in our talent community")).to_be_visible()
        checked("member")
        assert "Ada" not in page.locator("main").inner_text()
        assert [p.id for p in people.talent_community(r)] == [ada.id]
        assert tasks.deliver_sourced(ada.id) == "skipped"
        [opportunity] = [o for o in held(sandbox) if address in o["emails"]]
        prefix = s.tag_prefix

        # Changed interests retag the opportunity in Lever, once; withdrawing consent tells Lever and ends it.
        page.goto(manage.replace(s.public_url or "", live.url))
        boxes = page.locator("form.talent input[name=teams]")
        first, second = boxes.nth(0).get_attribute("value"), boxes.nth(1).get_attribute("value")
        assert boxes.nth(0).is_checked()
        boxes.nth(0).uncheck()
        boxes.nth(1).check()
        page.get_by_role("button", name="Save my interests").click()
        expect(page.get_by_role("status")).to_contain_text("Your interests are saved")
        expect(page.locator("form.talent input[name=teams]").nth(1)).to_be_checked()
        checked("saved")
        if width == 1280:  # for the Nu checker below, in de and fr as served, while the link still leads somewhere
            for lang in ("de", "fr"):
                pages[f"manage-{lang}"] = requests.get(
                    manage.replace(s.public_url or "", live.url) + f"?lang={lang}", timeout=10
                ).text
        assert tasks.deliver_sourced(ada.id) == "skipped"  # the change told to Lever
        tags = next(o for o in held(sandbox) if o["id"] == opportunity["id"])["tags"]
        assert f"{prefix} interest: {second}" in tags
        assert f"{prefix} interest: {first}" not in tags
        page.get_by_role("button", name="Withdraw consent and delete my details").click()
        expect(page.get_by_role("status")).to_contain_text("You have left our talent community")
        checked("left")
        assert tasks.deliver_sourced(ada.id) == "skipped"
        tags = next(o for o in held(sandbox) if o["id"] == opportunity["id"])["tags"]
        assert f"{prefix} consent withdrawn" in tags
        notes = [n for n in sandbox.received()["notes"] if n["opportunity"] == opportunity["id"]]
        assert [n["text"].split(":")[0] for n in notes] == ["Consent withdrawn"]
        calls = len(sandbox.state.requests)
        tasks.upkeep()
        assert tasks.deliver_sourced(ada.id) == "skipped"  # nothing is sent again
        assert len(sandbox.state.requests) == calls
        assert len(outbox_mails(outbox, address)) == 1
        assert [o["id"] for o in held(sandbox) if address in o["emails"]] == [opportunity["id"]]
        gone = people.load(r, ada.id)
        assert gone.purged
        assert not gone.email

        if width == 1280:  # the Nu checker once: the new pages as shown, and in de and fr as served
            for lang in ("de", "fr"):
                for name, url in (("confirm", link),):
                    pages[f"{name}-{lang}"] = requests.get(
                        url.replace(s.public_url or "", live.url) + f"?lang={lang}", timeout=10
                    ).text
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
            messages = json.loads(run.stderr or "{}").get("messages", [])
            found = [
                f"{Path(m['url']).name}:{m.get('lastLine')}: {m['message']}" for m in messages if m["type"] == "error"
            ]
            assert not found, "\n".join(found)
    finally:
        context.close()
        live.stop()

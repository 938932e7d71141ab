"""Every candidate and console page at 390 and 1280 px, in the default look and a company's brand: a screenshot kept
in ./test-artifacts/screenshots/ (to look at), no sideways scrolling, and axe-core finds no violation."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import redis
import requests
from axe_playwright_python.sync_playwright import Axe

from jobsite import create_app, users
from jobsite.settings import Settings, load_settings

from .conftest import LiveServer, Sandbox
from .helpers import lever_body, simple_posting
from .test_brand import brand_env

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "screenshots"
WIDTHS = (390, 1280)
ADMIN = ("ada@acme.test", "correct horse battery")
axe = Axe()


@pytest.fixture(params=["default", "brand"])
def site(request, settings: Settings, tmp_path: Path, r: redis.Redis) -> Iterator[tuple[str, LiveServer]]:  # type: ignore[no-untyped-def]
    if request.param == "brand":
        settings = replace(settings, brand=load_settings(brand_env(tmp_path), data_dir=settings.data_dir).brand)
    server = LiveServer(create_app(settings))
    yield request.param, server
    server.stop()


def check(page, theme: str, name: str) -> None:  # type: ignore[no-untyped-def]
    """Screenshot, overflow and axe at each width, for the page already loaded."""
    folder = ARTIFACTS / theme
    folder.mkdir(parents=True, exist_ok=True)
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(folder / f"{name}-{width}.png"), full_page=True)
        scroll, inner = page.evaluate("[document.documentElement.scrollWidth, innerWidth]")
        assert scroll <= inner, f"{theme} {name} at {width} px scrolls sideways ({scroll} > {inner})"
        results = axe.run(page)
        assert results.violations_count == 0, f"{theme} {name} at {width} px:\n{results.generate_report()}"


def test_candidate_pages(page, site, sandbox: Sandbox) -> None:  # type: ignore[no-untyped-def]
    theme, live = site
    posting = simple_posting(sandbox)
    receipt = requests.post(f"{live.url}/api/v1/postings/{posting['id']}/applications",
                            json=lever_body(sandbox, posting["id"], 0), timeout=10).json()["receipt"]
    visits = {"jobs": "/", "jobs-empty": "/?q=zzzz-no-such-job", "posting": f"/jobs/{posting['id']}",
              "apply": f"/jobs/{posting['id']}/apply", "receipt": f"/applications/{receipt}",
              "not-found": "/no-such-page"}
    for name, path in visits.items():
        page.goto(live.url + path)
        if theme == "brand":
            assert page.locator("img.logo").count() == 1 and page.locator(".footer-links a").count() == 3, name
        check(page, theme, name)
    page.goto(live.url + f"/jobs/{posting['id']}/apply")
    page.get_by_role("button", name="Submit application").click()
    page.locator("#error-summary").wait_for(state="visible")
    check(page, theme, "apply-errors")


def test_console_pages(page, site, r: redis.Redis, sandbox: Sandbox) -> None:  # type: ignore[no-untyped-def]
    theme, live = site
    users.add_user(r, *ADMIN, users.Role.ADMIN)
    posting = simple_posting(sandbox)
    receipt = requests.post(f"{live.url}/api/v1/postings/{posting['id']}/applications",
                            json=lever_body(sandbox, posting["id"], 0), timeout=10).json()["receipt"]
    page.goto(live.url + "/admin/")
    page.wait_for_url(re.compile("/admin/login"))
    check(page, theme, "admin-login")
    page.fill("#email", ADMIN[0])
    page.fill("#password", ADMIN[1])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/admin/$"))
    for name, path in {"admin-dashboard": "/admin/", "admin-applications": "/admin/applications",
                       "admin-application": f"/admin/applications/{receipt}", "admin-audit": "/admin/audit"}.items():
        page.goto(live.url + path)
        check(page, theme, name)

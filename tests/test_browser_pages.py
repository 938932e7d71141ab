"""Every candidate and console page at 390 and 1280 px, in the default look and a company's brand: no sideways
scrolling and nothing sticking out of its box at each width; at the phone width, axe-core finds no violation and a
screenshot is kept in ./test-artifacts/screenshots/ (to look at)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import redis
import requests
from axe_playwright_python.base import AxeResults
from axe_playwright_python.sync_playwright import Axe

from jobsite.console import accounts
from jobsite.delivery import deliverer
from jobsite.followup import report
from jobsite.records import store
from jobsite.settings import Settings, load_settings
from jobsite.sourcing import events
from jobsite.web.app import create_app
from jobsite.worker import tasks

from .helpers import ADMIN, LiveServer, Sandbox, brand_env, lever_body, simple_posting

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "screenshots"
WIDTHS = (390, 1280)
SCREENSHOT_WIDTH = 390  # one picture per page and look, to look at: the phone, where layouts break first
axe = Axe()


@pytest.fixture
def axe_in_every_document(page) -> None:
    """Every document the page opens gets axe-core (about 550 KB of script) from its context's init script, sent to
    Chromium once, instead of once per check through page.evaluate (as Axe.run does)."""
    page.context.add_init_script(script=axe.axe_script)


def screenshot(page, path: Path) -> None:
    """The page as a person sees it, kept for a human to look at. Chromium on an oversubscribed machine sometimes
    cannot capture ("Unable to capture screenshot"): one more try, since the picture asserts nothing."""
    from playwright.sync_api import Error

    try:
        page.screenshot(path=str(path), full_page=True)
    except Error:
        page.screenshot(path=str(path), full_page=True)


def run_axe(page) -> AxeResults:
    """axe-core on the page as it is, as Axe.run runs it (violations only), axe being in the document already."""
    return AxeResults(page.evaluate("axe.run({resultTypes: ['violations']})"))


@pytest.fixture(params=["default", "brand"])
def site(request, settings: Settings, tmp_path: Path, r: redis.Redis) -> Iterator[tuple[str, LiveServer]]:
    if request.param == "brand":
        settings = replace(settings, brand=load_settings(brand_env(tmp_path), data_dir=settings.data_dir).brand)
    server = LiveServer(create_app(settings))
    yield request.param, server
    server.stop()


# Every visible element that sticks out of its container: its box past its parent's box (more than a pixel, for
# rounding), or content past its own edge (a long word through a card). Not counted: what is positioned out of the
# flow on purpose (absolute or fixed: the skip link), visually hidden text and what is inside it (1 px, clipped), what
# a clipping or scrolling parent holds,
# children of inline boxes (a line box is not a container), form controls (they scroll their own text; SVG has no
# such width to compare either), and what is
# not drawn (display: none, visibility: hidden, the inside of a closed <details>, options).
OVERLAPS = """() => {
  const slack = 1, found = [];
  const name = (el) => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") +
    (typeof el.className === "string" && el.className ? "." + el.className.trim().split(/\\s+/).join(".") : "");
  const clips = (style) => style.overflowX !== "visible" || style.overflowY !== "visible";
  const srOnly = (el) => {  // in a visually hidden box (1 px, clipped): read by screen readers, never seen
    for (let up = el; up; up = up.parentElement) {
      const b = up.getBoundingClientRect();
      if (b.width <= 1 && b.height <= 1 && clips(getComputedStyle(up))) return true;
    }
    return false;
  };
  for (const el of document.body.querySelectorAll("*")) {
    if (!el.checkVisibility({ visibilityProperty: true }) || srOnly(el)) continue;  // also a closed <details>
    const style = getComputedStyle(el);
    if (["absolute", "fixed"].includes(style.position)) continue;
    const box = el.getBoundingClientRect();
    if (box.width === 0 || box.height === 0) continue;
    const control = ["INPUT", "SELECT", "TEXTAREA", "OPTION"].includes(el.tagName);
    if (!control && el instanceof HTMLElement && style.display !== "inline" && !clips(style)
        && el.clientWidth > 0 && el.scrollWidth > el.clientWidth + slack) {
      found.push(`${name(el)}: content ${el.scrollWidth} px wide in ${el.clientWidth} px`);
    }
    const parent = el.parentElement;
    if (!parent || parent === document.body || parent === document.documentElement) continue;
    const parentStyle = getComputedStyle(parent);
    if (parentStyle.display === "inline" || parentStyle.display === "contents" || clips(parentStyle)) continue;
    const outer = parent.getBoundingClientRect();
    if (box.left < outer.left - slack || box.right > outer.right + slack ||
        box.top < outer.top - slack || box.bottom > outer.bottom + slack) {
      const r = (b) => `${Math.round(b.left)},${Math.round(b.top)}-${Math.round(b.right)},${Math.round(b.bottom)}`;
      found.push(`${name(el)} [${r(box)}] outside ${name(parent)} [${r(outer)}]`);
    }
  }
  return found;
}"""


def check(page, theme: str, name: str, url: str | None = None) -> None:
    """Overflow and overlap at each width; axe and a screenshot at SCREENSHOT_WIDTH, the phone, where layouts break
    first and targets are smallest. `url` is loaded once, at the first width, and laid out again at the next (as a
    window resized); without it, the page is checked as it is."""
    folder = ARTIFACTS / theme
    folder.mkdir(parents=True, exist_ok=True)
    for i, width in enumerate(WIDTHS):
        page.set_viewport_size({"width": width, "height": 900})
        if url and i == 0:
            page.goto(url)
        if width == SCREENSHOT_WIDTH:
            screenshot(page, folder / f"{name}-{width}.png")
            results = run_axe(page)
            assert results.violations_count == 0, f"{theme} {name} at {width} px:\n{results.generate_report()}"
        scroll, inner = page.evaluate("[document.documentElement.scrollWidth, innerWidth]")
        assert scroll <= inner, f"{theme} {name} at {width} px scrolls sideways ({scroll} > {inner})"
        overlaps = page.evaluate(OVERLAPS)
        assert not overlaps, f"{theme} {name} at {width} px: " + "; ".join(overlaps[:10])


@pytest.mark.usefixtures("axe_in_every_document")
def test_candidate_pages(page, site, sandbox: Sandbox) -> None:
    """English in the default look; the brand's browser asks for German (Accept-Language), so every page is seen in
    German there too; French, and an embedded page, in both."""
    theme, live = site
    if theme == "brand":
        page.set_extra_http_headers({"Accept-Language": "de-DE,de;q=0.9,en;q=0.5"})
    posting = simple_posting(sandbox)
    receipt = requests.post(
        f"{live.url}/api/v1/postings/{posting['id']}/applications",
        json=lever_body(sandbox, posting["id"], 0),
        timeout=10,
    ).json()["receipt"]
    visits = {
        "jobs": "/",
        "jobs-empty": "/?q=zzzz-no-such-job",
        "posting": f"/jobs/{posting['id']}",
        "apply": f"/jobs/{posting['id']}/apply",
        "receipt": f"/applications/{receipt}",
        "not-found": "/no-such-page",
        "jobs-fr": "/?lang=fr",
        "jobs-embedded-fr": "/?embed=1&lang=fr",
        "posting-fr": f"/jobs/{posting['id']}?lang=fr",
        "apply-fr": f"/jobs/{posting['id']}/apply?lang=fr",
        "receipt-fr": f"/applications/{receipt}?lang=fr",
    }
    for name, path in visits.items():
        check(page, theme, name, live.url + path)
        said = "fr" if name.endswith("-fr") else "de" if theme == "brand" else "en"
        assert page.locator("html").get_attribute("lang") == said, name
        if theme == "brand" and "embedded" not in name:
            assert page.locator("img.logo").count() == 1, name
            assert page.locator(".footer-links a").count() == 3, name
    page.goto(live.url + f"/jobs/{posting['id']}/apply")
    page.get_by_role("button", name="Bewerbung absenden" if theme == "brand" else "Submit application").click()
    page.locator("#error-summary").wait_for(state="visible")
    check(page, theme, "apply-errors")


@pytest.mark.usefixtures("axe_in_every_document")
def test_console_pages(page, site, r: redis.Redis, sandbox: Sandbox) -> None:
    theme, live = site
    accounts.add_user(r, *ADMIN, accounts.Role.ADMIN)
    posting = simple_posting(sandbox)
    receipt = requests.post(
        f"{live.url}/api/v1/postings/{posting['id']}/applications",
        json=lever_body(sandbox, posting["id"], 0),
        timeout=10,
    ).json()["receipt"]
    page.goto(live.url + "/admin/")
    page.wait_for_url(re.compile("/admin/login"))
    check(page, theme, "admin-login")
    page.fill("#email", ADMIN[0])
    page.fill("#password", ADMIN[1])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/admin/$"))
    svc = live.server.app.extensions["jobsite"]
    assert (
        deliverer.deliver(tasks.use(svc).delivery, receipt).outcome == deliverer.Outcome.DELIVERED
    )  # a person in Lever
    contact = store.load(r, receipt).contact_id
    report.track(r, store.load(r, receipt))  # in the pipeline report, before any sync
    event = events.add(r, "Berlin Robotics Meetup", "2026-12-03", [p["id"] for p in sandbox.public_postings()[:2]])
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    assert (
        page.request.post(
            f"{live.url}/admin/api/events/{event.id}/people",
            headers={"X-CSRF-Token": token},
            data={
                "name": "Grace Hopper",
                "email": "grace@example.com",
                "rating": 4,
                "note": "Knows compilers.\nCall after the fair.",
                "client_id": "0123456789abcdef",
                "postings": event.postings[:1],
            },
        ).status
        == 202
    )
    for name, path in {
        "admin-dashboard": "/admin/",
        "admin-applications": "/admin/applications",
        "admin-application": f"/admin/applications/{receipt}",
        "admin-audit": "/admin/audit",
        "admin-events": "/admin/events",
        "admin-event": f"/admin/events/{event.id}",
        "admin-pipeline": "/admin/pipeline",
        "admin-alerts": "/admin/alerts",
        "admin-person": f"/admin/people/{contact}",
    }.items():
        check(page, theme, name, live.url + path)
        assert "(s)" not in page.locator("main").inner_text(), name  # proper plurals
    assert page.get_by_role("link", name=re.compile("^Open in Lever")).count() >= 2  # the person, as checked last
    typed = store.reference(receipt).lower().replace("-", "")  # as a candidate reads it out on the phone
    page.get_by_role("search", name="Find a person").get_by_role("searchbox").fill(typed)
    page.get_by_role("search", name="Find a person").get_by_role("button", name="Find").click()
    page.wait_for_url(re.compile(r"/admin/search\?q="))
    check(page, theme, "admin-search")
    assert page.locator("#found-applications td[data-label=Reference]").inner_text() == store.reference(receipt)
    page.locator("#found-applications").get_by_role("link", name="Candidate 0").click()
    page.wait_for_url(re.compile(f"/admin/applications/{receipt}$"))
    assert page.locator("h1").inner_text() == "Candidate 0"  # names first
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(live.url + "/admin/pipeline")
    row = page.locator("#pipeline-rows tbody tr").first
    assert row.locator("td[data-label=Stage]").inner_text() == "New applicant"  # a name, not applicant-new
    assert row.get_by_role("link", name="Their applications").get_attribute("href") == f"/admin/people/{contact}"
    assert row.get_by_role("link", name="Open in Lever").count() == 1
    steps = page.locator("table.funnel").first.locator("td[data-label=Step]").all_inner_texts()
    assert steps[0] == "Applied", steps
    assert steps[-1] == "Hired", steps
    assert len(steps) >= 5, steps  # through every stage
    assert (
        row.locator("td[data-label=Stage]").evaluate("el => getComputedStyle(el, '::before').content") == '"Stage: "'
    )  # a labelled card on a phone
    assert page.locator("table.funnel").first.bounding_box()["height"] < 400  # the funnel stays a table
    assert page.get_by_label("Created until").count() == 1
    assert page.get_by_role("button", name="Filter").bounding_box()["width"] < 150  # not stretched


# What is cut: an element past the viewport's sides or a clipping (scrolling) ancestor's, or whose text is wider than
# its box.
WHOLLY_SHOWN = """(selector) => [...document.querySelectorAll(selector)].filter((el) => {
  const box = el.getBoundingClientRect();
  if (box.left < 0 || box.right > innerWidth || el.scrollWidth > el.clientWidth + 1) return true;
  for (let up = el.parentElement; up; up = up.parentElement) {
    const style = getComputedStyle(up), outer = up.getBoundingClientRect();
    if ((style.overflowX !== "visible" || style.overflowY !== "visible") &&
        (box.left < outer.left - 1 || box.right > outer.right + 1)) return true;
  }
  return false;
}).map((el) => el.textContent.trim() || el.outerHTML.slice(0, 60))"""


# Posting rows wholly inside the viewport, before any scrolling.
VISIBLE_POSTINGS = """() => Array.from(document.querySelectorAll(".posting-card")).filter((card) => {
  const box = card.getBoundingClientRect();
  return box.height > 0 && box.top >= 0 && box.bottom <= innerHeight;
}).length"""


def test_the_first_screen_holds_jobs_and_filters_are_one_tap_away(page, live: LiveServer, sandbox: Sandbox) -> None:
    """At 1280x800 and 390x844 on the sandbox's data: at least 6 and 3 whole postings before scrolling (printed),
    one filter row whose selects submit themselves and are labelled for screen readers, the filters one tap away on a
    phone, empty fields kept out of the URL, and no 'Show jobs' button."""
    team = sandbox.public_postings()[0]["categories"]["team"]
    seen = {}
    for width, height, least in ((1280, 800, 6), (390, 844, 3)):
        page.set_viewport_size({"width": width, "height": height})
        page.goto(live.url + "/")
        seen[width] = page.evaluate(VISIBLE_POSTINGS)
        assert seen[width] >= least, f"{seen[width]} postings on the first screen at {width}x{height}"
        assert page.get_by_role("button", name="Show jobs").count() == 0
        page.screenshot(path=str(ARTIFACTS / f"jobs-first-screen-{width}.png"))
    assert page.get_by_role("combobox", name="Team", include_hidden=True).count() == 1  # labelled for screen readers
    print(f"postings visible before scrolling: {seen[1280]} at 1280x800, {seen[390]} at 390x844")
    panel = page.locator("details.filter-panel")  # the phone, as the loop left it
    assert panel.get_attribute("open") is None  # folded behind its button on a phone
    panel.locator("summary").click()  # one tap
    page.select_option("#filter-team", team)  # submits on change
    page.wait_for_url(re.compile(r"team="))
    assert "?team=" in page.url
    assert "q=" not in page.url
    assert "department=" not in page.url
    assert page.locator("details.filter-panel summary .badge").text_content() == "1 active"
    assert page.evaluate(VISIBLE_POSTINGS) >= 1
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(live.url + "/?q=zzzz-no-such-job")
    assert page.locator("details.filter-panel").get_attribute("open") is not None  # open on a wide screen
    rows = {round(page.locator(sel).bounding_box()["y"]) for sel in ("#q", "#filter-team", "#filter-workplace")}
    assert len(rows) == 1, rows  # search and filters in one row
    assert "Check the spelling" in page.locator(".empty").inner_text()
    page.get_by_role("link", name=re.compile(r"See all \d+ open jobs")).click()
    page.wait_for_url(live.url + "/")


def test_without_javascript_the_search_button_sends_the_filters(browser, live: LiveServer, sandbox: Sandbox) -> None:
    team = sandbox.public_postings()[0]["categories"]["team"]
    context = browser.new_context(java_script_enabled=False, viewport={"width": 1280, "height": 800})
    page = context.new_page()
    try:
        page.goto(live.url + "/")
        page.locator("details.filter-panel summary").click()
        page.select_option("#filter-team", team)
        page.get_by_role("button", name="Search").click()
        page.wait_for_url(re.compile(r"team="))
        expected = [p for p in sandbox.public_postings() if p["categories"]["team"] == team]
        assert page.locator(".posting-card").count() == len(expected)
        page.get_by_role("link", name="Clear filters").click()
        page.wait_for_url(live.url + "/")
    finally:
        context.close()


def test_the_form_has_large_targets_and_names_the_chosen_file(
    page, live: LiveServer, sandbox: Sandbox, tmp_path: Path
) -> None:
    from .helpers import file_posting

    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(live.url + f"/jobs/{file_posting(sandbox)['id']}/apply")
    for choice in page.locator("label.choice").all():
        assert choice.bounding_box()["height"] >= 44  # radios, checkboxes and the consent box
    resume = page.locator("#f-resume")
    assert resume.bounding_box()["height"] >= 44
    cv = tmp_path / "ada-lovelace-cv.pdf"
    cv.write_bytes(b"%PDF-1.4 a CV")
    resume.set_input_files(str(cv))
    assert page.evaluate("document.querySelector('#f-resume').files[0].name") == "ada-lovelace-cv.pdf"
    page.locator('.field[data-field="resume"]').screenshot(path=str(ARTIFACTS / "file-chosen-390.png"))
    page.locator("fieldset.section").last.screenshot(path=str(ARTIFACTS / "consent-390.png"))


def test_the_receipt_follows_the_application_without_a_reload(
    page, live: LiveServer, settings: Settings, sandbox: Sandbox, workers, r: redis.Redis
) -> None:
    from playwright.sync_api import expect

    from jobsite.records.store import State

    from .helpers import wait_for, worker_env

    posting = simple_posting(sandbox)
    receipt = requests.post(
        f"{live.url}/api/v1/postings/{posting['id']}/applications",
        json=lever_body(sandbox, posting["id"], 0),
        timeout=10,
    ).json()["receipt"]
    page.clock.install()  # the page's timers run on a clock the test can move on
    page.goto(live.url + f"/applications/{receipt}")
    shown = page.locator(".reference").inner_text()
    assert re.fullmatch(r"[2-9A-HJKMNP-TW-Z]{4}-[2-9A-HJKMNP-TW-Z]{4}", shown)
    assert shown == store.reference(receipt)
    assert receipt not in page.locator("main").inner_text()  # the token stays in the link
    line = page.locator(".status-line")
    assert "we'll pass it to the hiring team shortly" in line.inner_text()
    assert "Lever" not in page.locator("main").inner_text()
    assert "queued" not in line.inner_text()
    page.evaluate("window.loadedOnce = true")  # gone if the page reloads
    workers.start(worker_env(settings))
    wait_for(lambda: store.load(r, receipt).state == State.DELIVERED, what="the delivery")
    page.clock.fast_forward(5_000)  # the page asks the status API 5 s after loading: now, not in up to 5 s
    expect(line).to_contain_text("With the hiring team", timeout=40_000)
    assert page.evaluate("window.loadedOnce") is True
    assert "done" in (page.locator('[data-step="2"]').get_attribute("class") or "")


def test_the_console_shows_local_times_and_asks_before_risky_actions(
    browser, live: LiveServer, r: redis.Redis, sandbox: Sandbox
) -> None:
    accounts.add_user(r, *ADMIN, accounts.Role.ADMIN)
    posting = simple_posting(sandbox)
    requests.post(
        f"{live.url}/api/v1/postings/{posting['id']}/applications",
        json=lever_body(sandbox, posting["id"], 0),
        timeout=10,
    )
    context = browser.new_context(timezone_id="Europe/Berlin", locale="en-GB")
    page = context.new_page()
    try:
        page.goto(live.url + "/admin/login")
        page.fill("#email", ADMIN[0])
        page.fill("#password", ADMIN[1])
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(re.compile(r"/admin/$"))
        assert page.locator("svg text.tick").count() >= 4  # the chart's time axis is labelled
        first = page.locator("svg text[data-hour]").first
        utc_hour = int(first.get_attribute("data-hour")) // 3600 % 24
        assert first.text_content() == f"{(utc_hour + 1) % 24:02d}:00"  # in Berlin's winter time, not UTC
        assert re.search(r"your time \((CET|GMT\+1)\)", page.locator("figure.chart figcaption").inner_text())
        page.goto(live.url + "/admin/applications")
        received = page.locator("td[data-label=Received] time")
        assert received.get_attribute("datetime").endswith("Z")
        assert re.search(r"CET|GMT\+1", received.inner_text()), received.inner_text()  # the viewer's zone, named
        page.goto(live.url + "/admin/")
        pause = page.get_by_role("button", name="Pause delivery")
        assert "secondary" in pause.get_attribute("class")
        asked = []
        page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))
        pause.click()
        assert asked
        assert asked[0].startswith("Pause delivery?")
        assert page.get_by_role("button", name="Pause delivery").count() == 1  # dismissed: nothing was paused
    finally:
        context.close()


def test_the_overlap_check_sees_what_sticks_out(page, live: LiveServer, sandbox: Sandbox) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(live.url + "/")
    assert page.evaluate(OVERLAPS) == []
    page.evaluate("document.querySelector('.hero p').style.marginLeft = '-2rem'")  # past the band's left edge
    assert any(found.startswith("p [") and "outside section.hero" in found for found in page.evaluate(OVERLAPS))
    page.evaluate("""() => { const p = document.querySelector('.hero p');
                             p.style.marginLeft = ''; p.textContent = 'Werkstudierendenvertretung'.repeat(4); }""")
    assert any(found.startswith("p: content") for found in page.evaluate(OVERLAPS))  # a long word through the band


def test_the_language_switcher_keeps_an_embedded_page_embedded(page, live: LiveServer, sandbox: Sandbox) -> None:
    from urllib.parse import parse_qs, urlencode, urlsplit

    posting = simple_posting(sandbox)
    team = posting["categories"]["team"]
    page.goto(live.url + "/?" + urlencode({"embed": 1, "team": team}))
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.locator(".site-header").count() == 0
    switcher = page.get_by_role("navigation", name="Language")
    switcher.get_by_role("link", name="Deutsch").click()
    page.wait_for_url(re.compile(r"lang=de"))
    assert parse_qs(urlsplit(page.url).query) == {"embed": ["1"], "team": [team], "lang": ["de"]}
    assert page.locator("html").get_attribute("lang") == "de"
    assert (
        page.get_by_role("navigation", name="Sprache").get_by_role("link", name="Deutsch").get_attribute("aria-current")
        == "true"
    )
    page.get_by_role("link", name=posting["text"]).first.click()
    page.get_by_role("link", name="Jetzt bewerben").first.click()
    page.wait_for_url(re.compile(r"/apply\?"))
    assert parse_qs(urlsplit(page.url).query) == {"embed": ["1"], "lang": ["de"]}
    page.get_by_role("button", name="Bewerbung absenden").click()  # nothing filled in: the page's own check
    summary = page.locator("#error-summary")
    summary.wait_for(state="visible")
    assert re.match(r"Bitte prüfen Sie \d+ Antworten", summary.locator("h2").inner_text())
    assert "Geben Sie Ihre E-Mail-Adresse ein." in summary.inner_text()


def test_chromium_gets_the_sandbox_control_page(page, sandbox: Sandbox) -> None:
    page.goto(sandbox.url + "/_sandbox/")  # Chromium's own Accept header, signed-exchange and all
    page.get_by_role("button", name="Switch maintenance mode on").click()
    page.get_by_role("button", name="Switch maintenance mode off").wait_for()
    assert sandbox.state.switches.maintenance is True


@pytest.mark.usefixtures("axe_in_every_document")
def test_the_german_form_says_lever_standard_fields_in_german(page, live: LiveServer, sandbox: Sandbox) -> None:
    """Lever's fixed fields and EEO texts in German, in the labels and the error summary; the company's own
    questions as written; the EEO signature and date say what they are for."""
    from .helpers import eeo_posting

    posting = eeo_posting(sandbox)
    check(page, "default", "apply-de", f"{live.url}/jobs/{posting['id']}/apply?lang=de")
    for label in (
        "Vollständiger Name",
        "E-Mail",
        "Telefon",
        "Lebenslauf",
        "Aktueller Arbeitgeber",
        "Aktueller Wohnort",
        "Geschlecht",
        "Behinderung",
        "Unterschrift",
        "Datum",
    ):
        assert page.get_by_label(re.compile(f"^{label}( \\*|$)")).count() == 1, label
    assert page.locator("#f-eeo-gender option").all_inner_texts()[1:3] == ["Männlich", "Weiblich"]
    assert "unterschreiben" in page.locator("#f-eeo-disabilitySignature-help").inner_text()
    assert page.get_by_label("How did you hear about us?").count() == 1  # the company's question, as written
    page.get_by_role("button", name="Bewerbung absenden").click()
    summary = page.locator("#error-summary")
    summary.wait_for(state="visible")
    assert "Vollständiger Name — Geben Sie Ihren vollständigen Namen ein." in summary.inner_text()
    assert "Full name" not in summary.inner_text()
    assert "Email" not in summary.inner_text()
    check(page, "default", "apply-de-errors")


@pytest.mark.usefixtures("axe_in_every_document")
def test_the_resume_comes_first_and_fills_the_form(page, live: LiveServer, sandbox: Sandbox, tmp_path: Path) -> None:
    """End to end in Chromium, a PDF at 1280 px and a DOCX at 390 px, both built here: choosing the file fills name,
    email, phone and links through POST /api/v1/autofill; what the candidate typed stays, and all can be changed."""
    from playwright.sync_api import expect

    from .helpers import RESUME, file_posting, resume_docx, resume_pdf

    url = f"{live.url}/jobs/{file_posting(sandbox)['id']}/apply"
    pdf, docx = tmp_path / "ada-cv.pdf", tmp_path / "ada-cv.docx"
    pdf.write_bytes(resume_pdf(2))
    docx.write_bytes(resume_docx())
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(url)
    first = page.evaluate("""() => [...document.querySelectorAll('form.apply :is(input, select, textarea)')]
                                   .filter((el) => el.type !== 'hidden' && el.id !== 'website')[0].id""")
    assert first == "f-resume"  # the first thing to fill in
    assert page.get_by_label(re.compile("^Resume/CV")).count() == 1
    page.locator("#f-resume").set_input_files(str(pdf))
    expect(page.locator("#f-fullName")).to_have_value(RESUME["fullName"], timeout=20_000)
    assert page.locator("#f-email").input_value() == RESUME["email"]
    assert page.locator("#f-phone").input_value() == RESUME["phone"]
    assert page.locator('[id="f-urls-LinkedIn"]').input_value() == "https://linkedin.com/in/ada-lovelace"
    assert page.locator('[id="f-urls-GitHub"]').input_value() == "https://github.com/ada"
    assert page.locator('[id="f-urls-Portfolio"]').input_value() == ""
    assert page.locator(".file-drop .file-name").first.inner_text() == "ada-cv.pdf"
    assert page.locator("#f-currentCompany").input_value() == RESUME["currentCompany"]
    assert page.locator("#f-currentLocation").input_value() == RESUME["currentLocation"]
    assert "please check" in page.locator(".autofill-status").inner_text()
    page.fill("#f-fullName", "Ada King")  # the candidate changes what was filled
    assert page.locator("#f-fullName").input_value() == "Ada King"
    assert "filled" not in (page.locator("#f-fullName").get_attribute("class") or "")  # theirs now, not marked
    check(page, "default", "apply-autofilled")

    # Issue 29, 4: a second (right) CV kept the first one's details and said it could not read this one. Now what
    # autofill filled is filled again from it (or emptied when it does not say), and what the person typed stays.
    grace = tmp_path / "grace-cv.docx"
    grace.write_bytes(
        resume_docx(
            [
                "Grace Hopper",
                "Rear admiral at US Navy",
                "Location: Arlington, Virginia",
                "grace@navy.example | +1 202 555 0147",
            ]
        )
    )
    page.locator("#f-resume").set_input_files(str(grace))
    expect(page.locator("#f-email")).to_have_value("grace@navy.example", timeout=20_000)
    assert page.locator("#f-fullName").input_value() == "Ada King"  # typed: kept
    assert page.locator("#f-phone").input_value() == "+1 202 555 0147"
    assert page.locator("#f-currentCompany").input_value() == "US Navy"
    assert page.locator("#f-currentLocation").input_value() == "Arlington, Virginia"
    assert page.locator('[id="f-urls-GitHub"]').input_value() == "https://github.com/ada"  # the docx's own link
    assert page.locator('[id="f-urls-LinkedIn"]').input_value() == ""  # the first CV's, not in this one
    assert "please check" in page.locator(".autofill-status").inner_text()

    page = page.context.new_page()  # a tab of its own: the last one's draft stays in that tab
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(url)
    page.fill("#f-email", "ada@work.example")  # typed before choosing the file: kept
    page.locator("#f-resume").set_input_files(str(docx))
    expect(page.locator("#f-fullName")).to_have_value(RESUME["fullName"], timeout=20_000)
    assert page.locator("#f-email").input_value() == "ada@work.example"
    assert page.locator('[id="f-urls-GitHub"]').input_value() == "https://github.com/ada"
    page.locator("#f-resume").set_input_files(str(grace))  # the other CV: its name, the typed email stays
    expect(page.locator("#f-fullName")).to_have_value("Grace Hopper", timeout=20_000)
    assert page.locator("#f-email").input_value() == "ada@work.example"
    assert page.locator("#f-currentCompany").input_value() == "US Navy"
    page.locator(".resume-first").screenshot(path=str(ARTIFACTS / "resume-filled-390.png"))


@pytest.mark.usefixtures("axe_in_every_document")
def test_the_console_reads_at_a_glance(page, live: LiveServer, r: redis.Redis, sandbox: Sandbox) -> None:
    """At 1280x800 and 390x844: the navigation in one row with the current page marked; while Lever is in maintenance
    and delivery closed, state names whole (no break inside a word) and no pace or end time, only that they wait."""
    accounts.add_user(r, *ADMIN, accounts.Role.ADMIN)
    posting = simple_posting(sandbox)
    sandbox.control("maintenance", on=True)
    for n in range(2):
        requests.post(
            f"{live.url}/api/v1/postings/{posting['id']}/applications",
            json=lever_body(sandbox, posting["id"], n),
            timeout=10,
        )
    svc = live.server.app.extensions["jobsite"]
    for receipt in store.receipts(r, store.State.QUEUED):
        deliverer.deliver(tasks.use(svc).delivery, receipt)  # meets the maintenance: the gate closes
    page.goto(live.url + "/admin/login")
    page.fill("#email", ADMIN[0])
    page.fill("#password", "not the password")
    page.get_by_role("button", name="Sign in").click()
    page.locator("#login-error").wait_for()
    assert page.locator("#email").input_value() == ADMIN[0]  # only the password is typed again
    page.fill("#password", ADMIN[1])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/admin/$"))
    for width, height in ((1280, 800), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        page.goto(live.url + "/admin/")
        page.screenshot(path=str(ARTIFACTS / f"console-dashboard-closed-{width}.png"), full_page=True)
        nav = page.get_by_role("navigation", name="Console")
        assert (
            page.evaluate(WHOLLY_SHOWN, "nav.admin-nav a, nav.admin-nav input, nav.admin-nav button, .account summary")
            == []
        ), f"the navigation is cut at {width} px"
        if width == 1280:
            assert nav.bounding_box()["height"] < 60, "the navigation takes more than one row at 1280 px"
        assert nav.locator("[aria-current=page]").all_inner_texts() == ["Dashboard"]
        assert page.locator('[data-field="gate.state"]').text_content() == "closed"  # in the technical details
        assert page.locator('[data-field="gate.word"]').inner_text() == "Waiting for Lever"
        assert page.locator('[data-field="lever.word"]').inner_text() == "In maintenance"
        assert not page.locator("#technical dl").is_visible()  # folded until asked for
        for state in page.locator(".big.word").all():
            lines = state.evaluate(
                "el => { const r = document.createRange(); r.selectNodeContents(el);"
                " return new Set([...r.getClientRects()].map((b) => Math.round(b.top))).size; }"
            )
            assert lines == 1, f"{state.inner_text()} breaks across lines at {width} px"
        assert not page.locator("#pacing").is_visible()
        assert not page.get_by_text("done in about").is_visible()
        assert page.get_by_text("Waiting until delivery reopens").is_visible()
    page.get_by_role("link", name="Needs attention").click()
    assert nav.locator("[aria-current=page]").all_inner_texts() == ["Needs attention"]
    page.goto(live.url + "/admin/audit")
    failed = page.locator("tr", has_text="sign-in failed")
    assert failed.count() == 1
    assert ADMIN[0] in failed.inner_text()
    assert page.get_by_role("link", name=re.compile(r"Application .*…")).count() == 0  # no link to an email
    check(page, "default", "admin-not-found", live.url + "/admin/no-such-page")
    assert page.locator("body.admin").count() == 1
    assert page.get_by_role("link", name="Back to the dashboard").count()

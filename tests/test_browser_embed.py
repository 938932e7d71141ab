"""Embedding in headless Chromium, from a company's page on another origin (another port): the script widget in its
Shadow DOM against hostile host CSS, several widgets on one page, apply in place in the overlay, the iframe that
sizes itself, and the allowed origins."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlencode

import pytest
from axe_playwright_python.sync_playwright import Axe

from .helpers import LiveServer, Sandbox

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "screenshots"
AXE_OPTIONS = {"resultTypes": ["violations"], "iframes": False}  # each frame is checked on its own
axe = Axe()

HOSTILE_CSS = """
* { all: unset }
li { display: none }
a { color: rgb(255, 0, 0) !important; text-transform: uppercase; letter-spacing: 3px }
body { font-family: "Comic Sans MS", cursive; color: rgb(0, 128, 0); }
div { display: inline; }
"""


def host_page(live: LiveServer, body: str, css: str = "", title: str = "Acme careers") -> bytes:
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<style>{css}</style></head><body><main><h1>{title}</h1>{body}</main>"
        f'<script src="{live.url}/static/widget.js" async></script></body></html>'
    ).encode()


def axe_clean(target, what: str) -> None:
    results = axe.run(target, options=AXE_OPTIONS)
    assert results.violations_count == 0, f"{what}:\n{results.generate_report()}"


def test_two_themed_widgets_survive_hostile_host_css(page, live: LiveServer, sandbox: Sandbox, company_site) -> None:
    pages, origin = company_site
    css = (
        HOSTILE_CSS + ".themed { --jobsite-accent: #8a1c7c; --jobsite-font: Georgia, serif; }html { font-size: 62.5% }"
    )  # the common rem reset: 1rem is 10 px on this page
    pages["/careers"] = host_page(
        live,
        css=css,
        body=(
            '<ul><li id="host-item">the host\'s own list item</li></ul>'
            '<div id="all" data-jobsite-widget><a href="/fallback">See our jobs</a></div>'
            '<div id="platform" class="themed" data-jobsite-widget data-team="Platform" data-group-by="none"></div>'
        ),
    )
    page.goto(origin + "/careers")
    every = page.locator("#all li")
    every.first.wait_for()
    platform = page.locator("#platform li")
    platform.first.wait_for()

    # the same grouping, order and words as the job list, commitment and workplace included
    page2 = page.context.new_page()
    page2.goto(live.url + "/")
    expected_groups = page2.locator(".team h2").all_inner_texts()
    expected_titles = page2.locator(".posting-card a").all_inner_texts()
    expected_meta = page2.locator(".posting-card .meta").all_inner_texts()
    page2.close()
    assert page.locator("#all h2").all_inner_texts() == expected_groups
    assert [t for t in every.locator("a").all_inner_texts()] == expected_titles
    assert every.locator(".m").all_inner_texts() == expected_meta
    assert any("Remote" in m for m in expected_meta)
    assert any("Full-time" in m for m in expected_meta)

    wanted = sorted(p["text"] for p in sandbox.public_postings() if p["categories"]["team"] == "Platform")
    assert platform.locator("a").all_inner_texts() == wanted
    assert page.locator("#platform h2").count() == 0  # data-group-by="none"

    # the host's CSS does not reach in, and the widget's does not reach out
    link = every.locator("a").first
    assert link.is_visible()
    assert every.first.evaluate("e => getComputedStyle(e).display") == "flex"
    style = link.evaluate("e => { const s = getComputedStyle(e); return [s.color, s.textTransform, s.letterSpacing] }")
    assert style == ["rgb(36, 84, 214)", "none", "normal"]
    themed = platform.locator("a").first.evaluate("e => [getComputedStyle(e).color, getComputedStyle(e).fontFamily]")
    assert themed == ["rgb(138, 28, 124)", "Georgia, serif"]
    assert smallest_text(page, "#all") >= 14
    assert page.locator("#host-item").is_hidden()  # the host's li { display: none } still holds for the host
    assert page.get_by_text("See our jobs").is_hidden()  # the fallback link gave way to the list
    assert link.get_attribute("href").startswith(f"{live.url}/jobs/")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "widget-hostile-host.png"), full_page=True)


def test_widget_filters_search_and_states(page, live: LiveServer, sandbox: Sandbox, company_site) -> None:
    pages, origin = company_site
    pages["/careers"] = host_page(
        live,
        body=(
            '<div id="w" data-jobsite-widget data-show-filters data-show-search data-alerts></div>'
            '<div id="none" data-jobsite-widget data-q="zzzz-no-such-job"></div>'
        ),
    )
    page.goto(origin + "/careers")
    w = page.locator("#w")
    w.locator("li").first.wait_for()
    total = len(sandbox.public_postings())
    assert w.get_by_role("status").inner_text() == f"{total} open jobs"
    assert page.locator("#none").get_by_role("status").inner_text() == "No open jobs right now."
    axe_clean(page, "host page with two widgets")

    team = sandbox.public_postings()[0]["categories"]["team"]
    w.get_by_label("Team").select_option(team)
    in_team = [p for p in sandbox.public_postings() if p["categories"]["team"] == team]
    status = w.get_by_role("status")
    page.wait_for_function(
        "([el, n]) => el.shadowRoot.querySelectorAll('li').length === n", arg=[w.element_handle(), len(in_team)]
    )
    assert status.inner_text() == f"{len(in_team)} open {'job' if len(in_team) == 1 else 'jobs'}"
    alerts = w.get_by_role("link", name="Email me jobs like these")  # data-alerts: the filters shown, carried
    assert alerts.get_attribute("href") == f"{live.url}/alerts/new?{urlencode({'team': team})}"
    assert page.locator("#none").get_by_role("link", name="Email me jobs like these").count() == 0
    w.get_by_label("Search").fill("zzzz-no-such-job")
    page.wait_for_function("el => el.shadowRoot.querySelectorAll('li').length === 0", arg=w.element_handle())
    assert status.inner_text() == "No jobs match these filters."
    # keyboard: the controls and links are reachable with Tab and named for screen readers
    w.get_by_label("Search").fill("")
    w.get_by_label("Team").select_option("")
    page.wait_for_function(
        "([el, n]) => el.shadowRoot.querySelectorAll('li').length === n", arg=[w.element_handle(), total]
    )
    assert w.get_by_role("search", name="Filter jobs").count() == 1


def test_widget_says_so_when_jobsite_is_unreachable(page, live: LiveServer, company_site) -> None:
    pages, origin = company_site
    pages["/careers"] = host_page(live, body='<div id="w" data-jobsite-widget></div>')
    page.route(f"{live.url}/api/**", lambda route: route.fulfill(status=503, body="{}"))
    page.goto(origin + "/careers")
    status = page.locator("#w").get_by_role("status")
    page.wait_for_function(
        "el => el.shadowRoot.textContent.includes('briefly unavailable')", arg=page.locator("#w").element_handle()
    )
    assert status.get_by_role("link", name="See all open jobs").get_attribute("href") == f"{live.url}/"


def test_embedded_pages_drop_the_site_chrome(page, live: LiveServer, sandbox: Sandbox, company_site) -> None:
    pages, origin = company_site
    pages["/jobs"] = f'<iframe src="{live.url}/?embed=1" width="800" height="600"></iframe>'.encode()
    page.goto(origin.replace("127.0.0.1", "localhost") + "/jobs")
    frame = page.frame_locator("iframe")
    frame.locator(".posting-card").first.wait_for()
    assert frame.locator(".site-header").count() == 0
    href = frame.locator(".posting-card a").first.get_attribute("href")
    assert "embed=1" in href
    assert re.search(r"/jobs/[^?]+\?embed=1", href)


def fill_application(frame, resume: Path) -> None:
    """Answer every required question of the form in `frame` (the rules each field carries say which)."""
    import json

    for field in frame.locator(".field[data-rules]").all():
        rules = json.loads(field.get_attribute("data-rules"))
        if not rules.get("required"):
            continue
        kind = rules.get("type")
        if kind == "file-upload":
            field.locator("input[type=file]").set_input_files(str(resume))
        elif kind in ("multiple-choice", "multiple-select", "consent"):
            field.locator("input").first.check()
        elif kind == "dropdown":
            field.locator("select").select_option(index=1)
        else:
            value = {"email": "ada@example.com", "url": "https://example.com/ada"}.get(kind, "Ada Lovelace")
            field.locator("input, textarea").first.fill(value)


def active_in(page, host: str) -> str:
    """What has focus inside the widget `host`: 'close', 'frame', a link's text, or 'outside'."""
    return page.evaluate(
        """host => {
        const w = document.querySelector(host);
        if (document.activeElement !== w) return 'outside';
        const a = w.shadowRoot.activeElement;
        if (!a) return 'none';
        if (a.tagName === 'IFRAME') return 'frame';
        if (a.getAttribute('aria-label') === 'Close') return 'close';
        return a.textContent;
    }""",
        host,
    )


def test_apply_in_place_in_the_overlay(
    page, live: LiveServer, sandbox: Sandbox, settings, company_site, tmp_path: Path
) -> None:
    from jobsite.delivery import deliverer
    from jobsite.records import store
    from jobsite.services import Services
    from jobsite.worker import tasks

    from .helpers import file_posting

    target = file_posting(sandbox)
    team = target["categories"]["team"]
    pages, origin = company_site
    pages["/careers"] = host_page(
        live,
        body=(
            '<p><a href="#top">A link of the host before the widget</a></p>'
            f'<div id="w" data-jobsite-widget data-team="{team}" data-apply="overlay" data-source="careers-page"></div>'
            '<p><a href="#end">A link of the host after it</a></p>'
        ),
    )
    page.goto(origin + "/careers?utm_source=newsletter&utm_campaign=spring")
    w = page.locator("#w")
    link = w.get_by_role("link", name=target["text"], exact=True)
    link.wait_for()
    link.focus()
    page.keyboard.press("Enter")
    dialog = w.locator("dialog")
    dialog.wait_for(state="visible")
    assert dialog.get_attribute("aria-labelledby")
    assert w.get_by_role("dialog", name=target["text"]).count() == 1
    assert f"jobsite={target['id']}" in address(page)  # the open posting is in the address: a link to share
    assert active_in(page, "#w") == "close"
    frame_url = w.locator("iframe").get_attribute("src")
    assert "embed=1" in frame_url
    assert "source=careers-page" in frame_url
    assert "utm_source=newsletter" in frame_url
    frame = page.frame_locator("#w iframe")
    frame.get_by_role("heading", name=target["text"]).wait_for()
    axe_clean(page, "host page with the overlay open")
    page.screenshot(path=str(ARTIFACTS / "widget-overlay.png"))

    # focus stays in the dialog: Tab goes through the framed page and comes back round to Close
    seen = []
    for _ in range(80):
        page.keyboard.press("Tab")
        seen.append(active_in(page, "#w"))
        if seen[-1] == "close":
            break
    assert "outside" not in seen, seen
    assert "frame" in seen, seen
    assert seen[-1] == "close", seen
    page.keyboard.press("Shift+Tab")  # and backwards from Close into the framed page
    assert active_in(page, "#w") == "frame"

    frame.get_by_role("link", name="Apply for this job").first.click()
    frame.locator("form.apply").wait_for()
    resume = tmp_path / "ada-cv.pdf"
    resume.write_bytes(b"%PDF-1.4 Ada Lovelace, analyst")
    fill_application(frame, resume)
    assert "Ada" in frame.locator("form.apply").evaluate("() => JSON.stringify(Object.values(sessionStorage))")
    frame.get_by_role("button", name="Submit application").click()
    frame.get_by_role("heading", name=re.compile("Thank you for applying")).wait_for()
    receipt_frame = next(f for f in page.frames if "/applications/" in f.url)
    assert receipt_frame.evaluate("sessionStorage.length") == 0  # the draft goes once the form is sent
    assert "embed=1" in receipt_frame.url
    axe_clean(receipt_frame, "the receipt inside the overlay")
    # a way out of the frame: the receipt's own address, to open in a tab of its own or to copy
    own = receipt_frame.url.split("?")[0]
    out = frame.get_by_role("link", name="Open in a new tab")
    assert out.get_attribute("href") == own
    assert out.get_attribute("target") == "_blank"
    assert frame.get_by_label("Your receipt's address").input_value() == own
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live.url)
    frame.get_by_role("button", name="Copy link").click()
    frame.get_by_text("Link copied.").wait_for()
    page.screenshot(path=str(ARTIFACTS / "widget-overlay-receipt.png"))
    assert page.locator("#w").is_visible()
    assert "careers" in page.url

    # Escape inside the framed page closes the dialog; focus returns to the link that opened it
    frame.locator("h1").click()
    page.keyboard.press("Escape")
    closed(page)
    assert active_in(page, "#w") == target["text"]
    assert "utm_source=newsletter" in address(page)

    # and Escape on the dialog itself, opened again
    page.keyboard.press("Enter")
    dialog.wait_for(state="visible")
    page.keyboard.press("Escape")
    closed(page)
    assert active_in(page, "#w") == target["text"]

    record = store.load_many(settings_redis(settings), store.receipts(settings_redis(settings), store.State.QUEUED))[0]
    assert (record.source, record.medium, record.campaign) == ("careers-page", "", "spring")
    assert record.files[0]["filename"] == "ada-cv.pdf"
    svc = tasks.use(Services(settings))
    assert deliverer.deliver(svc.delivery, record.receipt).outcome == deliverer.Outcome.DELIVERED
    sent = sandbox.received()["applications"][-1]["body"]
    assert sent["source"] == "careers-page"


@pytest.mark.parametrize(("width", "height", "root"), [(390, 844, "62.5%"), (1280, 800, "62.5%"), (1280, 800, "125%")])
def test_the_overlay_names_the_job_once_and_all_jobs_closes_it(
    page, live: LiveServer, sandbox: Sandbox, company_site, width: int, height: int, root: str
) -> None:
    """At a phone's width and a desk's, on hosts whose root font size is 62.5 % and 125 %: the widget's sizes stay
    its own, the close button is a 44 px target, the page behind does not scroll while the overlay is open, and
    Escape leaves the same address as the close button."""
    from .helpers import simple_posting

    target = simple_posting(sandbox)
    pages, origin = company_site
    pages["/careers"] = host_page(
        live,
        css=f"html {{ font-size: {root} }} main {{ padding-bottom: 200vh }}",
        body='<div id="w" data-jobsite-widget data-apply="overlay"></div>',
    )
    page.set_viewport_size({"width": width, "height": height})
    page.goto(origin + "/careers")
    w = page.locator("#w")
    job = w.get_by_role("link", name=target["text"], exact=True).first
    job.wait_for()
    assert job.evaluate("e => getComputedStyle(e).fontSize") == "16px"  # the reader's default, not the host's rem
    assert smallest_text(page, "#w") >= 14
    job.click()
    w.locator("dialog").wait_for(state="visible")
    close = w.get_by_role("button", name="Close")
    assert min(close.bounding_box()["width"], close.bounding_box()["height"]) >= 44
    behind = page.evaluate("scrollY")
    page.mouse.move(width / 2, height - 5)
    page.mouse.wheel(0, 600)
    page.evaluate("new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))")
    assert page.evaluate("scrollY") == behind  # the page behind stays where it was
    close.click()
    closed(page)
    by_button = address(page)
    assert page.evaluate("getComputedStyle(document.documentElement).overflowY") == "visible"  # scrolls again
    job.click()
    w.locator("dialog").wait_for(state="visible")
    page.keyboard.press("Escape")
    closed(page)
    assert address(page) == by_button == origin + "/careers"
    job.click()
    w.locator("dialog").wait_for(state="visible")
    assert w.get_by_role("dialog", name=target["text"]).count() == 1  # named for screen readers
    frame = page.frame_locator("#w iframe")
    frame.get_by_role("heading", name=target["text"]).wait_for()
    title = w.locator("dialog h2").bounding_box()
    assert title["width"] <= 1
    assert title["height"] <= 1
    page.screenshot(path=str(ARTIFACTS / f"widget-overlay-title-{width}.png"))
    axe_clean(page, f"host page with the overlay open at {width} px")
    frame.get_by_role("link", name="All jobs").click()  # closes the dialog instead of loading the site inside it
    closed(page)
    assert not w.locator("dialog").is_visible()
    assert page.url.startswith(origin + "/careers")


def smallest_text(page, host: str) -> float:
    """The smallest font size, in px, of any text the widget `host` shows."""
    return page.evaluate(
        """host => Math.min(...[...document.querySelector(host).shadowRoot.querySelectorAll("*")]
        .filter((e) => [...e.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim()) && e.checkVisibility())
        .map((e) => parseFloat(getComputedStyle(e).fontSize)))""",
        host,
    )


def address(page) -> str:
    """The host page's address as its script sees it now (page.url follows replaceState a moment later)."""
    return page.evaluate("location.href")


def closed(page) -> None:
    """Wait for the overlay's close event to have run: it takes the posting out of the address, then restores focus."""
    page.wait_for_function("!new URLSearchParams(location.search).has('jobsite')")


def settings_redis(settings):
    from jobsite.redisdb.redis_server import connect

    return connect(settings.redis_url)


def test_a_shared_overlay_link_opens_the_posting(page, live: LiveServer, sandbox: Sandbox, company_site) -> None:
    target = sandbox.public_postings()[0]
    pages, origin = company_site
    pages["/careers"] = host_page(live, body='<div id="w" data-jobsite-widget data-apply="overlay"></div>')
    page.goto(f"{origin}/careers?jobsite={target['id']}")
    dialog = page.locator("#w dialog")
    dialog.wait_for(state="visible")
    page.frame_locator("#w iframe").get_by_role("heading", name=target["text"]).wait_for()
    page.get_by_role("button", name="Close").click()
    closed(page)
    assert dialog.is_hidden()


def frame_height(page, frame) -> tuple[float, float, float]:
    """The iframe's height on the host page, the framed page's content height, and the frame's viewport height."""
    outer = page.evaluate("document.querySelector('iframe[data-jobsite]').getBoundingClientRect().height")
    inner, viewport = frame.evaluate("[document.documentElement.getBoundingClientRect().height, innerHeight]")
    return outer, inner, viewport


@pytest.mark.parametrize(
    "viewport", [{"width": 1280, "height": 900}, {"width": 390, "height": 844}], ids=["desktop", "mobile"]
)
def test_the_iframe_takes_the_height_of_each_page(
    page, live: LiveServer, sandbox: Sandbox, company_site, viewport, tmp_path: Path
) -> None:
    from .helpers import file_posting, wait_for

    target = file_posting(sandbox)
    pages, origin = company_site
    pages["/jobs"] = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Jobs at Acme</title>'
        '<meta name="viewport" content="width=device-width, initial-scale=1"></head><body><main><h1>Jobs at Acme</h1>'
        f'<iframe data-jobsite title="Open jobs at Acme" src="{live.url}/?embed=1&amp;hide=heading,filters"></iframe>'
        "<p>The host page goes on below.</p></main>"
        f'<script src="{live.url}/static/embed.js" async></script></body></html>'
    ).encode()
    page.set_viewport_size(viewport)
    page.goto(origin + "/jobs?utm_source=newsletter")
    page.evaluate("""() => { window.heights = [];
        new ResizeObserver(() => heights.push(document.querySelector('iframe').getBoundingClientRect().height))
            .observe(document.querySelector('iframe')); }""")

    frame = page.locator("iframe[data-jobsite]").element_handle().content_frame()  # the same across its pages

    def settled(path: str):
        frame.wait_for_url(re.compile(path))
        frame.wait_for_load_state()

        def fits():
            outer, inner, viewport_ = frame_height(page, frame)
            return abs(outer - inner) <= 5 and abs(viewport_ - outer) <= 5 and (outer, inner)

        return wait_for(fits, 15, what=f"the iframe to fit {path}")

    outer, _ = settled(r"/\?embed=1.*utm_source")
    assert frame.locator(".hero").count() == 0
    assert frame.locator("form.filters").count() == 0
    assert frame.locator("h1").count() == 1  # still named for screen readers, visually hidden
    assert "utm_source=newsletter" in frame.url  # the host page's source passed on
    assert outer > 600  # 30 jobs, not the 150 px default
    axe_clean(frame, "the job list inside the iframe")
    frame.locator(f'.posting-card a[href*="{target["id"]}"]').click()
    settled(f"/jobs/{target['id']}\\?")
    frame.get_by_role("link", name="Apply for this job").first.click()
    settled(f"/jobs/{target['id']}/apply")
    assert "utm_source=newsletter" in frame.url
    assert "hide=filters,heading" in frame.url
    resume = tmp_path / "cv.pdf"
    resume.write_bytes(b"%PDF-1.4 a CV")
    fill_application(frame, resume)
    frame.get_by_role("button", name="Submit application").click()
    outer, _ = settled("/applications/")
    axe_clean(frame, "the receipt inside the iframe")
    assert min(page.evaluate("heights")[1:]) > 150  # never collapsed while the next page loaded

    # only jobsite's own frame may size it: a message from anywhere else is ignored
    page.evaluate("""() => new Promise(done => {  // messages are handled in order: 'after' comes once 'size' was
        addEventListener('message', e => e.data === 'after' && done());
        postMessage({jobsite: 'size', height: 5}, '*');
        postMessage('after', '*');
    })""")
    assert abs(frame_height(page, frame)[0] - outer) <= 5
    page.screenshot(path=str(ARTIFACTS / f"iframe-receipt-{viewport['width']}.png"), full_page=True)


def test_only_allowed_origins_may_embed(browser, settings, sandbox: Sandbox, company_site) -> None:
    from dataclasses import replace

    from jobsite.web.app import create_app

    pages, allowed = company_site  # http://127.0.0.1:PORT; http://localhost:PORT is the same server, another origin
    other = allowed.replace("127.0.0.1", "localhost")
    live = LiveServer(create_app(replace(settings, embed_origins=(allowed,))))
    pages["/careers"] = host_page(
        live,
        body=(
            '<div id="w" data-jobsite-widget></div>'
            f'<iframe title="Open jobs" src="{live.url}/?embed=1" width="800" height="400"></iframe>'
        ),
    )
    context = browser.new_context()
    page = context.new_page()
    try:
        page.goto(allowed + "/careers")
        page.locator("#w li").first.wait_for()
        page.frame_locator("iframe").locator(".posting-card").first.wait_for()

        page.goto(other + "/careers")
        page.wait_for_function(
            "el => el.shadowRoot.textContent.includes('briefly unavailable')", arg=page.locator("#w").element_handle()
        )  # no CORS header: the fetch is refused
        page.wait_for_load_state("load")
        frame = page.locator("iframe").element_handle().content_frame()
        assert frame.locator(".posting-card").count() == 0  # frame-ancestors: the browser refused to show it
        assert not frame.url.startswith(live.url)
    finally:
        context.close()
        live.stop()


def test_the_api_page_reads_well(page, live: LiveServer, sandbox: Sandbox) -> None:
    """axe and a screenshot on a phone; no sideways scrolling there or on a desktop (the page laid out again)."""
    page.set_viewport_size({"width": 390, "height": 900})
    page.goto(live.url + "/api/")
    page.get_by_role("heading", name="POST /api/v1/postings/{posting_id}/applications").wait_for()
    axe_clean(page, "/api/ at 390 px")
    page.screenshot(path=str(ARTIFACTS / "api-390.png"), full_page=True)
    for width in (390, 1280):
        page.set_viewport_size({"width": width, "height": 900})
        scroll, inner = page.evaluate("[document.documentElement.scrollWidth, innerWidth]")
        assert scroll <= inner, f"/api/ scrolls sideways at {width} px"

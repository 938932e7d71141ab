"""A candidate's path in headless Chromium: list, filter, posting, form, errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from jobsite.intake import forms

from .helpers import LiveServer, Sandbox

pytestmark = pytest.mark.browser
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "screenshots"


def full_form_posting(sandbox: Sandbox) -> dict:
    """A public posting whose form asks one question of every custom field type, with EEO questions."""
    for i, (pid, form) in enumerate(sandbox.state.questions.items()):
        p = sandbox.state.postings[pid]
        if i % 2 == 0 and "eeoQuestions" in form and p in sandbox.public_postings():
            return p
    raise AssertionError("seed has no such posting")


def test_candidate_finds_a_job_and_sees_form_errors(page, live: LiveServer, sandbox: Sandbox) -> None:
    target = full_form_posting(sandbox)
    team = target["categories"]["team"]
    page.goto(live.url + "/")
    assert page.locator(".posting-card").count() == 30
    page.select_option("#filter-team", team)  # the page submits the filter on change
    page.wait_for_url(re.compile(r"team="))
    cards = page.locator(".posting-card")
    expected = [p for p in sandbox.public_postings() if p["categories"]["team"] == team]
    assert cards.count() == len(expected)
    page.get_by_role("link", name=target["text"]).first.click()
    page.wait_for_url(re.compile(target["id"]))
    assert page.locator("h1").inner_text() == target["text"]
    page.get_by_role("link", name="Apply for this job").first.click()
    page.wait_for_url(re.compile(r"/apply$"))

    form = page.locator("form.apply")
    assert form.locator("input[type=text]").count() >= 3
    assert form.locator("input[type=email]").count() == 1
    assert form.locator("input[type=url]").count() == 3
    assert form.locator("textarea").count() >= 2
    assert form.locator("select").count() >= 5  # custom dropdown + EEO dropdowns
    assert form.locator("input[type=radio]").count() == 4  # multiple-choice
    assert form.locator("input[type=checkbox]").count() >= 5  # multiple-select + consent
    assert form.locator("input[type=file]").count() == 2  # resume + custom file-upload
    assert page.get_by_label("Where did you study?").count() == 1  # university
    assert page.get_by_text("Voluntary self-identification").count() == 1
    assert page.get_by_text("These questions are optional").count() == 1

    page.get_by_role("button", name="Submit application").click()
    summary = page.locator("#error-summary")
    summary.wait_for(state="visible")
    assert page.url.endswith("/apply")  # the browser checked first; nothing was sent
    errors = page.locator(".field.has-error")
    required = ["fullName", "email", "resume"]
    messages = {
        "fullName": "Enter your full name.",
        "email": "Enter your email address.",
        "resume": "Attach your CV or résumé.",
    }  # said for the field, as the server says it (forms.py)
    for name in required:
        field = page.locator(f'.field[data-field="{name}"]')
        assert "has-error" in field.get_attribute("class")
        assert field.locator(".error").inner_text() == messages[name]
    assert errors.count() == 7  # 3 personal + 4 required custom questions
    email = page.locator("#f-email")
    assert email.get_attribute("aria-invalid") == "true"
    assert "f-email-error" in email.get_attribute("aria-describedby")
    assert page.locator('.field[data-field="eeo[gender]"].has-error').count() == 0  # EEO is optional

    # the rules and messages come from the server's definitions (forms.PATTERNS), rendered into the page
    page.fill("#f-email", "not-an-email")
    page.fill('[id="f-urls-LinkedIn"]', "linkedin.com/in/me")  # as most people write it: taken, and completed
    page.fill('[id="f-urls-GitHub"]', "my github")
    page.get_by_role("button", name="Submit application").click()
    assert page.locator('.field[data-field="email"] .error').inner_text() == forms.PATTERNS["email"][1]
    assert page.locator('.field[data-field="urls[GitHub]"] .error').inner_text() == forms.PATTERNS["url"][1]
    assert page.locator('.field[data-field="urls[LinkedIn]"] .error').is_hidden()
    assert page.locator('[id="f-urls-LinkedIn"]').input_value() == "https://linkedin.com/in/me"
    assert page.url.endswith("/apply")
    # every contact field brings the keyboard and the browser's saved details that fit it
    hints = page.evaluate("""() => ['fullName', 'email', 'phone', 'currentCompany', 'currentLocation']
        .map((n) => document.querySelector(`form.apply [name=${n}]`))
        .filter(Boolean).map((el) => [el.name, el.type, el.inputMode, el.autocomplete])""")
    assert ["phone", "tel", "tel", "tel"] in hints
    assert ["email", "email", "email", "email"] in hints
    assert all(autocomplete for *_, autocomplete in hints), hints

    # Issue 29, 4: a reload, or a language chosen from the header, mid-form wiped every answer
    page.fill("#f-fullName", "Ada Lovelace")
    page.fill("#f-email", "ada@example.com")
    page.locator("input[type=radio]").first.check()
    page.locator("form.apply textarea").first.fill("Half an answer")
    page.reload()
    assert page.locator("#f-fullName").input_value() == "Ada Lovelace"
    assert page.locator("#f-email").input_value() == "ada@example.com"
    assert page.locator("input[type=radio]").first.is_checked()
    assert page.locator("form.apply textarea").first.input_value() == "Half an answer"
    page.get_by_role("navigation", name="Language").get_by_role("link", name="Deutsch").click()
    page.wait_for_url(re.compile(r"lang=de"))
    assert page.locator("html").get_attribute("lang") == "de"
    assert page.locator("#f-fullName").input_value() == "Ada Lovelace"
    assert page.locator("#f-email").input_value() == "ada@example.com"
    assert page.locator("input[type=radio]").first.is_checked()
    assert page.locator("form.apply textarea").first.input_value() == "Half an answer"
    assert "Half an answer" in page.evaluate("JSON.stringify(Object.values(sessionStorage))")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "apply-draft-de-1280.png"))


def test_without_javascript_the_server_reports_the_same_errors(browser, live: LiveServer, sandbox: Sandbox) -> None:
    target = full_form_posting(sandbox)
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(f"{live.url}/jobs/{target['id']}/apply")
    page.fill("#f-email", "not-an-email")
    page.get_by_role("button", name="Submit application").click()
    page.wait_for_load_state()
    assert page.locator("#error-summary h2").inner_text().startswith("Please check 7 answers")
    email_error = page.locator('.field[data-field="email"] .error').inner_text()
    assert email_error == "Enter an email address like name@example.com."
    assert page.locator('.field[data-field="fullName"] .error').inner_text() == "Enter your full name."
    assert page.locator("#f-email").input_value() == "not-an-email"  # nothing the candidate typed is lost
    assert page.locator("#f-email").get_attribute("aria-invalid") == "true"
    context.close()


def test_a_reload_and_a_language_switch_keep_a_half_filled_form_on_a_phone(
    page, live: LiveServer, sandbox: Sandbox
) -> None:
    """Issue 29's done-when at a phone's width (the walk above is the desk's): a reload, then French from the
    header, keep every answer typed."""
    target = full_form_posting(sandbox)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live.url}/jobs/{target['id']}/apply")
    page.fill("#f-fullName", "Lena Fischer")
    page.fill("#f-phone", "+49 30 1234567")
    page.locator("input[type=radio]").last.check()
    page.locator("form.apply textarea").first.fill("Ein halber Satz")
    page.reload()
    assert page.locator("#f-fullName").input_value() == "Lena Fischer"
    assert page.locator("#f-phone").input_value() == "+49 30 1234567"
    assert page.locator("input[type=radio]").last.is_checked()
    assert page.locator("form.apply textarea").first.input_value() == "Ein halber Satz"
    page.get_by_role("navigation", name="Language").get_by_role("link", name="Français").click()
    page.wait_for_url(re.compile(r"lang=fr"))
    assert page.locator("html").get_attribute("lang") == "fr"
    assert page.locator("#f-fullName").input_value() == "Lena Fischer"
    assert page.locator("#f-phone").input_value() == "+49 30 1234567"
    assert page.locator("input[type=radio]").last.is_checked()
    assert page.locator("form.apply textarea").first.input_value() == "Ein halber Satz"
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "apply-draft-fr-390.png"))

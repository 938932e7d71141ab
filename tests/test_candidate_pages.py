"""What the candidate reads on the application form: the consent statement once, as text, and required-answer
messages that say what to do for each field, the same from the server and in the page's rules."""

from __future__ import annotations

import json
import re

import pytest

from jobsite.intake import forms

from .helpers import Sandbox, file_posting

STATEMENT = "I agree that Acme Robotics may store my data for 2 years to consider me for future roles."


def test_the_consent_statement_shows_once_as_text(client, sandbox: Sandbox) -> None:
    posting = file_posting(sandbox)
    html = client.get(f"/jobs/{posting['id']}/apply").get_data(as_text=True)
    assert html.count(STATEMENT) == 1
    assert f'<div class="consent" id="consent-text"><p>{STATEMENT}</p></div>' in html  # HTML, not escaped tags
    assert "&lt;p&gt;" not in html
    box = re.search(r'<label class="choice" for="f-consent-store">(.*?)</label>', html, re.S)
    assert box
    assert 'aria-describedby="consent-text"' in box.group(1)
    assert forms.CONSENT_LABEL in box.group(1)


def test_required_messages_name_the_missing_answer(client, sandbox: Sandbox) -> None:
    posting = file_posting(sandbox)
    url = f"/jobs/{posting['id']}/apply"
    page = client.get(url).get_data(as_text=True)
    rules = {
        name: json.loads(raw.replace("&#39;", "'").replace("&#34;", '"'))
        for name, raw in re.findall(r'data-field="([^"]+)" data-rules=\'([^\']+)\'', page)
    }
    assert rules["email"]["messages"]["required"] == "Enter your email address."
    assert rules["resume"]["messages"]["required"] == "Attach your CV or résumé."
    token = re.search(r'name="form_token" value="([^"]+)"', page).group(1)
    answer = client.post(url, data={"form_token": token}).get_data(as_text=True)
    for name in ("fullName", "email", "resume"):  # the server says what the page's rules say
        assert rules[name]["messages"]["required"] in answer, name
    assert "This field is required." not in answer
    required_custom = [n for n, r in rules.items() if r["required"] and n.startswith("cards[")]
    assert required_custom
    assert all(rules[n]["messages"]["required"] in answer for n in required_custom)


def test_every_status_has_plain_words_without_the_vendor() -> None:
    from jobsite.records.store import State
    from jobsite.web.candidates import FINAL_STATUSES, STATUS_WORDS, UNKNOWN

    # one vocabulary: the API's statuses are State's values, and "unknown" while Redis cannot be reached
    assert set(STATUS_WORDS) == {s.public for s in State} | {UNKNOWN}
    assert all("lever" not in words["text"].lower() for words in STATUS_WORDS.values())
    assert set(FINAL_STATUSES) == {s.public for s in (State.DELIVERED, State.DISCARDED)}


def test_the_posting_page_says_when_where_and_how_to_share(client, sandbox: Sandbox) -> None:
    from urllib.parse import quote

    from .helpers import simple_posting

    posting = simple_posting(sandbox)
    html = client.get(f"/jobs/{posting['id']}").get_data(as_text=True)
    assert "<dt>Posted</dt>" in html
    assert '<time datetime="' in html
    assert "<dt>Location</dt>" in html or "<dt>Locations</dt>" in html
    assert "<dt>Workplace</dt>" in html
    canonical = re.search(r'<link rel="canonical" href="([^"]+)"', html).group(1)
    assert f"share-offsite/?url={quote(canonical, safe='/')}" in html
    assert "mailto:?subject=" in html


def test_a_receipt_has_a_short_reference_without_look_alikes() -> None:
    from jobsite.records import store

    receipts = [store.new_receipt() for _ in range(2000)]
    references = [store.reference(receipt) for receipt in receipts]
    assert all(re.fullmatch(r"[2-9A-HJKMNP-TW-Z]{4}-[2-9A-HJKMNP-TW-Z]{4}", ref) for ref in references)
    assert not set("01ILOUV") & set("".join(references))
    assert len(set(references)) == len(references)
    assert store.reference(receipts[0]) == references[0]  # derived, the same every time


def test_a_web_address_without_its_scheme_is_taken_and_completed(sandbox: Sandbox) -> None:
    """Issue 29, 4: linkedin.com/in/x (how most people write it) was refused until https:// was typed. The page's
    rule is the server's (Field.rules), so the browser takes it too; Lever gets it completed."""
    from .helpers import application_body, simple_posting

    posting = simple_posting(sandbox)
    form = forms.build_form(sandbox.state.questions[posting["id"]])
    answers = forms.answers_from_lever_body(form, application_body(sandbox, posting["id"]))
    links = [f.name for f in form.fields() if f.type == "url"]
    typed = ["linkedin.com/in/ada-lovelace", "HTTP://example.org/cv", "www.ada.dev"]
    answers.update(dict(zip(links, typed, strict=True)))
    app = forms.validate(form, answers, {}, 2**20)
    assert sorted(app.urls.values()) == [
        "HTTP://example.org/cv",
        "https://linkedin.com/in/ada-lovelace",
        "https://www.ada.dev",
    ]
    for wrong in ("ada", "ada@example.com", "javascript:alert(1)", "mailto:ada@example.com"):
        with pytest.raises(forms.ValidationFailed) as failed:
            forms.validate(form, {**answers, links[0]: wrong}, {}, 2**20)
        assert set(failed.value.errors) == {links[0]}, wrong
    rule = form.field(links[0]).rules()
    assert re.match(rule["pattern"], "linkedin.com/in/x", re.I if rule["flags"] else 0)

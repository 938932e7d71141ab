"""Building valid applications for the sandbox's postings."""

from __future__ import annotations

from typing import Any

from .conftest import Sandbox


def _posting(sandbox: Sandbox, parity: int) -> dict[str, Any]:
    """The first public single-location posting whose seed index has this parity (odd: no file asked)."""
    for i, pid in enumerate(sandbox.state.questions):
        p = sandbox.state.postings[pid]
        if i % 2 == parity and p in sandbox.public_postings() and len(p["categories"]["allLocations"]) == 1:
            return p
    raise AssertionError("no such posting in the seed")


def simple_posting(sandbox: Sandbox) -> dict[str, Any]:
    """A public posting whose form needs no file and has one location."""
    return _posting(sandbox, 1)


def file_posting(sandbox: Sandbox) -> dict[str, Any]:
    """A public posting whose form requires a resume and asks one question of every custom field type."""
    return _posting(sandbox, 0)


def lever_body(sandbox: Sandbox, posting_id: str, n: int = 0) -> dict[str, Any]:
    """A JSON application in the shape of Lever's Apply to a posting, answering every required question."""
    form = sandbox.state.questions[posting_id]
    custom = []
    for qset in form["customQuestions"]:
        fields = []
        for f in qset["fields"]:
            value: Any = None
            if f["required"]:
                value = f["options"][0]["text"] if f.get("options") else f"answer {n}"
            fields.append({"value": value})
        custom.append({"id": qset["id"], "fields": fields})
    return {
        "personalInformation": [{"name": "fullName", "value": f"Candidate {n}"},
                                {"name": "email", "value": f"candidate{n}@example.com"}],
        "urls": [{"name": "LinkedIn", "value": f"https://linkedin.com/in/c{n}"}],
        "customQuestions": custom,
    }


def required_cards(sandbox: Sandbox, posting_id: str) -> dict[str, str]:
    """The HTML form's answers to every required custom question of a posting (`cards[<set>][field<i>]`)."""
    return {f"cards[{qset['id']}][field{i}]": f["options"][0]["text"] if f.get("options") else "yes"
            for qset in sandbox.state.questions[posting_id]["customQuestions"]
            for i, f in enumerate(qset["fields"]) if f["required"]}


def eeo_posting(sandbox: Sandbox) -> dict[str, Any]:
    """A public posting whose form has Lever's EEO section (a US posting) and every custom field type."""
    for i, (pid, form) in enumerate(sandbox.state.questions.items()):
        p = sandbox.state.postings[pid]
        if i % 2 == 0 and "eeoQuestions" in form and p in sandbox.public_postings():
            return p
    raise AssertionError("no such posting in the seed")

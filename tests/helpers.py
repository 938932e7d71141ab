"""Building valid applications for the sandbox's postings."""

from __future__ import annotations

from typing import Any

from .conftest import Sandbox


def simple_posting(sandbox: Sandbox) -> dict[str, Any]:
    """A public posting whose form needs no file (odd index in the seed) and has one location."""
    for i, (pid, _form) in enumerate(sandbox.state.questions.items()):
        p = sandbox.state.postings[pid]
        if i % 2 == 1 and p in sandbox.public_postings() and len(p["categories"]["allLocations"]) == 1:
            return p
    raise AssertionError("no simple posting in the seed")


def file_posting(sandbox: Sandbox) -> dict[str, Any]:
    """A public posting whose form requires a resume."""
    for i, (pid, _form) in enumerate(sandbox.state.questions.items()):
        p = sandbox.state.postings[pid]
        if i % 2 == 0 and p in sandbox.public_postings() and len(p["categories"]["allLocations"]) == 1:
            return p
    raise AssertionError("no posting with a resume in the seed")


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

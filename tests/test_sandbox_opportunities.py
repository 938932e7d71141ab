"""The sandbox's opportunities model, over HTTP: contacts, stages, archive reasons, tags, filters, signed webhooks."""

from __future__ import annotations

import hashlib
import hmac
import http.server
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from jobsite.sandbox import API_KEY

from .helpers import SHUTDOWN_POLL_S, Sandbox, application_body, odd_posting

AUTH = (API_KEY, "")


def v1(sandbox: Sandbox, method: str, path: str, **kw: Any) -> requests.Response:
    return requests.request(method, f"{sandbox.url}/v1{path}", auth=AUTH, timeout=5, **kw)


def apply(sandbox: Sandbox, posting_id: str, email: str) -> str:
    sandbox.control("limits", apply_per_s=100, apply_burst=100)  # Lever's 2/s is not what these tests are about
    answer = v1(sandbox, "POST", f"/postings/{posting_id}/apply", json=application_body(sandbox, posting_id, email))
    assert answer.status_code == 201
    return str(answer.json()["data"]["applicationId"])


def opportunities(sandbox: Sandbox, **params: Any) -> list[dict[str, Any]]:
    answer = v1(sandbox, "GET", "/opportunities", params=params)
    assert answer.status_code == 200, answer.text
    return list(answer.json()["data"])


def two_postings(sandbox: Sandbox) -> tuple[str, str]:
    ids = [
        pid
        for i, pid in enumerate(sandbox.state.questions)
        if i % 2 == 1 and sandbox.state.postings[pid]["state"] == "published"
    ]
    return ids[0], ids[1]


def test_one_email_is_one_contact_with_an_opportunity_per_application(sandbox: Sandbox) -> None:
    a, b = two_postings(sandbox)
    apply(sandbox, a, "ada@example.com")
    apply(sandbox, b, "ADA@example.com ")
    apply(sandbox, a, "grace@example.com")
    ada = opportunities(sandbox, email="ada@example.com")
    assert len(ada) == 2
    assert ada[0]["contact"] == ada[1]["contact"]
    assert ada[0]["id"] != ada[1]["id"]
    assert {o["id"] for o in opportunities(sandbox, contact_id=ada[0]["contact"])} == {o["id"] for o in ada}
    assert len(opportunities(sandbox)) == 3


def test_tags_stages_archive_reasons_and_filters(sandbox: Sandbox) -> None:
    apply(sandbox, odd_posting(sandbox), "ada@example.com")
    [opp] = opportunities(sandbox)
    assert opp["stage"] == "applicant-new"
    assert opp["archived"] is None
    assert opp["tags"] == []
    added = v1(sandbox, "POST", f"/opportunities/{opp['id']}/addTags", json={"tags": ["Acme careers site", "x"]})
    assert added.status_code == 200
    assert added.json()["data"]["tags"] == ["Acme careers site", "x"]
    v1(sandbox, "POST", f"/opportunities/{opp['id']}/addTags", json={"tags": ["x"]})  # no duplicate
    v1(sandbox, "POST", f"/opportunities/{opp['id']}/removeTags", json={"tags": ["x"]})
    assert [o["tags"] for o in opportunities(sandbox)] == [["Acme careers site"]]
    assert v1(sandbox, "POST", f"/opportunities/{opp['id']}/addTags", json={"tags": "x"}).status_code == 400
    assert len(opportunities(sandbox, tag="Acme careers site")) == 1
    assert not opportunities(sandbox, tag="acme")
    stages = v1(sandbox, "GET", "/stages").json()["data"]
    reasons = v1(sandbox, "GET", "/archive_reasons").json()["data"]
    hired = [r for r in reasons if r["type"] == "hired"]
    assert [r["text"] for r in hired] == ["Hired"]
    assert len(reasons) > 1
    since = opportunities(sandbox)[0]["updatedAt"] + 1
    assert not opportunities(sandbox, updated_at_start=since)
    sandbox.control(f"opportunities/{opp['id']}/stage", stage=stages[2]["id"])
    [moved] = opportunities(sandbox, updated_at_start=since, expand="stage")
    assert moved["stage"] == stages[2]
    assert moved["lastAdvancedAt"] >= since
    sandbox.control(f"opportunities/{opp['id']}/archive", reason=hired[0]["id"])
    assert opportunities(sandbox, archived="true")[0]["archived"]["reason"] == hired[0]["id"]
    sandbox.control("maintenance", on=True)
    for path in ("/stages", "/archive_reasons", "/opportunities"):
        assert v1(sandbox, "GET", path).status_code == 503
    assert v1(sandbox, "POST", f"/opportunities/{opp['id']}/addTags", json={"tags": ["y"]}).status_code == 503
    assert sandbox.count("opportunities.tags", 503) == 1
    assert sandbox.count("archive_reasons.list", 503) == 1


class Receiver:
    """A webhook endpoint: records what arrives, answers 200."""

    def __init__(self) -> None:
        self.got: list[dict[str, Any]] = []
        received = self.got

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, args=(SHUTDOWN_POLL_S,), daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver()
    yield rec
    rec.server.shutdown()
    rec.server.server_close()


def signed(envelope: dict[str, Any], key: str) -> bool:
    mac = hmac.new(key.encode(), f"{envelope['token']}{envelope['triggeredAt']}".encode(), hashlib.sha256)
    return hmac.compare_digest(mac.hexdigest(), envelope["signature"])


def test_signed_webhooks_for_stage_archive_hire_and_deletion(sandbox: Sandbox, receiver: Receiver) -> None:
    sandbox.control("webhooks", url=receiver.url, token="s3cret")
    apply(sandbox, odd_posting(sandbox), "ada@example.com")
    [opp] = opportunities(sandbox)
    hired = next(r["id"] for r in v1(sandbox, "GET", "/archive_reasons").json()["data"] if r["type"] == "hired")
    assert sandbox.control(f"opportunities/{opp['id']}/stage", stage="offer") == {"webhooks": [200]}
    assert sandbox.control(f"opportunities/{opp['id']}/archive", reason=hired) == {"webhooks": [200, 200]}
    sandbox.control(f"contacts/{opp['contact']}/delete")
    sent = [w["envelope"] for w in sandbox.received()["webhooks"]]
    events = [e["event"] for e in sent]
    assert events[-4:] == ["candidateStageChange", "candidateArchiveChange", "candidateHired", "candidateDeleted"]
    assert "applicationCreated" in events
    assert all(signed(e, "s3cret") and len(e["token"]) == 48 for e in sent)
    assert sent[-4]["data"]["toStageId"] == "offer"
    assert sent[-4]["data"]["contactId"] == opp["contact"]
    assert sent[-3]["data"]["toArchived"]["reason"] == hired
    assert not opportunities(sandbox)
    sandbox.control("webhooks", url=receiver.url, token="s3cret", bad_signature=True)
    apply(sandbox, odd_posting(sandbox), "grace@example.com")
    [opp] = opportunities(sandbox)
    sandbox.control(f"opportunities/{opp['id']}/stage", stage="offer")
    assert not signed(sandbox.received()["webhooks"][-1]["envelope"], "s3cret")

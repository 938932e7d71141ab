"""Issue 21: each attack of the second hardening probe, reproduced and now refused."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import time
from dataclasses import replace

import pytest
import redis
import requests

from jobsite.console import accounts, api_keys, audit
from jobsite.delivery import deliverer
from jobsite.followup import report
from jobsite.records import store
from jobsite.redisdb.redis_server import memory
from jobsite.services import Services
from jobsite.settings import Settings
from jobsite.web.app import create_app
from jobsite.worker import tasks

from .helpers import ADMIN, LiveServer, Sandbox, csrf, file_posting, lever_body, sign_in, submit_one


def test_the_pipeline_page_ignores_url_for_arguments_in_its_query_string(client, r: redis.Redis) -> None:
    """Item 9: `_method`, `endpoint` or `_external` in the query string never reach url_for (they were a 500)."""
    accounts.add_user(r, *ADMIN, accounts.Role.ADMIN)
    sign_in(client, *ADMIN)
    for query in ("_method=POST", "endpoint=x", "_external=1&_scheme=javascript", "from=2026-01-01&_anchor=x"):
        answer = client.get(f"/admin/pipeline?{query}")
        assert answer.status_code == 200, query
        page = answer.get_data(as_text=True)
        assert "javascript" not in page
        assert "#x" not in page
    assert 'href="/admin/pipeline.csv?from=2026-01-01"' in client.get("/admin/pipeline?from=2026-01-01&x=1").get_data(
        as_text=True
    )


def test_a_file_goes_out_named_for_what_it_is_not_for_what_it_was_called(
    client, r: redis.Redis, sandbox: Sandbox, settings: Settings
) -> None:
    """Item 4: `resume.hta` holding text is served to the console and uploaded to Lever as `resume.txt`."""
    posting = file_posting(sandbox)
    script = b'<script>new ActiveXObject("WScript.Shell").Run("calc")</script>\n'
    files = {
        "application": json.dumps(lever_body(sandbox, posting["id"])),
        "resume": (io.BytesIO(script), "resume.hta"),
    }
    receipt = client.post(f"/api/v1/postings/{posting['id']}/applications", data=files).get_json()["receipt"]
    accounts.add_user(r, *ADMIN, accounts.Role.ADMIN)
    sign_in(client, *ADMIN)
    download = client.get(f"/admin/applications/{receipt}/files/0")
    assert download.status_code == 200
    assert download.headers["Content-Disposition"] == "attachment; filename=resume.txt"
    assert download.headers["Content-Type"].startswith("text/plain")
    assert deliverer.deliver(tasks.use(Services(settings)).delivery, receipt).outcome == deliverer.Outcome.DELIVERED
    [uploaded] = sandbox.state.uploads.values()
    assert uploaded["filename"] == "resume.txt"


def signed(event: str, data: dict, token: str, key: str = "signing-token") -> dict:
    """An envelope as Lever signs it: the signature covers token + triggeredAt only."""
    at = int(time.time() * 1000)
    signature = hmac.new(key.encode(), f"{token}{at}".encode(), hashlib.sha256).hexdigest()
    return {"event": event, "data": data, "token": token, "triggeredAt": at, "signature": signature}


def test_a_signed_envelope_replayed_as_candidate_deleted_forgets_no_one(
    r: redis.Redis, sandbox: Sandbox, settings: Settings
) -> None:
    """Item 7: an ignored event's token is spent too, and a deletion is acted on only once Lever no longer holds
    the contact."""
    hooked = replace(settings, lever_webhook_token="signing-token")
    svc = tasks.use(Services(hooked))
    receipt = submit_one(svc, sandbox)
    assert deliverer.deliver(svc.delivery, receipt).outcome == deliverer.Outcome.DELIVERED
    contact = store.load(r, receipt).contact_id
    report.track(r, store.load(r, receipt))
    hook = create_app(hooked).test_client()
    interview = signed("interviewCreated", {"contactId": contact}, "t1")
    assert hook.post("/webhooks/lever", json=interview).status_code == 200
    assert hook.post("/webhooks/lever", json={**interview, "event": "candidateDeleted"}).status_code == 409
    forged = hook.post("/webhooks/lever", json=signed("candidateDeleted", {"contactId": contact}, "t2"))
    assert forged.status_code == 200
    assert forged.get_json()["applied"] is False
    assert store.load(r, receipt).application is not None
    assert store.of_contact(r, contact) == [receipt]
    # Once Lever has deleted the person, the same event is applied.
    sandbox.control(f"contacts/{contact}/delete")
    assert (
        hook.post("/webhooks/lever", json=signed("candidateDeleted", {"contactId": contact}, "t3")).get_json()[
            "applied"
        ]
        is True
    )
    assert store.load(r, receipt).application is None


def test_api_traffic_cannot_push_recruiters_actions_out_of_the_audit_log(
    client, r: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Item 6: more key uses than the log keeps (valid and revoked keys, GETs) leave every recruiter's action."""
    monkeypatch.setattr(audit, "KEEP", 40)  # the real 10,000 takes a minute of requests to overflow
    audit.record(r, ADMIN[0], "discard", "r1", "duplicate")
    key, revoked = api_keys.add(r, "script"), api_keys.add(r, "old")
    api_keys.revoke(r, "old")
    for n in range(audit.KEEP + 10):
        assert client.get("/api/v1/postings", headers={"Authorization": f"Bearer {key if n % 2 else revoked}"})
    assert [e["action"] for e in audit.entries(r)] == ["discard"]
    uses = audit.entries(r, audit.KEEP + 10, api=True)
    assert len(uses) == audit.KEEP
    assert {e["who"] for e in uses} == {"API client script", "API client old"}
    accounts.add_user(r, *ADMIN, accounts.Role.ADMIN)
    sign_in(client, *ADMIN)
    page = client.get("/admin/audit").get_data(as_text=True)
    assert "duplicate" in page.split('id="api-use"')[0]


def test_one_address_cannot_fill_redis_and_a_small_cv_still_gets_in(
    r: redis.Redis, sandbox: Sandbox, settings: Settings
) -> None:
    """Item 3: intake per address is limited by bytes too, an IPv6 /64 counts as one address, and above the
    low-water mark large uploads are refused first, so a candidate with a CV still gets in."""
    client = create_app(replace(settings, submission_mb_per_ip_per_hour=1)).test_client()
    posting = file_posting(sandbox)
    url = f"/api/v1/postings/{posting['id']}/applications"

    def send(address: str, size: int, n: int = 0) -> tuple[int, dict]:
        files = {
            "application": json.dumps(lever_body(sandbox, posting["id"], n)),
            "resume": (io.BytesIO(b"%PDF-1.7 " + b"0" * size), "cv.pdf"),
        }
        answer = client.post(url, data=files, environ_base={"REMOTE_ADDR": address})
        return answer.status_code, dict(answer.headers)

    assert [send("2001:db8:0:7::1", 400_000, n)[0] for n in range(2)] == [202, 202]
    status, headers = send("2001:db8:0:7::2", 400_000)  # the same /64: the same megabyte an hour
    assert status == 429
    assert 0 < int(headers["Retry-After"]) <= 3600
    assert send("2001:db8:0:7::3", 2_000)[0] == 202  # what is left of it still takes a CV
    assert send("2001:db8:0:8::1", 400_000)[0] == 202  # another /64
    live = LiveServer(create_app(settings))  # real HTTP: the test client leaks a large refused upload's spool file
    before = r.config_get("maxmemory")["maxmemory"]
    r.config_set("maxmemory", int(memory(r).used / 0.7))  # between the low (0.6) and the high (0.8) water marks
    try:
        for size, status in ((3 * 2**20, 503), (2_000, 202)):  # a large upload waits for room, a CV gets in
            files = {
                "application": (None, json.dumps(lever_body(sandbox, posting["id"], size))),
                "resume": ("cv.pdf", b"%PDF-1.7 " + b"0" * size),
            }
            assert requests.post(f"{live.url}{url}", files=files, timeout=30).status_code == status
    finally:
        r.config_set("maxmemory", before)
        live.stop()


def test_failed_sign_ins_from_one_address_are_capped_across_accounts(r: redis.Redis, settings: Settings) -> None:
    """Item 5: a new email per try walked past the per-account throttle, each costing a slow hash; past the
    address's ceiling (300 by default: a company behind one NAT) it is a 429 with the real wait, whatever the
    account, while other addresses sign in as before. A right password gives its try back."""
    console = create_app(replace(settings, signin_failures_per_ip_per_hour=10)).test_client()
    accounts.add_user(r, *ADMIN, accounts.Role.ADMIN)

    def attempt(email: str, password: str = "wrong password!", address: str = "203.0.113.7") -> int:
        token = csrf(console, "/admin/login")
        return console.post(
            "/admin/login",
            data={"email": email, "password": password, "csrf_token": token},
            environ_base={"REMOTE_ADDR": address},
        ).status_code

    assert attempt(*ADMIN) == 302  # a success counts nothing
    assert [attempt(f"guess{n}@acme.test") for n in range(10)] == [401] * 10
    token = csrf(console, "/admin/login")
    capped = console.post(
        "/admin/login",
        data={"email": ADMIN[0], "password": ADMIN[1], "csrf_token": token},
        environ_base={"REMOTE_ADDR": "203.0.113.7"},
    )
    assert capped.status_code == 429
    assert 0 < int(capped.headers["Retry-After"]) <= 3600
    assert attempt(*ADMIN, address="198.51.100.9") == 302


def test_a_talent_resume_is_checked_and_goes_out_named_for_what_it_is(
    client, r: redis.Redis, sandbox: Sandbox, settings: Settings
) -> None:
    """Issue 28, item 2: the talent community sent the sender's own file name to Lever, checked by its extension
    only before it was cut to 100 characters (96 `A`s + `.hta` + 10 `B`s + `.pdf` arrived as `AAAA…A.hta` holding a
    WScript.Shell script), and took an EXE or an HTML page called `.pdf`. Now the one check applications use."""
    from jobsite.sourcing import opportunities as sourcing_deliverer
    from jobsite.sourcing import people

    def join(name: str, content: bytes):
        return client.post(
            "/api/v1/talent",
            data={
                "name": "Ada Lovelace",
                "email": "ada@example.com",
                "consent": "true",
                "resume": (io.BytesIO(content), name),
            },
        )

    script = b'<script>new ActiveXObject("WScript.Shell").Run("calc")</script>\n'
    for name, content in (
        ("A" * 96 + ".hta" + "B" * 10 + ".pdf", script),
        ("cv.pdf", b"MZ\x90\x00\x03" + b"\0" * 64),
        ("cv.pdf", b"<!doctype html><html><body>hello</body></html>\n"),
    ):
        refused = join(name, content)
        assert refused.status_code == 422, (name[:20], refused.get_data(as_text=True))
        assert set(refused.get_json()["errors"]) == {"resume"}
    assert people.everyone(r) == []
    joined = join("A" * 96 + ".hta", script)  # text, and not called a document: it is kept, as text
    assert joined.status_code == 202
    svc = tasks.use(Services(settings))
    assert sourcing_deliverer.deliver(svc.delivery, joined.get_json()["receipt"]).outcome == deliverer.Outcome.DELIVERED
    [made] = requests.get(f"{sandbox.url}/_sandbox/opportunities", timeout=5).json()["data"]
    assert made["resume"]["name"] == "A" * 80 + ".txt"


def test_a_filled_honeypot_is_refused_for_a_sign_up_as_for_an_application(client, r: redis.Redis) -> None:
    """The hidden `website` field a bot fills: a 400 and nothing kept, for the talent community as for applications
    (one check, web/submission.refuse_automated)."""
    from jobsite.sourcing import people

    body = {"name": "Bot", "email": "bot@example.com", "consent": "true", "website": "http://spam.example"}
    refused = client.post("/api/v1/talent", json=body)
    assert refused.status_code == 400
    assert "automated" in refused.get_json()["message"]
    assert people.everyone(r) == []
    assert client.post("/api/v1/talent", json={**body, "website": ""}).status_code == 202


def test_a_colleague_who_sends_your_client_id_first_gets_their_own_person(
    r: redis.Redis, sandbox: Sandbox, settings: Settings
) -> None:
    """Issue 28, item 5: the client_id guard was per event, so a colleague's capture with your id (copied, guessed)
    answered yours with their person (200), and your phone dropped your capture."""
    from jobsite.sourcing import enrol as sourced
    from jobsite.sourcing import events, people

    svc = Services(settings)
    fair = events.add(r, "Fair", "", [])

    def capture(name: str, recruiter: str) -> sourced.Accepted:
        body = {"name": name, "email": f"{name.split()[0].lower()}@example.com", "client_id": "c-0000001"}
        return sourced.submit(svc.enrolment, sourced.event_capture(body, fair, recruiter))

    theirs = capture("Mallory Sender", "sam@acme.example")
    mine = capture("Grace Hopper", "rita@acme.example")
    assert mine.new
    assert (mine.person.name, mine.person.recruiter) == ("Grace Hopper", "rita@acme.example")
    assert theirs.person.id != mine.person.id
    again = capture("Grace Hopper", "rita@acme.example")  # my own retry is still one person
    assert (again.new, again.person.id) == (False, mine.person.id)
    assert len(people.of_event(r, fair.id)) == 2


def test_sign_ups_queue_behind_applications_and_the_site_takes_so_many_an_hour(
    client, r: redis.Redis, sandbox: Sandbox, settings: Settings
) -> None:
    """Issue 28, item 3: sign-ups went on the applications' queue (600 from 20 addresses took a real application
    from 0.6 s to 64 s to reach Lever), and the only limit was per address (a /48 holds 65,536 /64s). Now they have
    their own queue, which a worker serves when no application waits, and a cap for the whole site."""
    from rq import Queue

    from jobsite.delivery import jobs
    from jobsite.settings import load_settings

    from .helpers import simple_posting

    def join(on, n: int, address: str = "127.0.0.1"):
        return on.post(
            "/api/v1/talent",
            json={"name": f"Person {n}", "email": f"p{n}@example.com", "consent": True},
            environ_base={"REMOTE_ADDR": address},
        ).status_code

    assert [join(client, n) for n in range(5)] == [202] * 5
    posting = simple_posting(sandbox)
    applied = client.post(f"/api/v1/postings/{posting['id']}/applications", json=lever_body(sandbox, posting["id"]))
    assert applied.status_code == 202
    first = Queue.dequeue_any(jobs.queues(r), None, connection=r)
    assert first is not None
    job, _ = first
    assert job.func_name == jobs.DELIVER  # the application, though five sign-ups came before it

    capped = create_app(load_settings({}, **{**settings.__dict__, "signups_per_hour": 7})).test_client()
    statuses = [join(capped, 10 + n, f"198.51.100.{n}") for n in range(3)]  # 5 + 2 this hour: the site is full
    assert statuses == [202, 202, 429]

"""Submitting applications over HTTP: the JSON API, the HTML form, and every kind of bad input."""

from __future__ import annotations

import io
import json
import re
from typing import Any

import pytest
import redis
import requests

from jobsite.records import store, uploads
from jobsite.settings import Settings, load_settings
from jobsite.web.app import create_app

from .helpers import LiveServer, Sandbox, file_posting, lever_body, required_cards, simple_posting

ELF = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 200


def nothing_stored(r: redis.Redis, settings: Settings) -> bool:
    return (
        r.zcard(store.ALL) == 0
        and r.llen("rq:queue:applications") == 0
        and r.keys("upload:*") == []
        and not (settings.data_dir / "spool").exists()
    )


def test_json_application_is_accepted_with_a_receipt(client, r: redis.Redis, sandbox: Sandbox) -> None:
    posting = simple_posting(sandbox)
    answer = client.post(f"/api/v1/postings/{posting['id']}/applications", json=lever_body(sandbox, posting["id"]))
    assert answer.status_code == 202
    data = answer.get_json()
    assert data["status"] == "queued"
    assert len(data["receipt"]) >= 22
    assert data["status_url"].endswith(f"/api/v1/applications/{data['receipt']}")
    rec = store.load(r, data["receipt"])
    assert rec.state.value == "queued"
    assert rec.application.email == "candidate0@example.com"
    assert r.llen("rq:queue:applications") == 1
    status = client.get(f"/api/v1/applications/{data['receipt']}").get_json()
    assert status["status"] == "queued"
    assert "candidate0" not in json.dumps(status)
    assert client.get("/api/v1/applications/not-a-receipt").status_code == 404
    assert answer.headers["Access-Control-Allow-Origin"] == "*"


def test_multipart_application_with_a_resume(client, r: redis.Redis, sandbox: Sandbox, settings: Settings) -> None:
    posting = file_posting(sandbox)
    body = lever_body(sandbox, posting["id"])
    data = {"application": json.dumps(body), "resume": (io.BytesIO(b"%PDF-1.7 my cv"), "cv.pdf")}
    answer = client.post(
        f"/api/v1/postings/{posting['id']}/applications", data=data, content_type="multipart/form-data"
    )
    assert answer.status_code == 202, answer.get_json()
    rec = store.load(r, answer.get_json()["receipt"])
    assert [(f["field"], f["kind"], f["filename"]) for f in rec.files] == [("resume", "pdf", "cv.pdf")]
    assert uploads.read(r, rec.receipt, rec.files[0]) == b"%PDF-1.7 my cv"
    assert not (settings.data_dir / "uploads").exists()  # the file is in Redis, not on this machine's disk


def test_idempotency_key_returns_the_first_receipt(client, r: redis.Redis, sandbox: Sandbox) -> None:
    posting = simple_posting(sandbox)
    url = f"/api/v1/postings/{posting['id']}/applications"
    body = lever_body(sandbox, posting["id"])
    first = client.post(url, json=body, headers={"Idempotency-Key": "abc-123"}).get_json()
    second = client.post(url, json=body, headers={"Idempotency-Key": "abc-123"}).get_json()
    assert first["receipt"] == second["receipt"]
    assert r.zcard(store.ALL) == 1
    third = client.post(url, json=body, headers={"Idempotency-Key": "other"}).get_json()
    assert third["receipt"] != first["receipt"]
    assert r.zcard(store.ALL) == 2


def test_a_reused_idempotency_key_never_hands_out_another_persons_receipt(
    client, r: redis.Redis, sandbox: Sandbox
) -> None:
    """Issue 13, item 4: the key is scoped to the posting and the body; honeypot and validation run first."""
    posting, other = simple_posting(sandbox), file_posting(sandbox)
    url = f"/api/v1/postings/{posting['id']}/applications"
    key = {"Idempotency-Key": "shared-key"}
    first = client.post(url, json=lever_body(sandbox, posting["id"]), headers=key).get_json()

    someone_else = client.post(url, json=lever_body(sandbox, posting["id"], n=1), headers=key)
    assert someone_else.status_code == 422
    assert "already used" in someone_else.get_json()["message"]
    other_posting = client.post(
        f"/api/v1/postings/{other['id']}/applications", json=lever_body(sandbox, other["id"]), headers=key
    )
    assert other_posting.status_code == 422
    invalid = client.post(url, json={**lever_body(sandbox, posting["id"]), "personalInformation": []}, headers=key)
    assert invalid.status_code == 422
    assert "errors" in invalid.get_json()
    bot = client.post(url, json={**lever_body(sandbox, posting["id"]), "website": "http://spam"}, headers=key)
    assert bot.status_code == 400
    for answer in (someone_else, other_posting, invalid, bot):
        assert first["receipt"] not in answer.get_data(as_text=True)
    assert r.zcard(store.ALL) == 1

    replay = client.post(url, json=lever_body(sandbox, posting["id"]), headers=key).get_json()
    assert replay["receipt"] == first["receipt"]
    assert r.zcard(store.ALL) == 1


def test_bad_inputs_get_clear_errors_and_change_nothing(settings: Settings, r: redis.Redis, sandbox: Sandbox) -> None:
    app = create_app(load_settings({}, **{**settings.__dict__, "max_request_mb": 1, "max_file_mb": 1}))
    client = app.test_client()
    posting = file_posting(sandbox)
    url = f"/api/v1/postings/{posting['id']}/applications"
    body = lever_body(sandbox, posting["id"])

    live = LiveServer(app)  # over real HTTP: werkzeug's test client leaks the spooled body of a refused upload
    try:
        too_big = requests.post(
            live.url + url,
            data={"application": json.dumps(body)},
            files={"resume": ("cv.pdf", b"%PDF-" + b"x" * 2 * 2**20)},
            timeout=10,
        )
    finally:
        live.stop()
    assert too_big.status_code == 413
    assert "larger than the 1 MB" in too_big.json()["message"]

    renamed = client.post(
        url,
        data={"application": json.dumps(body), "resume": (io.BytesIO(ELF), "cv.pdf")},
        content_type="multipart/form-data",
    )
    assert renamed.status_code == 422
    assert "PDF, Word" in renamed.get_json()["errors"]["resume"]

    missing = client.post(url, json={"personalInformation": [{"name": "email", "value": "x@example.com"}]})
    assert missing.status_code == 422
    errors = missing.get_json()["errors"]
    assert errors["fullName"] == "Enter your full name."
    assert "resume" in errors
    assert sum(1 for k in errors if k.startswith("cards[")) == 3

    bad_email = dict(body, personalInformation=[{"name": "fullName", "value": "A"}, {"name": "email", "value": "nope"}])
    assert "email" in client.post(url, json=bad_email).get_json()["errors"]
    bad_choice = json.loads(json.dumps(body))
    bad_choice["customQuestions"][0]["fields"][1]["value"] = "Maybe"
    assert client.post(url, json=bad_choice).status_code == 422

    unknown = client.post("/api/v1/postings/00000000-0000-4000-8000-000000000000/applications", json=body)
    assert unknown.status_code == 404
    assert "closed" in unknown.get_json()["message"]
    closed = next(p for p in sandbox.state.postings.values() if p["state"] == "closed")
    assert client.post(f"/api/v1/postings/{closed['id']}/applications", json=body).status_code == 404
    assert client.post(url, data="{not json", content_type="application/json").status_code == 400
    assert client.post(url, data="x", content_type="text/plain").status_code == 415
    assert client.post(url, json=dict(body, website="http://spam")).status_code == 400  # honeypot
    assert nothing_stored(r, settings)


def test_per_ip_limit(settings: Settings, r: redis.Redis, sandbox: Sandbox) -> None:
    app = create_app(load_settings({}, **{**settings.__dict__, "submissions_per_ip_per_hour": 2}))
    client = app.test_client()
    posting = simple_posting(sandbox)
    url = f"/api/v1/postings/{posting['id']}/applications"
    codes = [client.post(url, json=lever_body(sandbox, posting["id"], n)).status_code for n in range(3)]
    assert codes == [202, 202, 429]
    last = client.post(url, json=lever_body(sandbox, posting["id"], 9))
    assert "many applications from your network" in last.get_json()["message"]
    assert last.headers["Retry-After"]
    assert r.zcard(store.ALL) == 2
    [counter] = [k.decode() for k in r.keys("quota:submissions:*:applications:*")]
    import hashlib

    assert hashlib.sha256(b"127.0.0.1").hexdigest()[:24] not in counter  # keyed: not found again by hashing IPs
    assert 0 < int(last.headers["Retry-After"]) <= 3600  # the real wait: to the next hour


def test_html_form_submission_redirects_to_a_confirmation(client, r: redis.Redis, sandbox: Sandbox) -> None:
    posting = file_posting(sandbox)
    page = client.get(f"/jobs/{posting['id']}/apply").get_data(as_text=True)
    token = re.search(r'name="form_token" value="([^"]+)"', page).group(1)
    form = {
        "form_token": token,
        "fullName": "Grace Hopper",
        "email": "grace@example.com",
        "resume": (io.BytesIO(b"Grace Hopper\nRear admiral, COBOL"), "cv.txt"),
        "consent[store]": "true",
    }
    form.update(required_cards(sandbox, posting["id"]))
    answer = client.post(f"/jobs/{posting['id']}/apply", data=form, content_type="multipart/form-data")
    assert answer.status_code == 303
    confirmation = client.get(answer.headers["Location"])
    text = confirmation.get_data(as_text=True)
    assert confirmation.status_code == 200
    assert "Thank you for applying" in text
    assert posting["text"] in text
    assert "grace@example.com" not in text
    rec = store.load_many(r, store.receipts(r, store.State.QUEUED))[0]
    assert rec.application.consent["store"]["provided"] is True
    assert rec.files[0]["kind"] == "txt"
    # the same rendered form sent twice (a double click) is one application
    form["resume"] = (io.BytesIO(b"Grace Hopper\nRear admiral, COBOL"), "cv.txt")
    again = client.post(f"/jobs/{posting['id']}/apply", data=form, content_type="multipart/form-data")
    assert again.headers["Location"] == answer.headers["Location"]
    assert r.zcard(store.ALL) == 1
    # back, change an answer, send the same form again: nothing sent, a new form keeps the answers
    form.update(fullName="Grace B. Hopper", resume=(io.BytesIO(b"Grace Hopper\nRear admiral, COBOL"), "cv.txt"))
    edited = client.post(f"/jobs/{posting['id']}/apply", data=form, content_type="multipart/form-data")
    page = edited.get_data(as_text=True)
    assert edited.status_code == 422
    assert "already used" in page
    assert 'value="Grace B. Hopper"' in page
    assert r.zcard(store.ALL) == 1
    assert answer.headers["Location"].rsplit("/", 1)[1] not in page
    form.update(
        form_token=re.search(r'name="form_token" value="([^"]+)"', page).group(1),
        resume=(io.BytesIO(b"Grace Hopper\nRear admiral, COBOL"), "cv.txt"),
    )
    resent = client.post(f"/jobs/{posting['id']}/apply", data=form, content_type="multipart/form-data")
    assert resent.status_code == 303
    assert resent.headers["Location"] != answer.headers["Location"]
    assert r.zcard(store.ALL) == 2


def test_a_forged_or_expired_form_token_loses_no_answers(client, r: redis.Redis, sandbox: Sandbox) -> None:
    posting = simple_posting(sandbox)
    answer = client.post(f"/jobs/{posting['id']}/apply", data={"form_token": "forged", "fullName": "Ada"})
    text = answer.get_data(as_text=True)
    assert answer.status_code == 400
    assert "This form had expired" in text
    assert 'value="Ada"' in text
    assert r.zcard(store.ALL) == 0


def test_errors_are_escaped_and_never_a_stack_trace(client, sandbox: Sandbox) -> None:
    posting = simple_posting(sandbox)
    page = client.get(f"/jobs/{posting['id']}/apply").get_data(as_text=True)
    token = re.search(r'name="form_token" value="([^"]+)"', page).group(1)
    answer = client.post(
        f"/jobs/{posting['id']}/apply",
        data={"form_token": token, "fullName": "<script>alert(1)</script>", "email": "x"},
    )
    text = answer.get_data(as_text=True)
    assert answer.status_code == 422
    assert "<script>alert(1)</script>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "Traceback" not in client.get("/jobs/%00/apply").get_data(as_text=True)


def test_security_headers_and_request_ids(client, sandbox: Sandbox) -> None:
    page = client.get("/")
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors *" in page.headers["Content-Security-Policy"]  # embeddable in an iframe
    assert "Set-Cookie" not in page.headers  # candidates get no cookie
    assert re.fullmatch(r"[0-9a-f]{16}", page.headers["X-Request-Id"])
    assert client.get("/", headers={"X-Request-Id": "edge-42"}).headers["X-Request-Id"] == "edge-42"
    assert client.get("/", headers={"X-Request-Id": "<bad id>"}).headers["X-Request-Id"] != "<bad id>"
    console = client.get("/admin/login")
    assert "frame-ancestors 'none'" in console.headers["Content-Security-Policy"]
    assert console.headers["Cache-Control"] == "no-store"
    cookie = console.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie


def test_hsts_metrics_token_and_the_host_allow_list(settings: Settings, sandbox: Sandbox) -> None:
    """Issue 13, item 8."""
    local = create_app(settings).test_client()
    assert "Strict-Transport-Security" not in local.get("/").headers  # no public https URL: no HSTS
    evil = local.get("/sitemap.xml", headers={"Host": "evil.example"})
    assert evil.status_code == 400
    assert b"evil.example" not in evil.data
    assert local.get("/sitemap.xml", headers={"Host": "127.0.0.1:8000"}).status_code == 200

    token = "t" * 32
    public = create_app(
        load_settings({}, **{**settings.__dict__, "public_url": "https://careers.example.com", "metrics_token": token})
    ).test_client()
    page = public.get("/", headers={"Host": "10.0.0.7:8000"})  # a load balancer's probe by address
    assert page.status_code == 200
    assert page.headers["Strict-Transport-Security"].startswith("max-age=31536000")
    assert "https://careers.example.com/jobs/" in public.get("/sitemap.xml").get_data(as_text=True)
    for path in ("/metrics", "/readyz"):
        refused = public.get(path)
        assert refused.status_code == 401
        assert "JOBSITE_METRICS_TOKEN" in refused.get_data(as_text=True)
        assert public.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert public.get(path, headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert public.get("/healthz").status_code == 200  # liveness stays open


def test_a_rejected_file_in_the_html_form_is_explained(client, r: redis.Redis, sandbox: Sandbox) -> None:
    posting = file_posting(sandbox)
    page = client.get(f"/jobs/{posting['id']}/apply").get_data(as_text=True)
    token = re.search(r'name="form_token" value="([^"]+)"', page).group(1)
    answer = client.post(
        f"/jobs/{posting['id']}/apply",
        content_type="multipart/form-data",
        data={
            "form_token": token,
            "fullName": "Mallory",
            "email": "m@example.com",
            "resume": (io.BytesIO(ELF), "resume.pdf"),
        },
    )
    text = answer.get_data(as_text=True)
    assert answer.status_code == 422
    assert "please attach them again" in text
    assert "Upload a PDF, Word (doc, docx), OpenDocument (odt), RTF or plain text file." in text
    assert 'value="Mallory"' in text
    assert r.zcard(store.ALL) == 0


def test_postings_json_is_cacheable_with_any_search(client) -> None:
    first = client.get("/api/v1/postings", query_string={"q": "ingénieur ☃"})
    assert first.status_code == 200
    assert first.headers["ETag"]
    again = client.get(
        "/api/v1/postings", query_string={"q": "ingénieur ☃"}, headers={"If-None-Match": first.headers["ETag"]}
    )
    assert again.status_code == 304


def _confused(body: dict[str, Any], path: list[Any], value: object) -> dict[str, Any]:
    """`body` with the item at `path` replaced by `value`."""
    import copy

    out = copy.deepcopy(body)
    target: Any = out
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return out


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (["personalInformation"], 5),
        (["urls"], True),
        (["customQuestions", 0, "fields"], 7),
        (["customQuestions", 0, "fields", 0, "value"], {}),
        (["customQuestions", 0, "fields", 0, "value"], {"a": 1}),
        (["customQuestions", 0, "fields", 0, "value"], [{"x": 1}]),
        (["customQuestions"], "all of them"),
        (["eeoResponses"], ["gender"]),
    ],
)
def test_type_confusion_is_a_clear_error_never_a_500(
    client, r: redis.Redis, sandbox: Sandbox, path: list[Any], value: object
) -> None:
    posting = file_posting(sandbox)
    body = _confused(lever_body(sandbox, posting["id"]), path, value)
    answer = client.post(f"/api/v1/postings/{posting['id']}/applications", json=body)
    assert answer.status_code in (400, 422)
    assert answer.get_json()["message"]
    assert r.zcard(store.ALL) == 0


def test_oversized_or_deeply_nested_json_is_refused_before_parsing(client, r: redis.Redis, sandbox: Sandbox) -> None:
    url = f"/api/v1/postings/{simple_posting(sandbox)['id']}/applications"
    big = client.post(url, data=b"[" * 300_000, content_type="application/json")
    assert big.status_code == 413
    assert "256 KB" in big.get_json()["message"]
    deep = client.post(url, data=b"[" * 5_000 + b"]" * 5_000, content_type="application/json")
    assert deep.status_code == 400
    deep_part = client.post(url, data={"application": "[" * 5_000 + "]" * 5_000}, content_type="multipart/form-data")
    assert deep_part.status_code == 400
    assert r.zcard(store.ALL) == 0

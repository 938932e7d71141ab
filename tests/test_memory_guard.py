"""Redis holds every waiting application with its files: above a high-water mark of its maxmemory, new applications
are refused with a 503 the candidate can act on, and nothing is half-accepted. The embedded server never evicts."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator

import pytest
import redis
import requests

from jobsite.records import store
from jobsite.redisdb.redis_server import Memory, connect, embedded, memory, memory_warnings
from jobsite.services import Services
from jobsite.settings import Settings, load_settings
from jobsite.web.app import create_app
from jobsite.worker import tasks

from .helpers import LiveServer, Sandbox, file_posting, lever_body, required_cards


@pytest.fixture
def nearly_full(r: redis.Redis) -> Iterator[None]:
    """Give the test server a maxmemory that its current use is 90 % of (above the 80 % mark, below the limit, so
    Redis itself still takes writes: a refusal can only be the guard's); restore it after."""
    before = r.config_get("maxmemory")["maxmemory"]
    r.config_set("maxmemory", int(memory(r).used / 0.9))
    yield
    r.config_set("maxmemory", before)


def nothing_accepted(r: redis.Redis) -> bool:
    return r.zcard(store.ALL) == 0 and r.llen("rq:queue:applications") == 0 and r.keys("upload:*") == []


def form_fields(client, sandbox: Sandbox, posting: dict) -> dict:
    page = client.get(f"/jobs/{posting['id']}/apply").get_data(as_text=True)
    token = re.search(r'name="form_token" value="([^"]+)"', page).group(1)
    form = {
        "form_token": token,
        "fullName": "Grace Hopper",
        "email": "grace@example.com",
        "resume": (io.BytesIO(b"%PDF-1.7 Grace Hopper, COBOL"), "cv.pdf"),
        "consent[store]": "true",
    }
    form.update(required_cards(sandbox, posting["id"]))
    return form


def test_a_nearly_full_redis_refuses_the_form_and_keeps_the_answers(
    client, r: redis.Redis, sandbox: Sandbox, request: pytest.FixtureRequest
) -> None:
    posting = file_posting(sandbox)
    form = form_fields(client, sandbox, posting)
    request.getfixturevalue("nearly_full")
    answer = client.post(f"/jobs/{posting['id']}/apply", data=form, content_type="multipart/form-data")
    text = answer.get_data(as_text=True)
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == "300"
    assert "please try again in a few minutes" in text
    assert "Please attach your files again." in text
    assert 'value="Grace Hopper"' in text
    assert 'value="grace@example.com"' in text
    assert "Traceback" not in text
    assert nothing_accepted(r)
    assert b'"jobsite_applications_refused_total",{"reason":"redis_memory"}' in b"".join(r.hkeys("metrics:counters"))


def test_a_nearly_full_redis_refuses_the_api_with_json(
    client, r: redis.Redis, sandbox: Sandbox, nearly_full: None
) -> None:
    posting = file_posting(sandbox)
    data = {
        "application": json.dumps(lever_body(sandbox, posting["id"])),
        "resume": (io.BytesIO(b"%PDF-1.7 my cv"), "cv.pdf"),
    }
    answer = client.post(
        f"/api/v1/postings/{posting['id']}/applications", data=data, content_type="multipart/form-data"
    )
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == "300"
    assert answer.get_json()["message"].startswith("We can't take applications for a few minutes")
    assert nothing_accepted(r)


def send(live: LiveServer, sandbox: Sandbox, posting: dict, resume: bytes, n: int = 0) -> requests.Response:
    """Over real HTTP: werkzeug's test client leaks the spooled body of a large refused upload."""
    return requests.post(
        f"{live.url}/api/v1/postings/{posting['id']}/applications",
        timeout=10,
        data={"application": json.dumps(lever_body(sandbox, posting["id"], n))},
        files={"resume": ("cv.pdf", b"%PDF-1.7 " + resume)},
    )


def test_the_guard_counts_the_files_being_sent(live: LiveServer, r: redis.Redis, sandbox: Sandbox) -> None:
    """Below the mark a small application goes in, but one whose files would take Redis past it does not."""
    posting = file_posting(sandbox)
    requests.get(f"{live.url}/jobs/{posting['id']}/apply", timeout=10)  # the catalog and Lever's health are written
    before = r.config_get("maxmemory")["maxmemory"]
    try:
        used = memory(r).used
        r.config_set("maxmemory", used * 2)  # 50 % used: 0.7 x used more goes past the 80 % mark
        assert send(live, sandbox, posting, b"x" * int(used * 0.7), 1).status_code == 503
        assert send(live, sandbox, posting, b"my cv", 2).status_code == 202
    finally:
        r.config_set("maxmemory", before)
    assert r.zcard(store.ALL) == 1


def test_a_transaction_redis_refuses_for_memory_is_a_503_not_a_spooled_application(
    r: redis.Redis, sandbox: Sandbox, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis holds a file several times over while the transaction runs: past maxmemory it refuses the whole
    transaction. That is a full Redis, not an unreachable one: refused, never spooled."""
    # Both marks out of the way (the low one refuses large uploads first): only Redis itself may refuse here.
    live = LiveServer(
        create_app(load_settings({}, **{**settings.__dict__, "redis_high_water": 0.95, "redis_low_water": 0.95}))
    )
    posting = file_posting(sandbox)
    requests.get(f"{live.url}/jobs/{posting['id']}/apply", timeout=10)
    before = r.config_get("maxmemory")["maxmemory"]
    try:
        used = memory(r).used
        # A file as large as what Redis holds, and room for 1.2 of it: the guard lets it in (2 < 0.95 x 2.2), the
        # transaction needs at least two (the query buffer and the value), so Redis refuses it. (Half of `used` and
        # room for two halves left the guard and Redis a few percent apart: the full suite once saw a 202.)
        r.config_set("maxmemory", int(used * 2.2))
        answer = send(live, sandbox, posting, b"x" * used)
    finally:
        r.config_set("maxmemory", before)
        live.stop()
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == "300"
    assert "Redis refused the transaction at its maxmemory" in caplog.text  # Redis refused it, not the guard
    assert nothing_accepted(r)
    assert not (settings.data_dir / "spool").exists()


def test_the_embedded_server_has_a_limit_and_never_evicts(r: redis.Redis, tmp_path) -> None:
    assert memory(r).limit == 2**30
    assert memory(r).policy == "noeviction"
    server = embedded(load_settings({"JOBSITE_REDIS_MAXMEMORY": "64mb"}, data_dir=tmp_path / "d", secret_key="x"))
    server.ensure()
    try:
        with connect(server.url) as client:
            assert (memory(client).limit, memory(client).policy) == (64 * 2**20, "noeviction")
    finally:
        server.stop()


def test_start_up_warns_about_a_redis_that_could_lose_applications(
    r: redis.Redis, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    before = r.config_get("maxmemory-policy")["maxmemory-policy"]
    try:
        r.config_set("maxmemory-policy", "allkeys-lru")
        with caplog.at_level(logging.WARNING):
            tasks.on_worker_start(Services(settings))
        assert "Redis's maxmemory-policy is allkeys-lru" in caplog.text
        assert "Set maxmemory-policy noeviction" in (caplog.text)
    finally:
        r.config_set("maxmemory-policy", before)
    assert memory_warnings(Memory(used=1, limit=0, policy="noeviction")) == [
        "Redis has no maxmemory: jobsite cannot refuse applications before Redis runs out of memory. Set maxmemory "
        "(with maxmemory-policy noeviction)."
    ]
    assert memory_warnings(memory(r)) == []

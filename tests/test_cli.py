"""`jobsite up` runs the whole site from nothing, and stops every child cleanly."""

from __future__ import annotations

import functools
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
import requests

from jobsite.redisdb.redis_server import EmbeddedRedis
from jobsite.sandbox import API_KEY

from .helpers import TIMING, Sandbox, free_port, lever_body, simple_posting, wait_for

# The tests' requests close their connections: an idle keep-alive connection would hold a gunicorn worker's graceful
# stop for its 5 s, in every test that stops `jobsite up`.
CLOSE = {"Connection": "close"}


def test_up_serves_health_and_stops_cleanly() -> None:
    data = Path(tempfile.mkdtemp(prefix="jsu"))
    port, sandbox_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JOBSITE_", "LEVER_", "REDIS_"))}
    env.update(JOBSITE_DATA_DIR=str(data), JOBSITE_SANDBOX_PORT=str(sandbox_port))
    proc = subprocess.Popen(
        [sys.executable, "-m", "jobsite", "up", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    announced = threading.Event()

    def read() -> None:
        for line in proc.stdout:
            lines.append(line)
            if "jobsite is up" in line:
                announced.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        # About 2 s on an idle machine; the bound is `up`'s own (60 s), not a timing: a parallel suite on two cores
        # once took over 10 s.
        assert announced.wait(60), "jobsite up did not announce itself within 60 s:\n" + "".join(lines)
        site = f"http://127.0.0.1:{port}"
        assert requests.get(f"{site}/healthz", headers=CLOSE, timeout=2).status_code == 200
        ready = requests.get(f"{site}/readyz", headers=CLOSE, timeout=2)
        assert ready.status_code == 200
        assert ready.json()["redis"] == "ok"
        assert requests.get(f"http://127.0.0.1:{sandbox_port}/_sandbox/", timeout=2).ok
        assert EmbeddedRedis(data).pid is not None
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        reader.join(5)
        proc.stdout.close()
    out = "".join(lines)
    assert proc.returncode == 0, out
    assert f"http://127.0.0.1:{port}/" in out
    assert f"http://127.0.0.1:{sandbox_port}/_sandbox/" in out
    # Start-up speaks once: the banner is the first thing printed, and it alone announces the sandbox.
    assert out.lstrip().startswith("jobsite is up"), out
    assert out.count("Lever sandbox") == 1, out
    wait_for(lambda: not EmbeddedRedis(data).ping(), what="the embedded Redis to stop with its last user")
    for port_ in (port, sandbox_port):
        try:
            requests.get(f"http://127.0.0.1:{port_}/", timeout=1)
            raise AssertionError(f"port {port_} still served after SIGTERM")
        except requests.ConnectionError:
            pass


def test_a_port_in_use_is_one_line_naming_it_and_how_to_move() -> None:
    data = Path(tempfile.mkdtemp(prefix="jsp"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JOBSITE_", "LEVER_", "REDIS_"))}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        for args, extra, setting in (
            (["--port", str(busy)], {}, "--port"),
            (["--port", str(free_port())], {"JOBSITE_SANDBOX_PORT": str(busy)}, "JOBSITE_SANDBOX_PORT"),
        ):
            done = subprocess.run(
                [sys.executable, "-m", "jobsite", "up", *args],
                env={**env, **extra, "JOBSITE_DATA_DIR": str(data)},
                capture_output=True,
                text=True,
                timeout=30,
            )
            assert done.returncode == 1
            assert done.stdout == "", done.stderr
            assert len(done.stderr.splitlines()) == 1, done.stderr
            assert f"port {busy} on 127.0.0.1 is in use" in done.stderr
            assert setting in done.stderr


def _descendants(pid: int) -> set[int]:
    """Every process below `pid`, from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.slow
@TIMING  # each stop within 10 s
def test_up_stops_every_child_and_frees_its_ports_three_times_in_a_row() -> None:
    """Issue 8, item 5: Ctrl-C (SIGINT to the terminal's process group) or SIGTERM, at any moment after start-up,
    leaves no process and no listening port behind, within 10 s. SIGTERM, Ctrl-C with a request in flight, SIGTERM:
    each way of stopping, and a start in the same data dir after each of them."""
    data = Path(tempfile.mkdtemp(prefix="jsc"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JOBSITE_", "LEVER_", "REDIS_"))}
    for cycle in range(3):
        port, sandbox_port = free_port(), free_port()
        env.update(JOBSITE_DATA_DIR=str(data), JOBSITE_SANDBOX_PORT=str(sandbox_port))
        proc = subprocess.Popen(
            [sys.executable, "-m", "jobsite", "up", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        site = f"http://127.0.0.1:{port}"
        try:
            wait_for(functools.partial(_serves, site + "/healthz"), what="jobsite up")
            if cycle % 2:  # a few requests in flight at the stop, now and then
                threading.Thread(target=_serves, args=(site + "/",), daemon=True).start()
            family = _descendants(proc.pid)
            assert len(family) >= 4  # sandbox, gunicorn master and workers, worker (and its scheduler)
        finally:
            if cycle % 2:
                os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C in a terminal
            else:
                proc.send_signal(signal.SIGTERM)
            proc.wait(10)
        assert proc.returncode == 0, f"cycle {cycle}"
        wait_for(functools.partial(_all_ended, family), timeout=10, what=f"cycle {cycle}: every process to end")
        for port_ in (port, sandbox_port):
            with pytest.raises(requests.ConnectionError):
                requests.get(f"http://127.0.0.1:{port_}/healthz", timeout=1)
    wait_for(lambda: not EmbeddedRedis(data).ping(), what="the embedded Redis to stop with its last user")


def _all_ended(pids: set[int]) -> bool:
    return not [pid for pid in pids if _alive(pid)]


def _serves(url: str) -> bool:
    try:
        return requests.get(url, headers=CLOSE, timeout=2).ok
    except requests.RequestException:
        return False


@pytest.mark.slow
def test_up_brings_back_a_killed_redis_and_delivers_everything(sandbox: Sandbox, tmp_path: Path) -> None:
    """Issue 18, item 4: kill -9 of the embedded redis-server during a drain under `jobsite up`; `up` starts it
    again (saying so), and every application reaches Lever once with no hand on the keyboard."""
    data, port = Path(tempfile.mkdtemp(prefix="jsk")), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JOBSITE_", "LEVER_", "REDIS_"))}
    env.update(
        JOBSITE_DATA_DIR=str(data),
        LEVER_API_KEY=API_KEY,
        LEVER_BASE_URL=f"{sandbox.url}/v1",
        JOBSITE_DELIVERY_LEASE_S="5",
        JOBSITE_UPKEEP_INTERVAL_S="1",
        JOBSITE_PACING_MARGIN_MS="300",
        JOBSITE_PROBE_INTERVAL_S="1",
    )
    out = tmp_path / "up.log"
    with open(out, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "jobsite", "up", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    site, posting = f"http://127.0.0.1:{port}", simple_posting(sandbox)
    try:
        wait_for(lambda: "jobsite is up" in out.read_text(), what="jobsite up")  # started: every part ready
        sandbox.control("maintenance", on=True)
        sandbox.control("latency", seconds=0.5, path="/apply")  # Redis goes while Lever holds an apply
        receipts = [
            requests.post(
                f"{site}/api/v1/postings/{posting['id']}/applications",
                timeout=30,
                headers=CLOSE,
                json=lever_body(sandbox, posting["id"], n),
            ).json()["receipt"]
            for n in range(6)
        ]
        wait_for(lambda: _statuses(site, receipts) == {"waiting"}, what="all to wait for Lever")
        sandbox.control("maintenance", on=False)
        wait_for(lambda: "delivering" in _statuses(site, receipts), interval=0.05, what="an apply in flight")
        killed = EmbeddedRedis(data).pid
        os.kill(killed, signal.SIGKILL)
        wait_for(lambda: EmbeddedRedis(data).pid != killed and EmbeddedRedis(data).ping(), what="Redis again")
        back = time.monotonic()
        wait_for(lambda: _statuses(site, receipts) == {"delivered"}, timeout=120, interval=0.2, what="delivery")
        print(f"Redis's return to the last delivery: {time.monotonic() - back:.1f} s")
        assert proc.poll() is None
        assert len(sandbox.received()["applications"]) == 6
        assert "the embedded Redis stopped; starting it again" in out.read_text()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    assert proc.returncode == 0, out.read_text()
    wait_for(lambda: not EmbeddedRedis(data).ping(), what="the embedded Redis to stop with its last user")


def _statuses(site: str, receipts: list[str]) -> set[str]:
    return {
        requests.get(f"{site}/api/v1/applications/{r}", headers=CLOSE, timeout=10).json()["status"] for r in receipts
    }


@pytest.mark.slow
def test_up_starts_a_dead_worker_or_web_again_and_still_stops_everything(tmp_path: Path) -> None:
    """Issue 18, item 4: a child that dies under `jobsite up` is started again, with a line saying so, instead of
    the site stopping; SIGTERM then still leaves nothing running."""
    data, port = Path(tempfile.mkdtemp(prefix="jsw")), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JOBSITE_", "LEVER_", "REDIS_"))}
    env.update(JOBSITE_DATA_DIR=str(data), JOBSITE_SANDBOX_PORT=str(free_port()))
    out = tmp_path / "up.log"
    with open(out, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "jobsite", "up", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    site = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: "jobsite is up" in out.read_text(), what="jobsite up")  # started: every part ready
        for role in ("worker", "web"):
            child = _child(proc.pid, role)
            os.killpg(child, signal.SIGKILL)
            wait_for(
                lambda role=role: (
                    f"jobsite: {role} exited (exit code -9); starting it again in 1 s" in (out.read_text())
                ),
                what=f"{role} to be noticed",
            )
            wait_for(lambda role=role, child=child: _child(proc.pid, role) not in (None, child), what=f"a new {role}")
        wait_for(functools.partial(_serves, site + "/healthz"), what="the site again")
        family = _descendants(proc.pid)
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    assert proc.returncode == 0, out.read_text()
    wait_for(functools.partial(_all_ended, family), timeout=10, what="every process to end")


def _child(pid: int, role: str) -> int | None:
    """The pid of `jobsite up`'s child running as `role` (`python -m jobsite ROLE`; web execs gunicorn)."""
    wanted = [b"-m", b"gunicorn"] if role == "web" else [b"-m", b"jobsite", role.encode()]
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) != pid:
                continue
            args = (stat.parent / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if args[1 : 1 + len(wanted)] == wanted and _alive(int(stat.parent.name)):
            return int(stat.parent.name)
    return None

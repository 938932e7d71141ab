"""Issue 22, item 3: no command leaves a process behind. Each command that starts the embedded Redis stops it once no
jobsite process uses it any more, and one that finds it running (started by another) leaves it running."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import redis
import requests

from jobsite.redisdb.redis_server import EmbeddedRedis, connect

from .helpers import free_port, wait_for

COMMANDS = {
    "admin": ["admin", "add-user", "rita@example.com", "--role", "admin"],
    "applications": ["applications", "list"],
    "purge": ["purge"],
    "report": ["report", "pipeline", "--format", "json"],
}


def env_for(data: Path) -> dict[str, str]:
    """A newcomer's environment: no REDIS_URL, so the command uses the embedded Redis in `data`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JOBSITE_", "LEVER_", "REDIS_"))}
    env.update(JOBSITE_DATA_DIR=str(data), JOBSITE_NEW_PASSWORD="a long enough password", JOBSITE_LOG_LEVEL="WARNING")
    return env


def left_behind(data: Path) -> list[str]:
    """Processes whose command line names `data` (the embedded redis-server's config, its reaper)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(data) in text and cmdline.parent.name != str(os.getpid()):
            found.append(f"{cmdline.parent.name}: {text}")
    return found


def assert_nothing_left(data: Path) -> None:
    wait_for(lambda: not left_behind(data), timeout=10, what="every process of the command to end")
    assert not EmbeddedRedis(data).ping()


@pytest.fixture
def data() -> Path:
    return Path(tempfile.mkdtemp(prefix="jsq"))  # short: the unix socket's path must fit in 108 bytes


@pytest.mark.parametrize("name", COMMANDS)
def test_a_command_that_started_the_embedded_redis_leaves_nothing_running(name: str, data: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "jobsite", *COMMANDS[name]],
        env=env_for(data),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert (data / "redis" / "appendonlydir" / "appendonly.aof.manifest").exists()  # it did start one
    assert_nothing_left(data)


def test_web_stopped_with_sigterm_leaves_nothing_running(data: Path) -> None:
    port = free_port()
    web = subprocess.Popen(
        [sys.executable, "-m", "jobsite", "web", "--workers", "1", "--port", str(port)],
        env=env_for(data),
        stderr=subprocess.DEVNULL,
    )

    def serves() -> bool:
        try:
            return requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).ok
        except (requests.ConnectionError, requests.Timeout):  # not up yet, or slow on a loaded machine
            return False

    try:
        wait_for(serves, what="jobsite web")
        assert EmbeddedRedis(data).ping()
    finally:
        web.send_signal(signal.SIGTERM)
        web.wait(30)
    assert_nothing_left(data)


def test_worker_stopped_with_sigterm_leaves_nothing_running(data: Path) -> None:
    worker = subprocess.Popen([sys.executable, "-m", "jobsite", "worker"], env=env_for(data))
    server = EmbeddedRedis(data)

    def registered() -> bool:
        try:
            with connect(server.url, retries=0) as r:
                return bool(r.smembers("rq:workers"))
        except (redis.RedisError, OSError):
            return False

    try:
        wait_for(registered, what="the worker to register with Redis")
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)
    assert_nothing_left(data)


def test_a_worker_killed_alone_leaves_no_scheduler_behind(data: Path) -> None:
    """A stop that reaches `jobsite worker` while it forks RQ's scheduler (RQ installs the worker's handlers after
    forking it) ends the worker alone; its scheduler notices and ends too, so the embedded Redis stops."""
    worker = subprocess.Popen([sys.executable, "-m", "jobsite", "worker"], env=env_for(data))

    def scheduler() -> int | None:
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
                command = (stat.parent / "cmdline").read_bytes()
            except OSError:
                continue
            if parent == worker.pid and b"jobsite\0worker" in command:
                return int(stat.parent.name)
        return None

    try:
        wait_for(scheduler, what="the worker's scheduler process")
    finally:
        worker.kill()  # the worker alone, not its process group
        worker.wait()
    assert_nothing_left(data)


def test_a_command_leaves_a_redis_it_found_running_alone(data: Path) -> None:
    server = EmbeddedRedis(data)
    assert server.ensure()  # started, and used, by this test's process
    try:
        for name in ("admin", "report"):
            done = subprocess.run(
                [sys.executable, "-m", "jobsite", *COMMANDS[name]],
                env=env_for(data),
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert done.returncode == 0, done.stderr
            assert server.ping()
    finally:
        server.stop()
    wait_for(lambda: not left_behind(data), timeout=10, what="the reaper to end with its server")


def test_the_last_of_several_users_stops_it(data: Path) -> None:
    """A web process and a command share the server; it goes only when the web process goes too."""
    port = free_port()
    web = subprocess.Popen(
        [sys.executable, "-m", "jobsite", "web", "--workers", "1", "--port", str(port)],
        env=env_for(data),
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: EmbeddedRedis(data).ping(), what="the web process to start the embedded Redis")
        done = subprocess.run(
            [sys.executable, "-m", "jobsite", *COMMANDS["admin"]],
            env=env_for(data),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert EmbeddedRedis(data).ping()  # still in use by the web process
    finally:
        web.send_signal(signal.SIGTERM)
        web.wait(30)
    assert_nothing_left(data)

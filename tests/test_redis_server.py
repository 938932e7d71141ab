"""The embedded redis-server keeps what it acknowledged across a crash."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import redis
from rq import Queue

from jobsite.redis_server import EmbeddedRedis, connect, redis_server_binary, warn_at_start
from jobsite.settings import load_settings

from .helpers import wait_for


def test_queue_survives_kill_9_of_redis_server() -> None:
    root = Path(tempfile.mkdtemp(prefix="jsk"))
    server = EmbeddedRedis(root)
    assert server.ensure() is True
    assert server.ensure() is False  # a second caller finds it running
    conn = connect(server.url)
    queue = Queue("applications", connection=conn)
    ids = [queue.enqueue("builtins.print", i, job_id=f"job-{i}").id for i in range(50)]
    conn.set("last", 49)
    config = dict(conn.config_get("append*"))
    assert config["appendonly"] == "yes"
    assert config["appendfsync"] == "always"
    assert conn.config_get("maxmemory-policy")["maxmemory-policy"] == "noeviction"
    assert server.dir.stat().st_mode & 0o777 == 0o700  # the AOF holds applications: this user's only
    assert {p.name: p.stat().st_mode & 0o077 for p in root.rglob("*aof*")} == {"appendonly.aof": 0}
    server.stop(signal.SIGKILL)
    assert not server.ping()

    assert server.ensure() is True
    conn = connect(server.url)
    queue = Queue("applications", connection=conn)
    assert queue.job_ids == ids
    assert conn.get("last") == b"49"
    assert queue.fetch_job("job-7").args == (7,)
    server.stop()


def _server(folder: Path, *config: str) -> subprocess.Popen[bytes]:
    """A redis-server on a unix socket in `folder` with `config` lines, as an operator's outside Redis."""
    args = [redis_server_binary(), "--port", "0", "--unixsocket", str(folder / "s.sock"), "--dir", str(folder),
            "--save", ""]
    for line in config:
        name, *values = line.split()
        args += [f"--{name}", *(v.strip('"') for v in values)]
    return subprocess.Popen(args, stdout=subprocess.DEVNULL)


def test_start_up_names_the_persistence_an_outside_redis_lacks(tmp_path: Path,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    """Issue 18, item 6: appendfsync always is the default of the embedded server, and a Redis that could lose
    accepted applications in a crash is named at start, whatever it lets us read."""
    assert load_settings({}, secret_key="x").redis_fsync == "always"
    cases = [((), "Redis runs without appendonly"),
             (("appendonly yes", "appendfsync everysec"), "Redis's appendfsync is everysec"),
             (("appendonly yes", "appendfsync always"), None),
             (("appendonly yes", 'rename-command CONFIG ""'), "its appendfsync could not be read"),
             (('rename-command CONFIG ""', 'rename-command INFO ""'), "Could not check Redis's persistence")]
    for n, (config, warning) in enumerate(cases):
        folder = tmp_path / str(n)
        folder.mkdir()
        proc = _server(folder, *config)
        try:
            settings = load_settings({}, secret_key="x", data_dir=tmp_path / "data",
                                     redis_url=f"unix://{folder / 's.sock'}")
            with connect(settings.redis_url or "") as r:
                wait_for(lambda r=r: _pings(r), timeout=10, what="redis-server")
                caplog.clear()
                with caplog.at_level(logging.WARNING):
                    warn_at_start(r, settings)
        finally:
            proc.terminate()
            proc.wait()
        durability = [m for m in caplog.messages if "appendfsync always" in m]
        if warning is None:
            assert durability == [], config
        else:
            assert len(durability) == 1, (config, caplog.messages)
            assert warning in durability[0], (config, caplog.messages)
            assert durability[0].endswith("Set appendonly yes and appendfsync always on that Redis.")


def _pings(r: redis.Redis) -> bool:
    try:
        return bool(r.ping())
    except redis.ConnectionError:
        return False


def test_greenlets_that_ensure_the_server_at_once_do_not_block_each_other() -> None:
    """A gevent web worker's first requests come at once, and each may start the embedded Redis: a blocking flock
    held by one greenlet stopped the whole worker, so `jobsite up` sometimes never answered (seen under test)."""
    folder = tempfile.mkdtemp(prefix="jsg")
    script = (
        "from gevent import monkey; monkey.patch_all()\n"
        "import sys, gevent\n"
        "from jobsite.redis_server import EmbeddedRedis\n"
        "server = EmbeddedRedis(sys.argv[1])\n"
        "jobs = [gevent.spawn(server.ensure) for _ in range(4)]\n"
        "gevent.joinall(jobs, timeout=20)\n"
        "print(sorted(job.value for job in jobs))\n"
        "server.stop()\n"
    )
    done = subprocess.run([sys.executable, "-c", script, folder], capture_output=True, text=True, timeout=40)
    assert done.stdout.strip() == "[False, False, False, True]", done.stderr  # one started it, three found it

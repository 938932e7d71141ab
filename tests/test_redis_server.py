"""The embedded redis-server keeps what it acknowledged across a crash."""

from __future__ import annotations

import signal
import tempfile
from pathlib import Path

from rq import Queue

from jobsite.redis_server import EmbeddedRedis, connect


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
    assert config["appendonly"] == "yes" and config["appendfsync"] == "everysec"
    assert conn.config_get("maxmemory-policy")["maxmemory-policy"] == "noeviction"
    assert server.dir.stat().st_mode & 0o777 == 0o700  # the AOF holds applications: this user's only
    assert {p.name: p.stat().st_mode & 0o077 for p in root.rglob("*aof*")} == {"appendonly.aof": 0}
    server.stop(signal.SIGKILL)
    assert not server.ping()

    assert server.ensure() is True
    conn = connect(server.url)
    queue = Queue("applications", connection=conn)
    assert queue.job_ids == ids and conn.get("last") == b"49"
    assert queue.fetch_job("job-7").args == (7,)
    server.stop()

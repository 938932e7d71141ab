"""Found by the nemesis (issue 26, a full data disk): the reaper started redis-server, then died writing its pid file,
and left the server running where no jobsite process could find or stop it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from jobsite.redisdb.redis_server import REAPER, EmbeddedRedis, redis_server_binary

from .helpers import wait_for


def servers_of(folder: Path) -> list[int]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(folder) in text and "redis-server" in text:
            found.append(int(cmdline.parent.name))
    return found


def test_a_reaper_that_cannot_write_the_pid_file_leaves_no_server_running() -> None:
    server = EmbeddedRedis(Path(tempfile.mkdtemp(prefix="jsp")))
    server.dir.mkdir()
    conf = server.dir / "redis.conf"
    conf.write_text(server._config())
    (server.dir / "redis.pid").mkdir()  # writing it fails, as on a full disk
    try:
        reaper = subprocess.run(
            [sys.executable, "-I", str(REAPER), str(server.dir), redis_server_binary(), str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=30,
            check=False,
        )
        assert reaper.returncode != 0
        wait_for(lambda: not servers_of(server.dir), timeout=10, what="no redis-server left")
    finally:
        for pid in servers_of(server.dir):
            os.kill(pid, signal.SIGKILL)

"""Runs the embedded server (valkey-server), and stops it once no jobsite process uses it any more.

Every jobsite process that uses the embedded server holds a shared flock on `users.lock` in its folder for as long as
it lives (`redis_server.EmbeddedRedis.ensure`): the kernel drops it when the process ends, however it ends, and the
children it forks (gunicorn's workers, RQ's scheduler) share it. This process waits for an exclusive lock on that
file, which the kernel grants only once no user is left, and then stops the server with SIGTERM (Redis flushes its
append-only file first). It exits with the server, whoever stopped it. So a command such as `jobsite admin add-user`
that started the server leaves nothing running, and `jobsite up` or another command started meanwhile keeps it.

It is run by path (`python -I redis_reaper.py FOLDER REDIS_SERVER CONF`), not as a module of the package: it imports
only the standard library, so it costs a few MB and no start-up time.
"""

from __future__ import annotations

import fcntl
import signal
import subprocess
import sys
import threading
from pathlib import Path
from types import FrameType


def run(folder: Path, binary: str, conf: Path) -> int:
    server = subprocess.Popen(
        [binary, str(conf)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, umask=0o077
    )  # the AOF holds applications: readable by this user only
    try:
        (folder / "redis.pid").write_text(str(server.pid))
    except OSError:  # a full disk: a server without its pid file could be neither found nor stopped by jobsite
        server.kill()
        server.wait()
        raise

    def stop() -> None:
        if server.poll() is None:
            server.terminate()

    def stop_when_unused() -> None:
        with open(folder / "users.lock", "a") as users, open(folder / "start.lock", "a") as start:
            fcntl.flock(users, fcntl.LOCK_EX)  # granted once no jobsite process holds it shared
            fcntl.flock(start, fcntl.LOCK_EX)  # and none is between finding the server and holding it
            stop()
            server.wait()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    threading.Thread(target=stop_when_unused, daemon=True).start()
    return server.wait()


if __name__ == "__main__":
    sys.exit(run(Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])))

"""`jobsite up`'s supervision: a child process (sandbox, web, worker) or the embedded Redis that died is started
again, after a backoff and with one line saying so, instead of the whole site stopping. A part that keeps dying
waits longer each time (1 s, doubling, at most 30 s); one that ran for a minute starts from 1 s again.

The embedded Redis is watched by its process, not by PING: a server that is busy loading its append-only file does
not answer, and starting a second one beside it would be wrong. `EmbeddedRedis.ensure` starts one only if none
answers, under the lock every process takes to start it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import cast

from .redisdb.redis_server import EmbeddedRedis

RESTART_BASE_S = 1.0
RESTART_CAP_S = 30.0
CALM_S = 60.0


def role(child: subprocess.Popen[bytes]) -> str:
    """`web`, `worker` or `sandbox`: what `jobsite up` ran a child as (`python -m jobsite ROLE ...`)."""
    return cast(list[str], child.args)[3]


@dataclass
class _Part:
    """When a part was last started, how often in a row it died soon after, and when it is due to start again."""

    started: float = float("-inf")  # never started by us: its first death counts as the first in a row
    deaths: int = 0
    due: float | None = None


class Supervisor:
    """Keeps `children` (shared with the caller, which stops them all at the end) and the embedded Redis running."""

    def __init__(
        self,
        children: list[subprocess.Popen[bytes]],
        env: dict[str, str],
        redis: EmbeddedRedis | None,
        say: Callable[[str], None],
    ):
        self.children = children
        self.env = env
        self.redis = redis
        self.say = say
        self.parts: dict[str, _Part] = {}

    def check(self) -> None:
        """One round: notice what died, and start again what is due."""
        if self.redis is not None and not self.redis.running():
            self._restart("the embedded Redis", "stopped", self._start_redis)
        for i, child in enumerate(self.children):
            if child.poll() is not None:
                self._restart(role(child), f"exited (exit code {child.returncode})", partial(self._respawn, i))

    def _restart(self, name: str, how: str, start: Callable[[], None]) -> None:
        part = self.parts.setdefault(name, _Part())
        now = time.monotonic()
        if part.due is None:
            part.deaths = 0 if now - part.started > CALM_S else part.deaths + 1
            delay = min(RESTART_CAP_S, RESTART_BASE_S * 2 ** min(part.deaths, 10))
            part.due = now + delay
            self.say(f"jobsite: {name} {how}; starting it again in {delay:.0f} s")
        if now < part.due:
            return
        part.started, part.due = now, None
        try:
            start()
        except (OSError, RuntimeError) as e:  # noticed again at the next round, and retried later
            self.say(f"jobsite: {name} did not start: {e}")

    def _start_redis(self) -> None:
        assert self.redis is not None  # noqa: S101 (only called when the site uses the embedded Redis)
        self.redis.ensure()

    def _respawn(self, i: int) -> None:
        dead = self.children[i]
        with contextlib.suppress(ProcessLookupError):  # what it forked and left (gunicorn's workers, RQ's scheduler)
            os.killpg(dead.pid, signal.SIGKILL)
        self.children[i] = subprocess.Popen(dead.args, env=self.env, start_new_session=True)

"""The web process's spool drain: a background thread that moves what this machine spooled while Redis was down
into Redis, at start-up, every JOBSITE_SPOOL_DRAIN_S, and soon after a submission finds Redis answering again
(`Services.spool_waiting`; a web machine may have no worker beside it to do it). Requests never drain themselves:
the drain's Redis client waits long, and a candidate must not.

Threads do not survive a fork, and a server may build the app before forking (`gunicorn --preload wsgi:app`). So
nothing starts in `create_app`: the thread is started in the process that serves, by `web/app.serve()` (the factory
`jobsite web` has gunicorn call in each worker, at start-up) or, under any other server, by that process's first
request. Several processes on one machine share the spool; its lock lets one drain at a time.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
import weakref

import redis
from flask import Flask

from ..intake import accept
from ..records import spool
from ..services import Services

log = logging.getLogger(__name__)

AFTER_FAILURE_S = 5.0  # after a failed drain, no new try sooner, however many submissions wake the thread


class Drainer:
    """One app's drain thread, started at most once per process."""

    def __init__(self, services: Services):
        self.services = services
        self.pid = 0  # the process whose thread runs; another pid (a forked child) starts its own
        self.lock = threading.Lock()

    def ensure_started(self) -> None:
        if self.pid == os.getpid():
            return
        with self.lock:
            if self.pid != os.getpid():
                self.pid = os.getpid()
                threading.Thread(
                    target=_run,
                    args=(
                        weakref.ref(self.services),
                        self.services.spool_waiting,
                        self.services.settings.spool_drain_s,
                    ),
                    name="spool-drain",
                    daemon=True,
                ).start()


def _run(services: weakref.ref[Services], woken: threading.Event, interval_s: float) -> None:
    """Drain now, then every `interval_s` or when `woken`, for as long as the app lives (a weak reference: an app
    that is gone, as in tests that build many, ends its thread). A drain that failed is not tried again for
    AFTER_FAILURE_S, however many submissions wake it (one Redis refuses, at its memory limit, say)."""
    while (svc := services()) is not None:
        woken.clear()  # before the drain: a wake during it is for an entry it may have missed
        drained = _drain_once(svc)
        del svc
        if not drained:
            time.sleep(min(AFTER_FAILURE_S, interval_s))
        woken.wait(interval_s)


def _drain_once(svc: Services) -> bool:
    """One drain; False if it failed. Never raises: the thread must outlive a bad round, since nothing else drains
    a web machine's spool (the next round may succeed)."""
    try:
        accept.drain_spool(svc.intake)  # reads only the spool's directory while it is empty
        return True
    except redis.RedisError as e:
        with contextlib.suppress(OSError):
            log.warning(
                "%d application(s) spooled on this machine wait for Redis (%s); trying again within %d s",
                len(spool.entries(svc.settings.data_dir)),
                type(e).__name__,
                svc.settings.spool_drain_s,
            )
    except Exception:
        log.exception("moving the spool into Redis failed; trying again within %d s", svc.settings.spool_drain_s)
    return False


def init_app(app: Flask) -> None:
    """Start the drain in whichever process serves the app's first request (or earlier, by `start`)."""
    drainer = app.extensions["jobsite_spool_drain"] = Drainer(app.extensions["jobsite"])
    app.before_request(drainer.ensure_started)


def start(app: Flask) -> None:
    """Start this process's drain now (gunicorn's post_worker_init, in each worker after the fork)."""
    app.extensions["jobsite_spool_drain"].ensure_started()

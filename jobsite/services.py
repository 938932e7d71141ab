"""The outside systems one process talks to, built lazily from `Settings` and shared by web and workers."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from functools import cached_property

import redis
from flask import Flask, current_app
from redis import Redis

from .lever import health
from .lever.client import LeverClient, LeverRateLimited
from .lever.pacing import Limits, reserve
from .postings.catalog import Catalog
from .redis_server import client
from .settings import Settings

log = logging.getLogger(__name__)

READ_MAX_WAIT_S = 10.0  # a page waits this long at most for Lever's limit on a cold cache
# A request a person waits on (an application, a capture) gives Redis this long per command: Redis answers in well
# under a millisecond, and a 10 MB file in a transaction with appendfsync always in tens of milliseconds, so two
# seconds of silence is a Redis that stopped answering (killed without a reset, a network cut, a stopped process), and
# the application is spooled instead (a load balancer cuts at 60 s; the candidate should not wait at all). Not less:
# a process starved of CPU on a machine loaded far past its cores can wait a second for an answer already there, and
# a spurious silence makes this process's page reads leave the shared pace for a few seconds.
REQUEST_TIMEOUT_S = 2.0
SILENT_RECHECK_S = 5.0  # after Redis fell silent, a process's requests skip it this long instead of waiting again


class Silence:
    """This process's memory that Redis stopped answering (a timeout, not a refusal: a refusal costs nothing to try
    again), so that the next steps of a request, and the requests of the next seconds, go straight to the spool
    instead of each waiting out its own timeout. A cache of one fact, forgotten after SILENT_RECHECK_S."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._until = 0.0
        self.clock = clock

    def known(self) -> bool:
        return self.clock() < self._until

    def heard(self, error: BaseException) -> None:
        """Remember a timeout (a WatchError from a timeout is read back, and that read times out in turn). What
        `Services.request_redis` raises while the silence is known is no news: it does not extend it, so Redis is
        tried again SILENT_RECHECK_S after it last failed to answer, however many requests come meanwhile."""
        if isinstance(error, redis.TimeoutError):
            self._until = self.clock() + SILENT_RECHECK_S


class KnownSilent(redis.ConnectionError):
    """Redis was not asked: it did not answer a moment ago (Silence)."""


class LocalPace:
    """Lever's all-calls limit kept by this process alone, for the catalog's reads while Redis (where the shared
    schedule lives) cannot be reached. The slots are as far apart as the shared ones at the full rate, so the limit
    holds in its strict reading for one web process; while Redis is down no worker calls Lever (they need Redis for
    everything), so the budget is the web's alone. Several web processes reading uncached forms in the same second of
    an outage could together exceed it; that is the price of serving a form without Redis, and a 429 there only
    makes the catalog serve what it has or ask the candidate to come back."""

    def __init__(self, spacing_s: float):
        self.spacing_s = spacing_s
        self._next = 0.0
        self._lock = threading.Lock()

    def wait_s(self, max_wait_s: float) -> float | None:
        """Reserve the next local slot: seconds to wait for it, or None if it is more than `max_wait_s` away."""
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            if slot - now > max_wait_s:
                return None
            self._next = slot + self.spacing_s
            return slot - now


class Services:
    """The composition root of one process: builds Redis, the Lever client and the postings catalog from `Settings`,
    each from its own inputs. Nothing connects until first used."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.silence = Silence()

    @cached_property
    def redis(self) -> redis.Redis:
        return client(self.settings)

    @cached_property
    def quick_redis(self) -> Redis:  # `redis` in this class body is the property above
        """The same Redis for the requests a person waits on: REQUEST_TIMEOUT_S per command, and one retry, at once,
        only of a refused or reset connection, never of a timeout (redis_server.client). Callers check `silence`
        first and tell it of their errors."""
        return client(self.settings, timeout_s=REQUEST_TIMEOUT_S)

    @cached_property
    def lever(self) -> LeverClient:
        return self._lever_client()

    @cached_property
    def paced_lever(self) -> LeverClient:
        """A client whose every request first waits for a slot on the shared all-calls limit: for the catalog, whose
        cold-cache fetches come from many web processes at once (delivery paces its own calls)."""
        return self._lever_client(pace=self._wait_for_a_read_slot, observe=self._observe_quickly)

    def _lever_client(self, pace: Callable[[], None] | None = None,
                      observe: health.Observer | None = None) -> LeverClient:
        s = self.settings
        return LeverClient(base_url=s.lever_base_url, api_key=s.api_key,
                           timeout=(s.lever_connect_timeout_s, s.lever_read_timeout_s),
                           observe=observe or health.observer(self.redis), pace=pace)

    def _observe_quickly(self, endpoint: str, status: int | str, seconds: float) -> None:
        """Lever's answer to a page's read, remembered unless Redis is known silent (a page must not wait on it)."""
        if not self.silence.known():
            self._quick_observer(endpoint, status, seconds)

    @cached_property
    def _quick_observer(self) -> health.Observer:
        return health.observer(self.quick_redis)

    def request_redis(self) -> Redis:
        """The quick client for a request a person waits on, or TimeoutError at once while this process knows Redis
        to be silent: a request's steps then cost one timeout between them, not one each (what fails is told to
        `silence`)."""
        if self.silence.known():
            raise KnownSilent("Redis did not answer a moment ago")
        return self.quick_redis

    def _wait_for_a_read_slot(self) -> None:
        """A slot on the shared schedule in Redis or, while Redis cannot be reached, on this process's own (a form
        not yet cached must still be read: the application is then spooled, not refused)."""
        try:
            slot = reserve(self.request_redis(), (self.limits.lever,), READ_MAX_WAIT_S)
        except redis.RedisError as e:
            self.silence.heard(e)
            log.warning("reading Lever on this process's own pace: Redis unreachable (%s)", type(e).__name__)
            wait_s = self.local_pace.wait_s(READ_MAX_WAIT_S)
            if wait_s is None:
                raise LeverRateLimited(f"no free slot on Lever's limit within {READ_MAX_WAIT_S:.0f} s") from None
            time.sleep(wait_s)
            return
        if not slot.reserved:  # the catalog then serves what it has, or asks the candidate to come back
            raise LeverRateLimited(f"no free slot on Lever's limit within {READ_MAX_WAIT_S:.0f} s",
                                   retry_after=slot.wait_s)
        time.sleep(slot.wait_s)

    @cached_property
    def local_pace(self) -> LocalPace:
        return LocalPace(self.limits.lever.spacing_s)

    @cached_property
    def limits(self) -> Limits:
        """Lever's limits as the workers pace their calls to it."""
        s = self.settings
        return Limits.of(s.apply_rate_per_s, s.lever_rate_per_s, s.pacing_margin_s)

    @cached_property
    def catalog(self) -> Catalog:
        s = self.settings
        return Catalog(s.path("cache", "catalog"), lever=self.paced_lever, r=self.redis, fresh_s=s.catalog_fresh_s,
                       keep_s=s.catalog_keep_s)


def init_app(app: Flask, settings: Settings) -> None:
    app.extensions["jobsite"] = Services(settings)


def get_services() -> Services:
    """The current app's services (inside a request or app context)."""
    return current_app.extensions["jobsite"]

"""The outside systems one process talks to, built lazily from `Settings` and shared by web and workers, and the
flows' inputs built from them (the composition root: the flows never import it)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING

import redis
from redis import Redis

from .admission.inputs import Admission
from .alerts.context import Alerting
from .console.dashboard import Board
from .delivery.sender import Delivery
from .intake.accept import Intake
from .lever import health
from .lever.client import LeverClient
from .lever.pacing import Limits, LocalPace, Pacer
from .postings.catalog import Catalog
from .redisdb.redis_server import client
from .settings import Settings
from .sourcing import optin
from .sourcing.enrol import Enrolment

if TYPE_CHECKING:  # the web's helpers below; a worker never loads Flask
    from flask import Flask

log = logging.getLogger(__name__)

READ_MAX_WAIT_S = 10.0  # a page waits this long at most for Lever's limit on a cold cache
LEVER_MAX_WAIT_S = 10.0  # a worker's call waits this long at most for its slot; longer is rescheduled
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


class Services:
    """The composition root of one process: builds Redis, the Lever client and the postings catalog from `Settings`,
    each from its own inputs, and each flow's inputs from them (`admission`, `alerting`, `board`, `delivery`,
    `enrolment`, `intake`): the flows take those, never this object. Nothing connects until first used."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.silence = Silence()
        # Set when a request finds this machine's spool waiting while Redis answers: wakes the web process's drain
        # thread (web/spooldrain.py), so that the request itself never waits on the drain's long Redis timeouts.
        self.spool_waiting = threading.Event()

    def _heard(self, error: BaseException) -> None:
        """Tell this process's silence of a Redis error: the one `silence` in force, which the inputs built from this
        class reach through here (they are cached; a test may give the process a new silence after)."""
        self.silence.heard(error)

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
        """The workers' client: every request waits for its slot on the shared limits in Redis, at most
        LEVER_MAX_WAIT_S (a caller that would wait less asks `lever.within(...)`)."""
        return self._lever_client(Pacer(lambda: self.redis, self.limits, LEVER_MAX_WAIT_S))

    def _lever_client(self, pace: Pacer, observe: health.Observer | None = None) -> LeverClient:
        s = self.settings
        return LeverClient(
            base_url=s.lever_base_url,
            api_key=s.api_key,
            timeout=(s.lever_connect_timeout_s, s.lever_read_timeout_s),
            observe=observe or health.observer(self.redis),
            pace=pace,
        )

    def _observe_quickly(self, endpoint: str, status: int | str, seconds: float) -> None:
        """Lever's answer to a page's read, remembered unless Redis is known silent (a page must not wait on it)."""
        if not self.silence.known():
            self._quick_observer(endpoint, status, seconds)

    @cached_property
    def _quick_observer(self) -> health.Observer:
        return health.observer(self.quick_redis)

    @cached_property
    def _replica_wait_redis(self) -> Redis:
        """The quick client with room for a WAIT of JOBSITE_REDIS_REPLICA_WAIT_MS: for a request's WAIT."""
        return client(self.settings, timeout_s=REQUEST_TIMEOUT_S + self.settings.redis_replica_wait_ms / 1000)

    def request_wait_redis(self) -> Redis:
        """`request_redis` for a request that WAITs for the replicas (its socket timeout covers the WAIT's own)."""
        return self._unless_silent(self._replica_wait_redis)

    def request_redis(self) -> Redis:
        """The quick client for a request a person waits on, or TimeoutError at once while this process knows Redis
        to be silent: a request's steps then cost one timeout between them, not one each (what fails is told to
        `silence`)."""
        return self._unless_silent(self.quick_redis)

    def _unless_silent(self, quick: Redis) -> Redis:
        if self.silence.known():
            raise KnownSilent("Redis did not answer a moment ago")
        return quick

    @cached_property
    def admission(self) -> Admission:
        """What admission's checks use (admission/): the quick client of requests, this process's silence, the
        process's client for counts, and the limits."""
        return Admission.of(self.settings, quick=self.request_redis, heard=self._heard, redis=lambda: self.redis)

    @cached_property
    def alerting(self) -> Alerting:
        """What the job alerts use (alerts/): the process's client, the catalog (built when a job first reads it),
        and the settings their emails are written from."""
        return Alerting(redis=self.redis, catalog=lambda: self.catalog, settings=self.settings)

    @cached_property
    def board(self) -> Board:
        """What the dashboard reads (console/dashboard.py)."""
        s = self.settings
        return Board(
            redis=self.redis,
            limits=self.limits,
            probe_interval_s=s.probe_interval_s,
            data_dir=s.data_dir,
            redis_min_replicas=s.redis_min_replicas,
        )

    @cached_property
    def delivery(self) -> Delivery:
        """What the flows that write to Lever use (delivery/deliverer.py, followup/, sourcing/)."""
        return Delivery(redis=self.redis, lever=self.lever, settings=self.settings)

    @cached_property
    def intake(self) -> Intake:
        """What accepting an application uses (intake/accept.py): the quick client of requests and this process's
        silence, the process's client for the spool's drain, admission's memory guard, and where files go."""
        s = self.settings
        return Intake(
            quick=self.request_redis,
            quick_wait=self.request_wait_redis,
            heard=self._heard,
            redis=self.redis,
            wake_drain=self.spool_waiting.set,
            admission=self.admission,
            data_dir=s.data_dir,
            files_url=s.files_url,
            mail=s.smtp is not None,
            redis_min_replicas=s.redis_min_replicas,
            redis_replica_wait_ms=s.redis_replica_wait_ms,
        )

    @cached_property
    def enrolment(self) -> Enrolment:
        """What taking a sourced person in uses (sourcing/enrol.py): the quick client of requests and this process's
        silence, and whether sign-ups wait for their confirmation by email."""
        return Enrolment(quick=self.request_redis, heard=self._heard, optin=optin.wanted(self.settings))

    @cached_property
    def limits(self) -> Limits:
        """Lever's limits as the workers pace their calls to it."""
        s = self.settings
        return Limits.of(s.apply_rate_per_s, s.lever_rate_per_s, s.pacing_margin_s)

    @cached_property
    def catalog(self) -> Catalog:
        s = self.settings
        # The catalog's reads come from many web processes at once, while a person waits: on the quick Redis, and on
        # this process's own pace while Redis cannot be reached (a form not yet cached must still be read).
        local = LocalPace(self.limits.lever.spacing_s, heard=self._heard)
        pacer = Pacer(self.request_redis, self.limits, READ_MAX_WAIT_S, local=local)
        lever = self._lever_client(pacer, observe=self._observe_quickly)
        return Catalog(
            s.path("cache", "catalog"), lever=lever, r=self.redis, fresh_s=s.catalog_fresh_s, keep_s=s.catalog_keep_s
        )


def init_app(app: Flask, settings: Settings) -> None:
    app.extensions["jobsite"] = Services(settings)


def get_services() -> Services:
    """The current app's services (inside a request or app context)."""
    from flask import current_app

    return current_app.extensions["jobsite"]

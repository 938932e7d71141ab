"""The delivery worker: an RQ worker with its scheduler, plus jobsite's upkeep between jobs, that rides out a Redis
restart.

RQ 3's work loop survives Redis going away only while it waits for a job; anywhere else (a job's bookkeeping, the
heartbeat after it, the maintenance tick) it logs the error with its stack trace and quits, and its scheduler
process dies the same way. Here those errors end the loop quietly instead, and `run_worker` waits for Redis with
backoff, says so once per outage, and starts the loop again in the same process. An application whose delivery was
cut off keeps its lease until it runs out, and is then taken up by recovery (`tasks.recover`), like one whose worker
died.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from types import FrameType
from typing import Any

import redis
from rq import SimpleWorker
from rq import scheduler as rq_scheduler
from rq.job import Job
from rq.queue import Queue
from rq.scheduler import RQScheduler

from ..delivery import backoff, jobs
from ..redisdb.clock import server_now
from ..redisdb.lua import Lua
from ..services import Services
from ..settings import Settings
from . import tasks

log = logging.getLogger(__name__)

REDIS_DOWN = (redis.ConnectionError, redis.TimeoutError)  # BusyLoadingError (a restart loading its AOF) included
WAIT_BASE_S = 0.5  # between pings while Redis is away: from this, doubling,
PING_CAP_S = 1.0  # to this (a local restart takes milliseconds; an outside Redis's failover, seconds: a ping a
# second costs nothing, and a worker back within a second of Redis delivers a backlog that much sooner)
WAIT_CAP_S = 5.0  # a work loop that quit on an error starts again after a pause doubling up to this,
CALM_S = 60.0  # unless it ran this long (healthy): the next pause starts from WAIT_BASE_S again
# RQ's scheduler sets its queue locks to expire in `interval + 60` s and renews them at each beat (every `interval`
# s). A scheduler that has not beaten for this long is dead or frozen (a SIGKILLed worker, a paused VM), and every
# scheduled job (a paced or backed-off delivery, the probe of a closed gate) would wait out the rest of that minute.
SCHEDULER_SILENT_S = 10
RQ_LOCK_TTL_BEYOND_INTERVAL_S = 60

# Delete a scheduler lock that another scheduler holds and has not renewed for ARGV[2] s; 1 if deleted. Its TTL says
# when it was last renewed, by Redis's clock alone, so machines' clocks do not matter.
_TAKE_OVER = Lua("""
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] and redis.call('TTL', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
""")


class RedisLost(SystemExit):
    """Ends RQ's work loop when Redis went away: RQ lets SystemExit through (after its teardown) where it logs any
    other exception with a stack trace and quits."""


@contextlib.contextmanager
def _redis_lost() -> Iterator[None]:
    try:
        yield
    except REDIS_DOWN as e:
        raise RedisLost(type(e).__name__) from e


class QuietScheduler(RQScheduler):
    """RQ's scheduler process, which ends without a stack trace when Redis goes away: the worker starts another
    once Redis is back (at its next work loop, or RQ's maintenance tick). It also ends when its worker is gone."""

    _worker_pid = 0

    def start(self) -> Any:
        self._worker_pid = os.getpid()  # in the worker, before the fork: the scheduler's parent must stay this one
        return super().start()

    def work(self) -> None:
        # (This runs in the scheduler's own process.) RQ reads its local clock to find the scheduled jobs that are
        # due; jobs are scheduled on Redis's (delivery/jobs.py), so a machine whose clock is off by a minute neither
        # runs every retry and probe a minute early nor holds them a minute late.
        connection = self.connection
        rq_scheduler.current_timestamp = lambda: int(server_now(connection))
        try:
            super().work()
        except REDIS_DOWN as e:
            self.log.debug("scheduler stopped: Redis unreachable (%s)", type(e).__name__)

    def heartbeat(self) -> None:
        """RQ's beat, once its worker is known to be alive. A stop that reaches the worker while it starts this
        process (RQ installs the worker's handlers only after forking it) ends the worker alone, and this process
        would schedule on forever, holding the embedded Redis's users lock so that it never stops."""
        if self._worker_pid and os.getppid() != self._worker_pid:
            self.log.debug("scheduler stopping: its worker is gone")
            self.request_stop()
            return
        super().heartbeat()


class DeliveryWorker(SimpleWorker):
    """Runs jobs in-process (no fork per job: faster, and safe beside RQ's forked scheduler), and runs jobsite's
    upkeep at every maintenance tick. A short worker TTL keeps the idle dequeue timeout, and so the tick, short.
    Every scheduler it starts has the same name, so the one started after a Redis restart takes over the locks of
    the one before instead of waiting a minute for them to expire."""

    def __init__(self, *args: Any, scheduler_name: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.scheduler_name = scheduler_name
        self.stopping = False  # a stop was asked for (SIGTERM, Ctrl-C): the loop ends for good
        self.cut_off: Job | None = None  # the job Redis went away under

    def request_stop(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True
        super().request_stop(signum, frame)

    def take_over_silent_schedulers(self) -> None:
        """Free the queue locks of a scheduler that has gone silent, so that this worker's scheduler takes them at
        RQ's next maintenance tick (`run_maintenance_tasks`, every upkeep interval) instead of a minute later. Another
        worker's scheduler that is only starved of CPU for that long may lose its locks too: both may then queue the
        same scheduled job once, which the lease, the fence and the probe's claim make harmless."""
        scheduler = self.scheduler
        if scheduler is None or (scheduler._process is not None and scheduler._process.is_alive()):
            return  # ours runs (holding the locks, or beside the scheduler that does): RQ starts none while it does
        renewed_above = scheduler.interval + RQ_LOCK_TTL_BEYOND_INTERVAL_S - SCHEDULER_SILENT_S
        freed = [
            queue
            for queue in self.queue_names()
            if _TAKE_OVER(self.connection, [RQScheduler.get_locking_key(queue)], [self.scheduler_name, renewed_above])
        ]
        if freed:
            log.warning(
                "taking over the scheduling of %s: its scheduler has been silent for %d s or more",
                ", ".join(freed),
                SCHEDULER_SILENT_S,
            )

    def run_maintenance_tasks(self) -> None:
        with _redis_lost():
            self.take_over_silent_schedulers()
            super().run_maintenance_tasks()
            try:
                tasks.upkeep()
            except REDIS_DOWN:
                raise
            except redis.RedisError as e:  # an answer, not an outage: upkeep runs again next tick
                log.warning("upkeep skipped: %s", e)

    def execute_job(self, job: Job, queue: Queue) -> None:
        try:
            super().execute_job(job, queue)
        except REDIS_DOWN as e:
            self.cut_off = job
            raise RedisLost(type(e).__name__) from e

    def handle_exception(self, job: Job, *exc_info: Any) -> None:
        """A job cut off by Redis (gone, or too slow to answer), with Redis answering again by the time RQ recorded
        the failure, is said in one line, not RQ's stack trace, and tidied after as when the work loop ends on it
        (`tasks.cut_off`): a delivery is taken up by recovery, without the settle time if its apply was never sent;
        a probe is replaced. Any other error keeps RQ's full report."""
        if exc_info and exc_info[0] is not None and issubclass(exc_info[0], REDIS_DOWN):
            log.warning("%s was cut off by Redis (%s)", job.description or job.id, exc_info[0].__name__)
            with contextlib.suppress(*REDIS_DOWN):  # gone again: the loop ends and tidies once it is back
                tasks.cut_off(job)
            return
        super().handle_exception(job, *exc_info)

    def heartbeat(self, timeout: int | None = None, pipeline: redis.client.Pipeline | None = None) -> None:
        with _redis_lost():
            super().heartbeat(timeout, pipeline)

    def set_state(self, state: str, pipeline: redis.client.Pipeline | None = None) -> None:
        with _redis_lost():
            super().set_state(state, pipeline)

    def check_for_suspension(self, burst: bool) -> None:
        with _redis_lost():
            super().check_for_suspension(burst)

    def _start_scheduler(
        self, burst: bool = False, logging_level: str | None = "INFO", date_format: str = "", log_format: str = ""
    ) -> None:
        """RQ's, with the quiet scheduler under this worker's scheduler name."""
        self.scheduler = QuietScheduler(
            self.queues,
            connection=self.connection,
            logging_level=logging_level or "INFO",
            date_format=date_format,
            log_format=log_format,
            serializer=self.serializer,
            name=self.scheduler_name,
        )
        self.scheduler.acquire_locks()
        if not self.scheduler.acquired_locks:
            return
        if not burst:
            self.scheduler.start()
            return
        try:
            self.scheduler.register_birth()
            self.scheduler.enqueue_scheduled_jobs()
        finally:
            self.scheduler.release_locks()
            self.scheduler.register_death()

    def _pubsub_exception_handler(self, exc: Exception, pubsub: Any, pubsub_thread: Any) -> None:
        """RQ's pubsub thread (it hears commands such as stop-job) retries every 2 s while Redis is away, with an
        error line each time; the outage is told once, by `run_worker`."""
        if not isinstance(exc, redis.ConnectionError):
            super()._pubsub_exception_handler(exc, pubsub, pubsub_thread)
            return
        time.sleep(2.0)

    def teardown(self) -> None:
        """RQ's; without Redis the worker's death cannot be recorded (its key expires by itself), but its pubsub
        thread, which would retry every 2 s with an error each time, is stopped all the same."""
        try:
            super().teardown()
        except redis.RedisError:
            if self.pubsub_thread:
                self.pubsub_thread.stop()
                self.pubsub_thread.join(timeout=1)
            if self.pubsub:
                self.pubsub.close()


def run_worker(settings: Settings, *, burst: bool = False) -> None:
    """Work until asked to stop (or, with `burst`, until the queues are empty), starting the work loop again after
    Redis went away or RQ quit on an error."""
    services = tasks.use(Services(settings))
    tasks.on_worker_start(services)
    scheduler_name = uuid.uuid4().hex
    restarts = 0
    while True:
        began = time.monotonic()
        lost: str | None = None
        worker: DeliveryWorker | None = None
        try:
            # RQ's Worker talks to Redis as it is built (CLIENT SETNAME): a primary that dies just then (a failover
            # while this worker starts) is waited for like any other outage, not the end of the process.
            worker = DeliveryWorker(
                jobs.queues(services.redis),
                connection=services.redis,
                job_class=jobs.TaskJob,  # jobs queued under the tasks' old dotted paths run too
                worker_ttl=settings.upkeep_interval_s + 15,  # RQ dequeues with timeout worker_ttl - 15
                maintenance_interval=settings.upkeep_interval_s,
                scheduler_name=scheduler_name,
            )
            worker.work(with_scheduler=True, burst=burst, logging_level="WARNING")
        except RedisLost as e:
            lost = str(e)
        except REDIS_DOWN as e:  # while the loop was starting
            lost = type(e).__name__
        if (worker is not None and worker.stopping) or (burst and lost is None):
            return
        restarts = 0 if time.monotonic() - began > CALM_S else restarts + 1
        if not _wait_for_redis(services.redis, lost, first_pause(lost, restarts)):
            return
        with contextlib.suppress(*REDIS_DOWN):  # gone again: the claim expires, the settle time passes
            tasks.cut_off(worker.cut_off if worker is not None else None)


def first_pause(lost: str | None, restarts: int) -> float:
    """How long a worker pauses before it starts its work loop again: after Redis was lost, only until the first
    ping (the pings wait for Redis; under Redis faults every few seconds, a pause growing with each restart kept the
    workers idle for seconds after each one ended, and the backlog grew); after the loop quit on an error, a pause
    doubling with each quick restart, so a loop that keeps failing does not spin."""
    return WAIT_BASE_S if lost else backoff.delay(restarts, WAIT_BASE_S, WAIT_CAP_S)


def _wait_for_redis(r: redis.Redis, lost: str | None, pause_s: float) -> bool:
    """Pause, then wait until Redis answers, saying so once; False if a stop was asked for meanwhile."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    if lost:
        log.warning("Redis is unreachable (%s): deliveries wait for it", lost)
    else:
        log.warning("the work loop stopped (see above); starting it again in %.1f s", pause_s)
    began, attempt = time.monotonic(), 0
    while not stop.wait(pause_s):
        try:
            r.ping()
        except REDIS_DOWN:
            pause_s = backoff.delay(attempt, WAIT_BASE_S, PING_CAP_S)
            attempt += 1
            continue
        if lost:
            log.warning("Redis answers again after %.1f s: deliveries resume", time.monotonic() - began)
        return True
    return False

"""The delivery worker: an RQ worker with its scheduler, plus jobsite's upkeep between jobs."""

from __future__ import annotations

import logging

import redis
from rq import SimpleWorker

from ..delivery import jobs
from ..services import Services
from ..settings import Settings
from . import tasks

log = logging.getLogger(__name__)


class DeliveryWorker(SimpleWorker):
    """Runs jobs in-process (no fork per job: faster, and safe beside RQ's forked scheduler), and runs jobsite's
    upkeep at every maintenance tick. A short worker TTL keeps the idle dequeue timeout, and so the tick, short."""

    def run_maintenance_tasks(self) -> None:
        super().run_maintenance_tasks()
        try:
            tasks.upkeep()
        except redis.RedisError as e:  # Redis is down or restarting: RQ reconnects, and upkeep runs again next tick
            log.warning("upkeep skipped: %s", e)


def run_worker(settings: Settings, *, burst: bool = False) -> None:
    services = tasks.use(Services(settings))
    worker = DeliveryWorker(
        jobs.queues(services.redis),
        connection=services.redis,
        worker_ttl=settings.upkeep_interval_s + 15,  # RQ dequeues with timeout worker_ttl - 15
        maintenance_interval=settings.upkeep_interval_s,
    )
    tasks.on_worker_start(services)
    worker.work(with_scheduler=True, burst=burst, logging_level="WARNING")

"""The memory guard: Redis must never evict or refuse what was accepted, so above a high-water mark of its maxmemory
nothing new comes in (RedisFull: the person keeps the form and tries again later), and above a low-water mark only
small things do. Applications, sign-ups and captures alike."""

from __future__ import annotations

import logging

import redis

from .. import metrics
from ..redisdb import redis_server
from .inputs import Admission

log = logging.getLogger(__name__)

FULL_RETRY_AFTER_S = 300  # memory is freed as Lever takes applications: worth another try in a few minutes
SMALL_FILES_BYTES = 2 * 2**20  # above the low-water mark, only applications whose files fit in this: a CV or two


class RedisFull(Exception):
    """Redis is above its high-water mark: an application accepted now might not fit, so none is accepted."""

    retry_after_s = FULL_RETRY_AFTER_S


def check_room(a: Admission, incoming: int) -> None:
    """Raise RedisFull when `incoming` more bytes would take Redis past the high-water mark of its maxmemory, or,
    for files larger than SMALL_FILES_BYTES, past the low-water mark: what is left between the two is kept for
    small applications, so a candidate with a CV still gets in while large uploads fill Redis. One INFO round trip
    per submission costs about 0.25 ms, mostly redis-py parsing the answer (Redis spends 3 us), under 1 % of a
    submission (bench/intake_bench.py), so it is not cached: a cached figure would let a burst of large files past
    the mark. Asked with the quick client of a request (services.py): a silent Redis costs seconds, not minutes."""
    try:
        mem = redis_server.memory(a.quick())
    except redis.RedisError as e:
        a.heard(e)
        raise
    if mem.above(a.high_water, incoming) or (incoming > SMALL_FILES_BYTES and mem.above(a.low_water, incoming)):
        log.warning(
            "application refused: Redis uses %d of %d bytes (high-water mark %.0f%%)",
            mem.used,
            mem.limit,
            a.high_water * 100,
        )
        metrics.incr(a.redis(), "jobsite_applications_refused_total", reason="redis_memory")
        raise RedisFull()

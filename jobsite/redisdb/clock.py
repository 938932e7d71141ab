"""The clock every machine shares: the Redis server's.

A time written by one process and compared by another (when a scheduled job is due, when the closed gate's next
probe is) must come from one clock, or a machine whose clock is ahead or behind moves every such time by its error:
a worker 150 s ahead scheduled the probe of a closed gate 150 s late, and the backlog waited (the nemesis, seed 5).
Within one process, the local clock is fine for a delay; across processes, times are on this one.
"""

from __future__ import annotations

import redis


def server_now(r: redis.Redis) -> float:
    """Now on the Redis server's clock (epoch seconds)."""
    seconds, micros = r.time()
    return seconds + micros / 1e6

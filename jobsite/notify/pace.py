"""The pace of outgoing mail: at most `JOBSITE_MAIL_PER_SECOND` emails in any second, whichever worker on whichever
machine sends them, so a big list of alerts never gets the company's mail server to refuse (or throttle) the site.

The window is a sorted set in Redis (`mail:pace`, owned here beside `mail:*`), scored by the Redis server's clock:
a send takes a slot only while fewer than N were taken in the last second (a sliding log, so no second, however it
is cut, holds more than N). Bulk mail (job alerts) leaves a fifth of the slots to the mail a person waits for (the
confirmation of an application, an opt-in), so a digest run never holds a receipt back by more than a second.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable

import redis

from ..keyspace.notify_keys import PACE
from ..redisdb.lua import Lua

# KEYS[1] the window; ARGV: the slots this sender may use, a unique member. Returns {0, the server's time in µs} (a
# slot was taken then) or {the microseconds until one frees, the time}.
_TAKE = Lua("""
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local limit = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 1000000)
local n = redis.call('ZCARD', KEYS[1])
if n < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[2])
  redis.call('PEXPIRE', KEYS[1], 2000)
  return {0, now}
end
local oldest = redis.call('ZRANGE', KEYS[1], n - limit, n - limit, 'WITHSCORES')
return {math.max(1, tonumber(oldest[2]) + 1000000 - now), now}
""")


class Paced(Exception):
    """No slot came free within the wait this sender allows: try again later."""


def slots(per_second: int, bulk: bool) -> int:
    """The slots of a second a sender may use: all of them, or for bulk mail all but a fifth (at least one)."""
    if not bulk or per_second < 2:
        return per_second
    return max(1, per_second - math.ceil(per_second / 5))


def take(
    r: redis.Redis,
    per_second: int,
    *,
    bulk: bool = False,
    max_wait_s: float = 60.0,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Wait for a slot to send one email; returns when it was taken (the Redis server's clock, µs), or 0 with no
    pace (`per_second` 0).

    Raises:
        Paced: no slot within `max_wait_s`.
    """
    if per_second <= 0:
        return 0
    limit, member = slots(per_second, bulk), uuid.uuid4().hex
    waited = 0.0
    while True:
        wait_us, now_us = (int(x) for x in _TAKE(r, [PACE], [limit, member]))
        if not wait_us:
            return now_us
        wait_s = wait_us / 1_000_000
        if waited + wait_s > max_wait_s:
            raise Paced(f"no mail slot within {max_wait_s:.0f} s ({per_second}/s)")
        sleep(wait_s)
        waited += wait_s

"""Rate limits shared by every process through Redis: the GCRA buckets that pace calls to Lever, timed by the Redis
server's clock, and how client addresses are kept for per-address limits.

A caller reserves a slot and is told how long to wait for it, so workers on several machines space their requests
evenly without polling. One bucket paces applications (Lever allows 2/s), one paces every Lever call (10/s).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import redis
from redis.commands.core import Script

APPLY = "ratelimit:apply"
LEVER = "ratelimit:lever"

# KEYS[1] = bucket; ARGV = interval_ms, tolerance_ms, max_wait_ms. Returns wait_ms >= 0 (slot reserved) or
# -(wait_ms) when the wait would exceed max_wait_ms (nothing reserved).
_RESERVE = Script(None, b"""
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local wait = tat - tonumber(ARGV[2]) - now
if wait < 0 then wait = 0 end
if wait > tonumber(ARGV[3]) then return -wait end
local new_tat = tat + tonumber(ARGV[1])
redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil(new_tat - now) + 1000)
return wait
""")
# Push the bucket's next free slot at least ARGV[1] ms into the future (after a 429).
_DEFER = Script(None, b"""
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local until_ = now + tonumber(ARGV[1])
local tat = tonumber(redis.call('GET', KEYS[1]) or 0)
if tat < until_ then redis.call('SET', KEYS[1], until_, 'PX', tonumber(ARGV[1]) + 1000) end
return 1
""")


@dataclass(frozen=True)
class Bucket:
    key: str
    rate_per_s: float
    burst: int = 1

    def reserve(self, r: redis.Redis, max_wait_s: float) -> float | None:
        """Reserve the next slot: seconds to wait before using it, or None if that would be over `max_wait_s`."""
        interval = 1000.0 / self.rate_per_s
        args = [interval, interval * (self.burst - 1), int(max_wait_s * 1000)]
        wait = int(_RESERVE(keys=[self.key], args=args, client=r))
        return None if wait < 0 else wait / 1000.0

    def next_free_in(self, r: redis.Redis) -> float:
        """Seconds until the bucket has a free slot (without reserving it)."""
        wait = int(_RESERVE(keys=[self.key], args=[0, 0, -1], client=r))
        return abs(wait) / 1000.0

    def defer(self, r: redis.Redis, seconds: float) -> None:
        """Keep every worker off this bucket for `seconds` (Lever said 429)."""
        _DEFER(keys=[self.key], args=[int(seconds * 1000)], client=r)


def ip_digest(ip: str) -> str:
    """A client address as per-address limits keep it in Redis: hashed, so no address is stored."""
    return hashlib.sha256(ip.encode()).hexdigest()[:24]

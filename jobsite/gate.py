"""The delivery gate, shared by every worker through Redis.

Open: applications go to Lever. Closed: Lever answered 503 (maintenance mode); applications are parked in a sorted
set, oldest first, and one probe at a time (a real delivery of the oldest parked application) is tried with capped
exponential backoff. When a probe succeeds the gate opens and the parked applications are released in the order
they arrived. Paused: a recruiter stopped delivery (e.g. for an announced maintenance window); everything parks and
nothing is probed until they resume.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

import redis

GATE = "gate"  # hash: state (open|closed), since, failures, next_probe_at, reason
PAUSED = "gate:paused"  # exists while a recruiter has paused delivery (value: who)
PARKED = "gate:parked"  # zset: receipt -> created_at
PROBE = "gate:probe"  # exists while a probe job is scheduled or running (value: its job id)

PROBE_BASE_S = 1.0

# KEYS: gate, paused, parked. ARGV: receipt, created_at. Park only while the gate is closed or paused, atomically
# with the check, so no application is parked just after the gate opened.
_PARK = """
if redis.call('HGET', KEYS[1], 'state') == 'closed' or redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
  return 1
end
return 0
"""
# KEYS: gate, paused, parked. Opens the gate; unless paused, takes and returns every parked receipt, oldest first.
_OPEN = """
redis.call('HSET', KEYS[1], 'state', 'open', 'failures', 0, 'since', ARGV[1], 'reason', '')
if redis.call('EXISTS', KEYS[2]) == 1 then return {} end
local ids = redis.call('ZRANGE', KEYS[3], 0, -1)
redis.call('DEL', KEYS[3])
return ids
"""
# KEYS: gate. ARGV: now, reason. Returns 1 if this call closed it.
_CLOSE = """
if redis.call('HGET', KEYS[1], 'state') == 'closed' then return 0 end
redis.call('HSET', KEYS[1], 'state', 'closed', 'since', ARGV[1], 'failures', 0, 'reason', ARGV[2])
return 1
"""


@dataclass(frozen=True)
class GateStatus:
    state: str  # open | closed
    paused: bool
    since: float
    failures: int
    next_probe_at: float
    reason: str
    parked: int

    @property
    def is_open(self) -> bool:
        return self.state != "closed" and not self.paused


def jitter(delay_s: float) -> float:
    """Spread retries so workers and sites do not stampede; never longer than `delay_s`. Tests pin it."""
    return delay_s * random.uniform(0.85, 1.0)


def probe_delay(failures: int, cap_s: float) -> float:
    """Capped exponential backoff for the next probe after `failures` failed probes."""
    return jitter(min(cap_s, PROBE_BASE_S * 2 ** min(failures, 30)))


def status(r: redis.Redis) -> GateStatus:
    pipe = r.pipeline(transaction=False)
    pipe.hgetall(GATE)
    pipe.exists(PAUSED)
    pipe.zcard(PARKED)
    raw, paused, parked = pipe.execute()
    d = {k.decode(): v.decode() for k, v in raw.items()}
    return GateStatus(d.get("state", "open"), bool(paused), float(d.get("since") or 0), int(d.get("failures") or 0),
                      float(d.get("next_probe_at") or 0), d.get("reason", ""), int(parked))


def park(r: redis.Redis, receipt: str, created_at: float) -> bool:
    """Park an application while the gate is closed or paused; False if it is open (then deliver it)."""
    return bool(r.eval(_PARK, 3, GATE, PAUSED, PARKED, receipt, created_at))


def close(r: redis.Redis, reason: str) -> bool:
    """Close the gate (Lever said 503); True if it was open."""
    return bool(r.eval(_CLOSE, 1, GATE, time.time(), reason[:200]))


def open_(r: redis.Redis) -> list[str]:
    """Open the gate; returns the parked receipts to release, oldest first (none while paused)."""
    return [x.decode() for x in r.eval(_OPEN, 3, GATE, PAUSED, PARKED, time.time())]


def probe_failed(r: redis.Redis, cap_s: float) -> float:
    """Count a failed probe; returns the delay before the next one."""
    failures = int(r.hincrby(GATE, "failures", 1))
    delay = probe_delay(failures, cap_s)
    r.hset(GATE, "next_probe_at", time.time() + delay)
    return delay


def oldest_parked(r: redis.Redis) -> str | None:
    found = r.zrange(PARKED, 0, 0)
    return found[0].decode() if found else None


def unpark(r: redis.Redis, receipt: str) -> None:
    r.zrem(PARKED, receipt)


def pause(r: redis.Redis, who: str) -> None:
    r.set(PAUSED, who)


def resume(r: redis.Redis) -> list[str]:
    """Lift a pause; returns the parked receipts to release if the gate is open (else probing resumes)."""
    r.delete(PAUSED)
    if status(r).state == "closed":
        return []
    return open_(r)

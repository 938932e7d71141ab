"""The delivery gate, shared by every worker through Redis.

Open: applications go to Lever. Closed: Lever answered 503 (maintenance mode), kept failing (5xx or no answer, a few
times in a row), or refused our key; applications are parked in a sorted
set, oldest first, and one probe at a time checks Lever: every few seconds a light read that maintenance blocks, and
once it passes a real delivery of the oldest parked application. Where the key may not make that read, the probe is
that delivery alone, with capped exponential backoff. When a delivery succeeds the gate opens and the parked
applications are released in the order they arrived. Paused: a recruiter stopped delivery (e.g. for an announced
maintenance window); everything parks and nothing is probed until they resume.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import redis

from ..keyspace.delivery_keys import GATE, LEVER_FAILURES, PARKED, PAUSED, PROBE, READ_REFUSED
from ..redisdb.clock import server_now
from ..redisdb.lua import Lua
from . import backoff

PROBE_BASE_S = 1.0


class GateState(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class Cause(StrEnum):
    """Why the gate closed: both park every application, but recruiters fix them differently."""

    MAINTENANCE = "maintenance"  # Lever answered 503: wait
    KEY_REFUSED = "key_refused"  # Lever refused our API key (401/403): an admin must fix the key
    FAILING = "failing"  # Lever kept answering 5xx (or nothing): wait for it, as for maintenance


# KEYS: gate, paused, parked. ARGV: receipt, created_at. Park only while the gate is closed or paused, atomically
# with the check, so no application is parked just after the gate opened.
_PARK = Lua(b"""
if redis.call('HGET', KEYS[1], 'state') == 'closed' or redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
  return 1
end
return 0
""")
# KEYS: gate, paused, parked. Opens the gate; unless paused, takes and returns every parked receipt, oldest first.
_OPEN = Lua(b"""
redis.call('HSET', KEYS[1], 'state', 'open', 'failures', 0, 'since', ARGV[1], 'reason', '')
if redis.call('EXISTS', KEYS[2]) == 1 then return {} end
local ids = redis.call('ZRANGE', KEYS[3], 0, -1)
redis.call('DEL', KEYS[3])
return ids
""")
# KEYS: gate, paused, parked. Unless the gate is closed or paused, takes and returns every member of `parked`, oldest
# first (another flow's parked set: its members go once the gate is open, whoever opened it).
_RELEASE = Lua(b"""
if redis.call('HGET', KEYS[1], 'state') == 'closed' or redis.call('EXISTS', KEYS[2]) == 1 then return {} end
local ids = redis.call('ZRANGE', KEYS[3], 0, -1)
redis.call('DEL', KEYS[3])
return ids
""")
# KEYS: gate. ARGV: now, cause, reason. Returns 1 if this call closed it.
_CLOSE = Lua(b"""
if redis.call('HGET', KEYS[1], 'state') == 'closed' then return 0 end
redis.call('HSET', KEYS[1], 'state', 'closed', 'since', ARGV[1], 'failures', 0, 'cause', ARGV[2], 'reason', ARGV[3])
return 1
""")


@dataclass(frozen=True)
class GateStatus:
    state: GateState
    cause: Cause | None  # while closed
    paused: bool
    since: float
    failures: int
    next_probe_at: float
    reason: str
    parked: int

    @property
    def closed(self) -> bool:
        return self.state == GateState.CLOSED

    @property
    def is_open(self) -> bool:
        return not self.closed and not self.paused


def probe_delay(failures: int, cap_s: float) -> float:
    """Capped exponential backoff for the next probe after `failures` failed probes."""
    return backoff.delay(failures, PROBE_BASE_S, cap_s)


def status(r: redis.Redis) -> GateStatus:
    pipe = r.pipeline(transaction=False)
    pipe.hgetall(GATE)
    pipe.exists(PAUSED)
    pipe.zcard(PARKED)
    raw, paused, parked = pipe.execute()
    d = {k.decode(): v.decode() for k, v in raw.items()}
    state = GateState(d.get("state") or GateState.OPEN)
    cause = Cause(d.get("cause") or Cause.MAINTENANCE) if state == GateState.CLOSED else None
    return GateStatus(
        state,
        cause,
        bool(paused),
        float(d.get("since") or 0),
        int(d.get("failures") or 0),
        float(d.get("next_probe_at") or 0),
        d.get("reason", ""),
        int(parked),
    )


def park(r: redis.Redis, receipt: str, created_at: float, parked: str = PARKED) -> bool:
    """Park an application (or, in `parked`, another flow's item) while the gate is closed or paused; False if it is
    open (then deliver it). The check and the write are one step: nothing is parked just after the gate opened."""
    return bool(_PARK(r, [GATE, PAUSED, parked], [receipt, created_at]))


def release(r: redis.Redis, parked: str) -> list[str]:
    """Another flow's parked items, oldest first, taken from `parked` if the gate is open (none while it is closed
    or paused): upkeep queues them. (Applications are released by `open_`, with the gate's opening.)"""
    return [x.decode() for x in _RELEASE(r, [GATE, PAUSED, parked], [])]


def close(r: redis.Redis, cause: Cause, reason: str) -> bool:
    """Close the gate (Lever cannot take applications now); True if it was open."""
    return bool(_CLOSE(r, [GATE], [server_now(r), cause.value, reason[:200]]))


def open_(r: redis.Redis) -> list[str]:
    """Open the gate; returns the parked receipts to release, oldest first (none while paused)."""
    return [x.decode() for x in _OPEN(r, [GATE, PAUSED, PARKED], [server_now(r)])]


def lever_failed(r: redis.Redis, threshold: int, window_s: float) -> bool:
    """Count a 5xx or unanswered call (any worker's); True once `threshold` came in a row, none more than `window_s`
    after the one before: Lever is failing, not one request."""
    with r.pipeline() as pipe:
        pipe.incr(LEVER_FAILURES)
        pipe.expire(LEVER_FAILURES, max(1, int(window_s)))
        count, _ = pipe.execute()
    return int(count) >= threshold


def lever_answered(r: redis.Redis) -> None:
    """Lever answered a call: failures no longer come in a row."""
    r.delete(LEVER_FAILURES)


def probe_failed(r: redis.Redis, cap_s: float) -> float:
    """Count a failed probe; returns the delay before the next one."""
    failures = int(r.hincrby(GATE, "failures", 1))
    delay = probe_delay(failures, cap_s)
    r.hset(GATE, "next_probe_at", server_now(r) + delay)  # the shared clock: any worker schedules it
    return delay


def probe_claim(r: redis.Redis) -> str | None:
    """The job id of the one probe, while one is scheduled or running."""
    claim = r.get(PROBE)
    return claim.decode() if claim is not None else None


def claim_probe(pipe: redis.client.Pipeline, job_id: str, at: float, ttl_s: int) -> None:
    """Record `job_id` as the one probe, due at epoch `at`, in the transaction that schedules its job (so a claim
    always names a job that exists). The claim expires after `ttl_s`, so a probe lost with its worker heals."""
    pipe.set(PROBE, job_id, ex=ttl_s)
    pipe.hset(GATE, "next_probe_at", at)


def end_probe(r: redis.Redis) -> None:
    """The probe chain ends: the gate is open, or delivery is paused."""
    r.delete(PROBE)


def probe_scheduled(r: redis.Redis) -> bool:
    return bool(r.exists(PROBE))


def note_read_refused(r: redis.Redis, why: str, retry_s: int) -> None:
    """Lever refused the probe's read: probe by delivery alone, and try the read again after `retry_s` (the key may
    be granted it meanwhile)."""
    r.set(READ_REFUSED, why[:200], ex=retry_s)


def read_refused(r: redis.Redis) -> str | None:
    """Why probes deliver without reading first, while Lever's refusal of the read is remembered; else None."""
    why = r.get(READ_REFUSED)
    return why.decode() if why is not None else None


def parked(r: redis.Redis) -> set[str]:
    return {x.decode() for x in r.zrange(PARKED, 0, -1)}


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
    if status(r).closed:
        return []
    return open_(r)


def drop_probe(r: redis.Redis, job_id: str) -> bool:
    """A probe that ended without scheduling its successor (cut off by Redis, failed, or gone) gives up its claim,
    if it still holds it, so that the next upkeep schedules another instead of waiting for the claim to expire."""
    with r.pipeline() as pipe:
        try:
            pipe.watch(PROBE)
            if pipe.get(PROBE) != job_id.encode():
                return False
            pipe.multi()
            pipe.delete(PROBE)
            pipe.execute()
        except redis.WatchError:
            return False
    return True

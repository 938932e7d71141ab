"""The pacing of every call to Lever, shared by every process through Redis.

Lever documents its limits as numbers (2 applications a second, 10 calls a second), not as an algorithm, may change
them without warning, and counts requests as they reach it. So the numbers are read in the strictest way: at most N
in any 1-second window as Lever receives them. Every call reserves a slot in Redis (one Lua script, timed by the Redis
server's clock, so workers on several machines share one schedule) at least `(1 s + margin) / N` away from every
slot already reserved on the same limit. The margin absorbs the jitter between a slot and the request's arrival at
Lever (measured, see README "Benchmarks"): N + 1 requests then arrive at least `1 s + margin - jitter` apart. Slots
are evenly spaced, so the pacing also holds under a token bucket or a minimum spacing.

The margin adapts to the lag every machine measures, shared in Redis (MARGIN): each call tells how late its process
woke for its slot, and the margin in force is the floor (JOBSITE_PACING_MARGIN_MS, 30 ms) plus the smoothed lag and
four deviations (TCP's retransmission estimator, RFC 6298), at most MARGIN_CEILING_S (300 ms). Two applies two slots
apart arrive closer than their slots by the first one's lag minus the second's plus the difference of their trips
to Lever: the lag term covers the first (a call waking later than half the margin gives its slot up and takes the
next), the floor the second, which a sender cannot measure. The figures (bench/pacing_bench.py, 120 applications,
3 workers, strict window): with a fixed 100 ms the drain was 0.90-0.91 of 2/s, as the spacing allows (1/1.1). The
slot-to-arrival spread stayed under 10 ms on a quiet machine, and two applies two apart arrived at most 13.6 ms
closer than their slots at load 8, so 30 ms covers the part a sender cannot see with room, and allows 0.97 (1/1.03):
measured 0.96-0.97 with 0 x 429 up to load 3, 0.94 with 0 x 429 at load 5.6. On a loaded machine the lag raises the
margin for every worker (a stall counts as the ceiling at most, and its weight halves within a few calls on time);
the drain stays at 0.95 or more while the margin in force is under 52 ms. What the margin cannot see is a receiving
side that stalls (the sandbox on a machine oversubscribed by browsers once squeezed two applies by 95-200 ms):
raise the floor there.

A slot given up (its process woke too late, or a 429 paused everyone past it) leaves the schedule (`release`), and
every call waiting for a later slot looks for an earlier one every MOVE_UP_EVERY_S (`move_up`): a slot only moves to a
time as far from every other slot as a new reservation would be, so the schedule stays as safe as reserving, and the
queue closes the hole instead of Lever's stream losing a whole spacing per late wake. The counters of what stayed
unused (slots given up and how late, the time the schedule stood idle) explain a drain below the ceiling
(bench/pacing_bench.py prints them).

The pacing adapts like the AWS SDKs' adaptive retry mode: a 429 lowers the shared rate at once (x0.7) for every
worker and pauses them all (Retry-After, or 1 s without one); the rate then climbs back by 50 % of the ceiling a
minute once the 429s stop (from the floor to the ceiling in under two minutes: at 5 % a minute, a few 429 storms kept
the nemesis's delivery far below Lever's 2/s for the whole run), never past the ceiling, Lever's strict limits. A 429
answering a request that was paced before the last decrease says nothing new and lowers nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass

import redis

from .. import metrics
from ..keyspace.lever_keys import MARGIN, SEQ, SLOTS, STATE
from ..redisdb.lua import Lua
from .client import LeverRateLimited

log = logging.getLogger(__name__)

WINDOW_S = 1.0  # Lever's "per second", read as any 1-second window
DECREASE = 0.7  # a 429 multiplies the shared rate by this
RECOVERY_PER_MIN = 0.5  # then the rate climbs back by this share of the ceiling a minute, up to it
PAUSE_CHECK_AHEAD_S = 0.05  # look for another worker's 429 this long before a slot, not between the slot and the send
FLOOR = 0.1  # the rate never falls below this share of the ceiling (429s from another client of the key)
_RECOVERY_PER_MS = RECOVERY_PER_MIN / 60_000

MARGIN_CEILING_S = 0.3  # the margin never grows past this (a machine so loaded that its calls leave 150 ms late)
LATE_SLOTS = 3  # a call that woke past half the margin for this many slots in a row does not send: it waits again
MOVE_UP_EVERY_S = 0.1  # a caller waiting for its slot looks this often for an earlier one given up (`move_up`)
LATE_RETRY_S = 1.0  # how long it waits then (a descheduled process: a second is many slots for a loaded machine)

Clock = Callable[[], float]  # epoch seconds; tests inject one to move time without sleeping

# The shared rate factor of a limit at `now`: what the last decrease left, plus the recovery since.
_FACTOR = """
local function factor(st, now, recovery)
  if not st[1] then return 1 end
  return math.min(1, tonumber(st[1]) + recovery * math.max(0, now - tonumber(st[2])))
end
local function clock(arg)
  if arg ~= '' then return tonumber(arg) end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
end
"""

# The margin in force: the floor (the network's jitter) plus the lag every machine's calls leave their slots with (the
# smoothed lag plus four times its deviation, as TCP times a retransmission), at most the ceiling.
_MARGIN = """
local function margin(key, lo, hi)
  local m = redis.call('HMGET', key, 'lag', 'dev')
  if not m[1] then return lo end
  return math.min(hi, lo + tonumber(m[1]) + 4 * tonumber(m[2]))
end
"""

# KEYS = slots and state of each limit, then MARGIN, then SEQ. ARGV = now_ms ('' = the Redis clock), max_wait_ms,
# recovery per ms, floor, the margin's floor and ceiling (ms), each limit's requests a second, then the member of a
# slot to move up ('' = reserve a new one) and a lead (ms). Finds the earliest time, not before now + lead nor before a
# pause, at least the current spacing ((1 s + the margin in force) / rate) away from every other slot reserved on each
# limit, and reserves it on all of them unless that is more than max_wait_ms away (a move: unless it is no earlier).
# Returns {reserved|moved 1|0, slot ms, now ms, the margin in force ms, ms the first limit stood idle before this
# slot, the slot's member}.
_RESERVE = Lua(
    (
        _FACTOR
        + _MARGIN
        + """
local now, max_wait, recovery, floor = clock(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local n = (#KEYS - 2) / 2
local mine, lead = ARGV[7 + n], tonumber(ARGV[8 + n])
local m = margin(KEYS[#KEYS - 1], tonumber(ARGV[5]), tonumber(ARGV[6]))
local spacing, t = {}, now + lead
for i = 1, n do
  local st = redis.call('HMGET', KEYS[2 * i], 'factor', 'since', 'until')
  spacing[i] = (1000 + m) / tonumber(ARGV[6 + i]) / factor(st, now, recovery)
  if st[3] and tonumber(st[3]) > t then t = tonumber(st[3]) end
end
local moved = true
while moved do
  moved = false
  for i = 1, n do
    local s = spacing[i]
    local near = redis.call('ZRANGEBYSCORE', KEYS[2 * i - 1], '(' .. (t - s), '+inf', 'WITHSCORES')
    for j = 2, #near, 2 do
      local at = tonumber(near[j])
      if at >= t + s then break end
      if at > t - s and near[j - 1] ~= mine then t = at + s; moved = true end
    end
  end
end
t = math.ceil(t)
if mine ~= '' then
  -- Move the caller's own slot up to t if that is earlier (a slot given up left a hole): every other slot stays
  -- where it is, and t is as far from each as a new reservation would be.
  local held = redis.call('ZSCORE', KEYS[1], mine)
  if not held or t >= tonumber(held) then return {0, held or t, math.floor(now), math.ceil(m), 0, mine} end
  for i = 1, n do redis.call('ZADD', KEYS[2 * i - 1], 'XX', t, mine) end
  return {1, t, math.floor(now), math.ceil(m), 0, mine}
end
if t - now > max_wait then return {0, t, math.floor(now), math.ceil(m), 0, ''} end
-- How long the first limit's schedule stood idle before this call (its slot is now, the one before it further back
-- than the spacing): time no caller wanted a slot, which no pacing can make up.
local idle = 0
if t - now < 1 then
  local prev = redis.call('ZREVRANGEBYSCORE', KEYS[1], '(' .. t, '-inf', 'WITHSCORES', 'LIMIT', 0, 1)
  if prev[2] then idle = math.max(0, math.floor(t - tonumber(prev[2]) - spacing[1])) end
end
local member = redis.call('INCR', KEYS[#KEYS])
for i = 1, n do
  local keep = (1000 + tonumber(ARGV[6])) / tonumber(ARGV[6 + i]) / floor  -- the widest spacing a later one may need
  redis.call('ZADD', KEYS[2 * i - 1], t, member)
  redis.call('ZREMRANGEBYSCORE', KEYS[2 * i - 1], '-inf', '(' .. (now - keep))
  redis.call('PEXPIRE', KEYS[2 * i - 1], math.ceil(t - now + keep) + 1000)
end
return {1, t, math.floor(now), math.ceil(m), idle, member}
"""
    ).encode()
)

# KEYS = MARGIN. ARGV = how late a process woke for its slot (ms, capped at the ceiling). The estimator of TCP's
# retransmission timer (RFC 6298): a smoothed lag (gain 1/8) and its smoothed deviation (gain 1/4), the first sample
# taken as the lag with half of it as deviation.
_LAGGED = Lua(b"""
local x = tonumber(ARGV[1])
local m = redis.call('HMGET', KEYS[1], 'lag', 'dev')
local lag, dev = x, x / 2
if m[1] then
  dev = 0.75 * tonumber(m[2]) + 0.25 * math.abs(x - tonumber(m[1]))
  lag = 0.875 * tonumber(m[1]) + 0.125 * x
end
redis.call('HSET', KEYS[1], 'lag', lag, 'dev', dev)
redis.call('PEXPIRE', KEYS[1], 86400000)
return 1
""")

# KEYS = state of each limit. ARGV = now_ms (''), recovery per ms, floor, decrease, pause_ms, reserved_ms of the
# request Lever refused ('' if unknown). Lowers each rate (unless that request was paced before the last decrease)
# and pauses every limit for pause_ms.
_THROTTLED = Lua(
    (
        _FACTOR
        + """
local now, recovery, floor = clock(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local decrease, pause, reserved = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
for _, key in ipairs(KEYS) do
  local st = redis.call('HMGET', key, 'factor', 'since', 'until')
  local f = factor(st, now, recovery)
  if not st[1] or reserved == nil or reserved >= tonumber(st[2]) then
    f = math.max(floor, f * decrease)
    redis.call('HSET', key, 'factor', f, 'since', now)
  end
  local until_ = math.max(tonumber(st[3] or 0), now + pause)
  redis.call('HSET', key, 'until', until_)
  redis.call('PEXPIRE', key, math.ceil(math.max((1 - f) / recovery, until_ - now)) + 1000)
end
return 1
"""
    ).encode()
)


@dataclass(frozen=True)
class Limit:
    """At most `per_s` requests in any second as Lever receives them, shared by every worker: slots are
    `(1 s + margin_s) / per_s` apart while the rate is at its ceiling."""

    name: str
    per_s: float
    margin_s: float

    @property
    def spacing_s(self) -> float:
        return (WINDOW_S + self.margin_s) / self.per_s


@dataclass(frozen=True)
class Limits:
    """The two limits Lever documents: applications, and every call (applications included)."""

    apply: Limit
    lever: Limit

    @classmethod
    def of(cls, apply_per_s: float, lever_per_s: float, margin_s: float) -> Limits:
        return cls(Limit("apply", apply_per_s, margin_s), Limit("lever", lever_per_s, margin_s))

    def named(self, names: tuple[str, ...]) -> tuple[Limit, ...]:
        """The limits an endpoint declares by name (lever.client.LIMITS)."""
        return tuple(getattr(self, name) for name in names)


@dataclass(frozen=True)
class Slot:
    """A reservation. Times are on the limiter's clock (the Redis server's unless a test injects one)."""

    reserved: bool  # False: the earliest slot was further than the caller would wait; nothing was reserved
    wait_s: float  # from now until the slot
    at_ms: int
    reserved_ms: int  # when it was asked for: a 429 for a call paced before the last decrease lowers nothing
    margin_s: float = 0.0  # the margin in force when it was reserved
    idle_s: float = 0.0  # how long the first limit's schedule stood unused before this slot (no caller wanted one)
    member: str = ""  # the slot's name in the schedule (to give it up or move it up)


@dataclass(frozen=True)
class Pace:
    """A limit as it is now: its ceiling, the share of it in force, the rate slots are spaced at, any pause."""

    ceiling_per_s: float
    factor: float
    rate_per_s: float  # what the pacing sends at: ceiling x factor / (1 s + margin)
    paused_s: float  # left of the pause a 429 started


def _now_arg(clock: Clock | None) -> str:
    return "" if clock is None else repr(clock() * 1000)


def _keys(limits: Sequence[Limit]) -> list[str]:
    return [k for lim in limits for k in (SLOTS.format(lim.name), STATE.format(lim.name))] + [MARGIN, SEQ]


def _bounds_ms(limits: Sequence[Limit]) -> tuple[float, float]:
    """The margin's floor (the configured margin) and ceiling, in ms."""
    floor = min(lim.margin_s for lim in limits)
    return floor * 1000, max(floor, MARGIN_CEILING_S) * 1000


def reserve(r: redis.Redis, limits: Sequence[Limit], max_wait_s: float, *, clock: Clock | None = None) -> Slot:
    """Reserve the earliest slot free on every one of `limits` (an apply takes one on both): how long to wait for
    it. Nothing is reserved when that is over `max_wait_s` (`reserved` False), so a caller never holds a slot it
    will not use."""
    return _reserve(r, limits, max_wait_s, "", 0.0, clock)


def move_up(r: redis.Redis, limits: Sequence[Limit], slot: Slot, lead_s: float, *, clock: Clock | None = None) -> Slot:
    """Move a slot this caller holds to the earliest time, `lead_s` from now at the soonest, as far from every other
    slot as a new reservation would be, if that is earlier: a slot another caller gave up (`release`) is used, not
    lost, as the callers after it move up one by one. Every other slot stays where it is, so the schedule stays as
    safe as reserving. Returns the slot as it now is (`reserved` True: moved)."""
    moved = _reserve(r, limits, 0.0, slot.member, lead_s, clock)
    if not moved.reserved:
        return slot
    return moved


def release(r: redis.Redis, limits: Sequence[Limit], slot: Slot) -> None:
    """Give up a slot that will not be used (its caller woke too late to send on it): the callers waiting after it
    can move up into it (`move_up`)."""
    with r.pipeline(transaction=False) as pipe:
        for lim in limits:
            pipe.zrem(SLOTS.format(lim.name), slot.member)
        pipe.execute()


def _reserve(
    r: redis.Redis, limits: Sequence[Limit], max_wait_s: float, member: str, lead_s: float, clock: Clock | None
) -> Slot:
    args = [
        _now_arg(clock),
        max_wait_s * 1000,
        _RECOVERY_PER_MS,
        FLOOR,
        *_bounds_ms(limits),
        *(lim.per_s for lim in limits),
        member,
        lead_s * 1000,
    ]
    reserved, at, now, margin, idle, name = _RESERVE(r, _keys(limits), args)
    return Slot(
        bool(reserved),
        (int(at) - int(now)) / 1000,
        int(at),
        int(now),
        int(margin) / 1000,
        int(idle) / 1000,
        name.decode() if isinstance(name, bytes) else str(name),
    )


def lagged(r: redis.Redis, lags_s: Sequence[float], limits: Sequence[Limit]) -> None:
    """Feed how late this process woke for its slots (each try, a slot given up too) to the margin every machine
    paces with."""
    _, ceiling = _bounds_ms(limits)
    for lag in lags_s:
        _LAGGED(r, [MARGIN], [min(max(lag * 1000, 0.0), ceiling)])


def margin_s(r: redis.Redis, limit: Limit) -> float:
    """The margin in force now (as the reservation script computes it)."""
    lo, hi = _bounds_ms((limit,))
    lag, dev = r.hmget(MARGIN, "lag", "dev")
    if lag is None or dev is None:
        return lo / 1000
    return min(hi, lo + float(lag) + 4 * float(dev)) / 1000


def paused_past(r: redis.Redis, limits: Sequence[Limit], slot: Slot) -> float:
    """Seconds a pause that began after `slot` was reserved (another worker's 429) runs past the slot: 0 when the
    slot is still good. Checked just before a slot, so no worker sends into a pause Lever asked for."""
    untils = [r.hget(STATE.format(lim.name), "until") for lim in limits]
    return max([0.0] + [(float(u) - slot.at_ms) / 1000 for u in untils if u is not None])


def throttled(
    r: redis.Redis,
    limits: Sequence[Limit],
    pause_s: float,
    reserved_ms: int | None = None,
    *,
    clock: Clock | None = None,
) -> None:
    """Lever answered 429: lower the shared rate of `limits` (x DECREASE) and pause them for `pause_s`, for
    every worker. `reserved_ms` is when the refused call's slot was reserved (None: unknown, lower anyway)."""
    args = [
        _now_arg(clock),
        _RECOVERY_PER_MS,
        FLOOR,
        DECREASE,
        pause_s * 1000,
        "" if reserved_ms is None else reserved_ms,
    ]
    _THROTTLED(r, [STATE.format(lim.name) for lim in limits], args)


def pace(r: redis.Redis, limit: Limit, *, clock: Clock | None = None) -> Pace:
    """The limit as every worker sees it now (the dashboard and /metrics show it)."""
    if clock is None:
        seconds, micros = r.time()
        now_ms = seconds * 1000 + micros / 1000
    else:
        now_ms = clock() * 1000
    factor_, since, until = r.hmget(STATE.format(limit.name), "factor", "since", "until")
    factor = 1.0
    if factor_ is not None:
        factor = min(1.0, float(factor_) + _RECOVERY_PER_MS * max(0.0, now_ms - float(since)))
    paused = max(0.0, (float(until) - now_ms) / 1000) if until is not None else 0.0
    return Pace(limit.per_s, factor, factor * limit.per_s / (WINDOW_S + margin_s(r, limit)), paused)


def _given_up(r: redis.Redis, limits: Sequence[Limit], wakes: list[float], idle_s: float, paused: int) -> None:
    """Count what a call's pacing left unused on its first limit (the bench and /metrics explain a drain below the
    ceiling with it): the slots it gave up waking late (all its wakes but the last, the one it sent on), and how late;
    the slots it gave up to a pause; how long the schedule stood idle before its slot (no caller wanted one)."""
    name = limits[0].name
    for lag in wakes[:-1]:
        metrics.observe(r, "jobsite_pacing_given_up_seconds", lag, limit=name)
    if paused:
        metrics.incr(r, "jobsite_pacing_paused_slots_total", paused, limit=name)
    if idle_s > 0:
        metrics.observe(r, "jobsite_pacing_idle_seconds", idle_s, limit=name)


class RateLimitWait(Exception):
    """No slot on Lever's limits within the wait the caller allows: reschedule. Not an answer of Lever's (not a
    LeverRateLimited): nothing was sent, and nothing slows the other workers."""

    def __init__(self, wait_s: float):
        super().__init__(f"no free slot on Lever's limits within the wait allowed (the next in {wait_s:.1f} s)")
        self.wait_s = wait_s


class Unfenced(RuntimeError):
    """A send that needs the exactly-once fence (an apply, a create) was made without one: a bug, never sent."""


class LocalPace:
    """Lever's all-calls limit kept by this process alone, for the catalog's reads while Redis (where the shared
    schedule lives) cannot be reached. The slots are as far apart as the shared ones at the full rate, so the limit
    holds in its strict reading for one web process; while Redis is down no worker calls Lever (they need Redis for
    everything), so the budget is the web's alone. Several web processes reading uncached forms in the same second of
    an outage could together exceed it; that is the price of serving a form without Redis, and a 429 there only
    makes the catalog serve what it has or ask the candidate to come back. `heard` is told of each Redis error (the
    process's memory that Redis is silent)."""

    def __init__(self, spacing_s: float, heard: Callable[[BaseException], None] = lambda e: None):
        self.spacing_s = spacing_s
        self.heard = heard
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


@dataclass
class _Fence:
    """What a fenced send runs around its slot (delivery.sender.Fence): `before_send(slot epoch)` just before the
    slot (the in-flight mark, in the transaction that checks the lease), `after_wait()` once the slot is reached."""

    before_send: Callable[[float], None]
    after_wait: Callable[[], None]


@dataclass(frozen=True)
class Taken:
    """One request's slot, handed back with Lever's answer: which limits it was paced on, when it was reserved (a
    429 for a call paced before the last decrease lowers nothing) and how late this process sent it."""

    limits: tuple[Limit, ...]
    at_ms: int | None  # the slot (None: paced by this process alone, Redis unreachable)
    reserved_ms: int | None
    lag_s: float | None  # how late the request left its slot
    wakes_s: tuple[float, ...] = ()  # how late this process woke for each slot it tried (a slot given up too)
    idle_s: float = 0.0  # how long the limit's schedule stood unused before this call's slot (no caller wanted one)
    paused: int = 0  # slots given up because another worker's 429 paused every worker past them


class Pacer:
    """The transport policy mounted on the Lever client (as requests mounts an adapter on a Session): every request
    takes a slot on the limits its endpoint counts against (lever.client.LIMITS), each page of a list too, and
    Lever's every answer goes through `answered` (a 429 slows and pauses every worker, whoever read what). The caller
    says only how long it may wait (`within`). `connect` gives the Redis the shared schedule lives on; `local`, if
    given, paces on this process's own schedule while Redis cannot be reached (the catalog's reads), else a Redis
    error is raised.

    A send that must be exactly once runs inside `fenced(...)`: its hooks run around its slot, and such an endpoint
    refuses to go out without them (`Unfenced`)."""

    def __init__(
        self, connect: Callable[[], redis.Redis], limits: Limits, max_wait_s: float, *, local: LocalPace | None = None
    ):
        self.connect = connect
        self.limits = limits
        self.max_wait_s = max_wait_s
        self.local = local
        self._fence: _Fence | None = None

    def within(self, max_wait_s: float) -> Pacer:
        """The same pacing for a caller that waits at most `max_wait_s` for a slot (one delivery, one follow-up)."""
        return Pacer(self.connect, self.limits, max_wait_s, local=self.local)

    @contextmanager
    def fenced(self, before_send: Callable[[float], None], after_wait: Callable[[], None]) -> Iterator[None]:
        """Run the next request's slot with the fence's hooks (see `_Fence`)."""
        self._fence = _Fence(before_send, after_wait)
        try:
            yield
        finally:
            self._fence = None

    def take(self, names: tuple[str, ...], *, fenced: bool = False) -> Taken:
        """Wait for a slot on the limits `names` ("apply", "lever"). A `fenced` request runs the armed fence (raises
        Unfenced without one). Raises RateLimitWait if the slot is too far, LockError from the fence."""
        fence, self._fence = self._fence, None
        if fenced and fence is None:
            raise Unfenced("an exactly-once send must go through delivery.sender.Fence.send")
        limits = self.limits.named(names)
        try:
            r = self.connect()
            slot, wakes, idle_s, paused = self._wait(r, limits, fence)
        except redis.RedisError as e:
            if self.local is None or fenced:
                raise
            self.local.heard(e)
            log.warning("reading Lever on this process's own pace: Redis unreachable (%s)", type(e).__name__)
            wait_s = self.local.wait_s(self.max_wait_s)
            if wait_s is None:
                raise RateLimitWait(self.max_wait_s) from None
            time.sleep(wait_s)
            return Taken(limits, None, None, None)
        if fence is not None:
            fence.after_wait()
        return Taken(limits, slot.at_ms, slot.reserved_ms, wakes[-1], tuple(wakes), idle_s, paused)

    def _wait(
        self, r: redis.Redis, limits: tuple[Limit, ...], fence: _Fence | None
    ) -> tuple[Slot, list[float], float, int]:
        """Wait for a slot on `limits` and leave as close to it as this process can; the fence's `before_send` runs
        just before it (it may write to Redis: that happens before the slot, not between the slot and the send),
        with the slot's time on the Redis server's clock, the one every machine shares."""
        wakes: list[float] = []
        idle_s, paused = 0.0, 0
        while True:
            slot = reserve(r, limits, self.max_wait_s)
            if not slot.reserved:
                _given_up(r, limits, [*wakes, 0.0], idle_s, paused)
                raise RateLimitWait(slot.wait_s)
            idle_s += slot.idle_s
            due = time.monotonic() + slot.wait_s
            if slot.wait_s > PAUSE_CHECK_AHEAD_S:
                slot, due = self._closer(r, limits, slot, due)
                time.sleep(max(0.0, due - PAUSE_CHECK_AHEAD_S - time.monotonic()))
                if paused_past(r, limits, slot):
                    paused += 1
                    release(r, limits, slot)
                    continue  # another worker got a 429 meanwhile: this slot falls in the pause; take a later one
            if fence is not None:
                try:
                    fence.before_send(slot.at_ms / 1000)
                except BaseException:
                    with suppress(redis.RedisError):
                        release(r, limits, slot)  # nothing is sent on it: the callers after it move up
                    raise
            time.sleep(max(0.0, due - time.monotonic()))
            lag = time.monotonic() - due
            wakes.append(lag)
            if 0 < slot.margin_s / 2 < lag:
                # This process woke too late (descheduled): sent now, the call could reach Lever within a window of
                # the slots after it. Give the slot up and take the next free one, every time: the nemesis's
                # 30-minute run (seed 1336120065) saw a second late wake send, and three applies reach Lever
                # within one second. A process late for LATE_SLOTS slots in a row is too loaded to leave on time:
                # the call waits its turn again (RateLimitWait; the sender withdraws its in-flight mark).
                release(r, limits, slot)  # the callers waiting after it move up into it: the slot is not lost
                if len(wakes) < LATE_SLOTS:
                    continue
                _given_up(r, limits, [*wakes, 0.0], idle_s, paused)
                raise RateLimitWait(LATE_RETRY_S)
            return slot, wakes, idle_s, paused

    @staticmethod
    def _closer(r: redis.Redis, limits: tuple[Limit, ...], slot: Slot, due: float) -> tuple[Slot, float]:
        """Sleep towards the slot (until PAUSE_CHECK_AHEAD_S before it), every MOVE_UP_EVERY_S moving it up into any
        earlier slot a caller gave up (`move_up`): the slot and when it is due (monotonic)."""
        while due - time.monotonic() > PAUSE_CHECK_AHEAD_S + MOVE_UP_EVERY_S:
            time.sleep(MOVE_UP_EVERY_S)
            moved = move_up(r, limits, slot, PAUSE_CHECK_AHEAD_S)
            if moved is not slot:
                slot, due = moved, time.monotonic() + moved.wait_s
        return slot, due

    def answered(self, taken: Taken, error: BaseException | None) -> None:
        """Lever's answer to a request paced here (`error` None: a success). A 429 slows every worker down and
        pauses them on the limits it was paced on (Retry-After, or a whole window without one); how late the
        request left its slot is recorded (the lag the margin absorbs). Written after the answer, so it delays no
        request; a Redis error here is logged, never raised over Lever's answer."""
        try:
            r = self.connect()
            if isinstance(error, LeverRateLimited):
                throttled(r, taken.limits, error.pause_s, taken.reserved_ms)
                log.warning("Lever answered 429: every worker slows down and pauses %.1f s", error.pause_s)
            if taken.lag_s is not None:
                metrics.observe(r, "jobsite_pacing_lag_seconds", taken.lag_s, limit=taken.limits[0].name)
                _given_up(r, taken.limits, list(taken.wakes_s), taken.idle_s, taken.paused)
                lagged(r, taken.wakes_s, taken.limits)
        except redis.RedisError as e:
            if self.local is not None:
                self.local.heard(e)
            log.warning("Lever's answer could not be told to Redis (%s)", type(e).__name__)

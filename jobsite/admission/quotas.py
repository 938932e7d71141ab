"""Hourly quotas shared by every process through Redis: how much one subject (a visitor's address, an integrator
key) may do per clock hour, counted in several units at once (applications and their bytes), and the real wait
when a quota is spent.

One mechanism for every per-subject limit (intake per address, integrator keys, failed sign-ins per address):
the `limits` library (as warehouse uses it) checks one limit per call, so two limits on one request (a count and
its bytes) would be a check then a hit, racing other processes; here every unit is checked and counted in one Lua
script, all or nothing. Windows are clock hours: the wait is the time to the next one. This module owns `quota:*`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

import redis

from ..keyspace.admission_keys import QUOTA
from ..redisdb.lua import Lua

WINDOW_S = 3600

# KEYS: one counter per unit; ARGV[1]: their time to live; then per unit its amount and its limit. Counts nothing
# and returns the 1-based index of the first unit that would go past its limit, else counts all and returns 0.
_TAKE = Lua("""
for i, key in ipairs(KEYS) do
  if tonumber(redis.call('GET', key) or '0') + tonumber(ARGV[2 * i]) > tonumber(ARGV[2 * i + 1]) then return i end
end
for i, key in ipairs(KEYS) do
  redis.call('INCRBY', key, ARGV[2 * i])
  redis.call('EXPIRE', key, ARGV[1])
end
return 0
""")


class Exceeded(Exception):
    """The subject's quota is spent in `unit` for this hour: try again in `retry_after_s` seconds."""

    def __init__(self, unit: str, retry_after_s: int):
        super().__init__(f"{unit}: retry in {retry_after_s} s")
        self.unit, self.retry_after_s = unit, retry_after_s


@dataclass(frozen=True)
class Quota:
    """What one subject may do per clock hour: `name` (the quota's family in Redis) and the most per unit."""

    name: str
    limits: Mapping[str, int]


def _keys(quota: Quota, subject: str, units: list[str], now: float) -> list[str]:
    window = int(now // WINDOW_S)
    return [QUOTA.format(quota.name, subject, unit, window) for unit in units]


def take(r: redis.Redis, quota: Quota, subject: str, amounts: Mapping[str, int], now: float | None = None) -> None:
    """Count `amounts` (by unit) against the subject's quota for this hour, all or nothing.

    Raises:
        Exceeded: one unit would go past its limit (the first, in `amounts`' order); nothing was counted.
    """
    now = time.time() if now is None else now
    units = list(amounts)
    args: list[int] = [WINDOW_S + 60]
    for unit in units:
        args += [int(amounts[unit]), int(quota.limits[unit])]
    over = int(_TAKE(r, _keys(quota, subject, units, now), args))
    if over:
        raise Exceeded(units[over - 1], retry_after_s(now))


def give_back(r: redis.Redis, quota: Quota, subject: str, amounts: Mapping[str, int], now: float | None = None) -> None:
    """Take back what `take` counted (a sign-in that turned out right is no failure)."""
    now = time.time() if now is None else now
    units = list(amounts)
    with r.pipeline() as pipe:
        for key, unit in zip(_keys(quota, subject, units, now), units, strict=True):
            pipe.decrby(key, int(amounts[unit]))
        pipe.execute()


def retry_after_s(now: float) -> int:
    """Seconds until the next window, at least 1."""
    return max(1, int(WINDOW_S - now % WINDOW_S + 0.999))

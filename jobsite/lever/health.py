"""Lever's health as this site last saw it: every Lever call is counted and its answer remembered in Redis, so any
process (the console, /readyz) can tell recruiters and operators what Lever is doing."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import redis

from .. import metrics
from ..keyspace.lever_keys import LAST

Observer = Callable[[str, "int | str", float], None]


def observer(r: redis.Redis) -> Observer:
    """A callback for `LeverClient` that counts every Lever call and remembers Lever's last answer."""

    def observe(endpoint: str, status: int | str, seconds: float) -> None:
        try:
            pipe = r.pipeline(transaction=False)
            metrics.lever_request(pipe, endpoint, status, seconds)
            pipe.hset(LAST, mapping={"status": status, "endpoint": endpoint, "at": time.time()})
            pipe.execute()
        except redis.RedisError:
            pass

    return observe


def last_seen(r: redis.Redis) -> dict[str, Any]:
    """Lever's last answer as this site saw it: {"status", "endpoint", "at"} or {} before any call."""
    raw: dict[str, Any] = {k.decode(): v.decode() for k, v in r.hgetall(LAST).items()}
    if raw:
        raw["at"] = float(raw["at"])
    return raw

"""Counters shared by every process, kept in Redis, and their Prometheus text rendering.

Counters live in Redis (not in process memory) so that `/metrics` on any web process reports the whole site.
Recording never breaks the caller: when Redis is down a sample is dropped.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import redis

if TYPE_CHECKING:
    from .services import Services

LATENCY_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
COUNTERS = "metrics:counters"  # hash: "name|label=value,..." -> count
LATENCY = "metrics:lever_latency"  # hash: "endpoint|le" -> count, "endpoint|sum" -> seconds
LEVER_LAST = "lever:last"  # hash: status, endpoint, at (epoch s) of the last Lever answer


def _field(name: str, **labels: Any) -> str:
    return name + "|" + ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def incr(r: redis.Redis, name: str, amount: int = 1, **labels: Any) -> None:
    """Add to a counter; a Redis outage drops the sample."""
    try:
        r.hincrby(COUNTERS, _field(name, **labels), amount)
    except redis.RedisError:
        pass


def counter_values(r: redis.Redis, name: str, label: str) -> dict[str, int]:
    """A counter's values by one label, e.g. {"hit": 10, "miss": 1}."""
    out: dict[str, int] = {}
    for key, value in r.hgetall(COUNTERS).items():
        n, _, labels = key.decode().partition("|")
        if n == name:
            pairs = dict(p.partition("=")[::2] for p in labels.split(",") if p)
            out[pairs.get(label, "")] = out.get(pairs.get(label, ""), 0) + int(value)
    return out


def lever_observer(services: Services) -> Callable[[str, int | str, float], None]:
    """A callback for `LeverClient` that counts every Lever call and remembers Lever's last answer."""

    def observe(endpoint: str, status: int | str, seconds: float) -> None:
        try:
            pipe = services.redis.pipeline(transaction=False)
            pipe.hincrby(COUNTERS, _field("jobsite_lever_requests_total", endpoint=endpoint, status=status), 1)
            for le in LATENCY_BUCKETS_S:
                if seconds <= le:
                    pipe.hincrby(LATENCY, f"{endpoint}|{le}", 1)
            pipe.hincrby(LATENCY, f"{endpoint}|+Inf", 1)
            pipe.hincrbyfloat(LATENCY, f"{endpoint}|sum", seconds)
            pipe.hset(LEVER_LAST, mapping={"status": status, "endpoint": endpoint, "at": time.time()})
            pipe.execute()
        except redis.RedisError:
            pass

    return observe


def lever_last_seen(r: redis.Redis) -> dict[str, Any]:
    """Lever's last answer as this site saw it: {"status", "endpoint", "at"} or {} before any call."""
    raw = {k.decode(): v.decode() for k, v in r.hgetall(LEVER_LAST).items()}
    if raw:
        raw["at"] = float(raw["at"])
    return raw


def render(r: redis.Redis, gauges: dict[str, float | dict[str, float]]) -> str:
    """Prometheus text format: the shared counters, the Lever latency histogram, and `gauges` measured now."""
    lines: list[str] = []
    counters: dict[str, list[tuple[str, int]]] = {}
    for key, value in r.hgetall(COUNTERS).items():
        name, _, labels = key.decode().partition("|")
        counters.setdefault(name, []).append((labels, int(value)))
    for name in sorted(counters):
        lines.append(f"# TYPE {name} counter")
        for labels, value in sorted(counters[name]):
            lines.append(f"{name}{_labels(labels)} {value}")
    hist: dict[str, dict[str, str]] = {}
    for key, value in r.hgetall(LATENCY).items():
        endpoint, _, le = key.decode().rpartition("|")
        hist.setdefault(endpoint, {})[le] = value.decode()
    if hist:
        lines.append("# TYPE jobsite_lever_request_seconds histogram")
    for endpoint in sorted(hist):
        h = hist[endpoint]
        for le in [*(str(b) for b in LATENCY_BUCKETS_S), "+Inf"]:
            lines.append(f'jobsite_lever_request_seconds_bucket{{endpoint="{endpoint}",le="{le}"}} {h.get(le, 0)}')
        lines.append(f'jobsite_lever_request_seconds_sum{{endpoint="{endpoint}"}} {h.get("sum", 0)}')
        lines.append(f'jobsite_lever_request_seconds_count{{endpoint="{endpoint}"}} {h.get("+Inf", 0)}')
    for name, value in gauges.items():
        lines.append(f"# TYPE {name} gauge")
        if isinstance(value, dict):
            for label, v in sorted(value.items()):
                lines.append(f'{name}{{{label}}} {v}')
        else:
            lines.append(f"{name} {value}")
    return "\n".join(lines) + "\n"


def _labels(raw: str) -> str:
    if not raw:
        return ""
    pairs = [p.partition("=") for p in raw.split(",")]
    return "{" + ",".join(f'{k}="{v}"' for k, _, v in pairs) + "}"

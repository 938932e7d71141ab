"""Counters shared by every process, kept in Redis, and their Prometheus exposition through prometheus-client.

Counters live in Redis (not in process memory) so that `/metrics` on any web process reports the whole site.
Recording never breaks the caller: when Redis is down a sample is dropped, except the few counters that say Redis
was down, which are kept per process. prometheus-client does the exposition format (escaping included).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import redis
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from .keyspace.metrics_keys import COUNTERS, HISTOGRAMS

BUCKETS_S = {
    "jobsite_lever_request_seconds": (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    "jobsite_pacing_lag_seconds": (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1),
}
HELP = {
    "jobsite_applications_received_total": "Applications accepted, by posting.",
    "jobsite_applications_refused_total": "Applications refused by reason (redis_memory: Redis above its high-water "
    "mark).",
    "jobsite_deliveries_total": "Delivery attempts by outcome.",
    "jobsite_lever_requests_total": "Requests to Lever by endpoint and status.",
    "jobsite_cache_requests_total": "Postings cache reads by result (hit, miss, stale).",
    "jobsite_cache_refreshes_total": "Postings fetched from Lever into the cache.",
    "jobsite_cache_refresh_errors_total": "Failed fetches from Lever into the cache.",
    "jobsite_lever_request_seconds": "Latency of requests to Lever.",
    "jobsite_pacing_lag_seconds": "From a reserved rate-limit slot to the call leaving for Lever (the jitter the "
    "pacing margin absorbs), by limit.",
    "jobsite_ip_limit_skipped_total": "Submissions let through without the per-address limit: Redis was down "
    "(per process).",
}
_local: dict[str, int] = {}  # counters of this process alone: they record that Redis could not be reached


def _field(name: str, labels: Mapping[str, Any]) -> str:
    return json.dumps([name, {k: str(v) for k, v in sorted(labels.items())}], separators=(",", ":"))


def _parse(raw: bytes) -> tuple[str, dict[str, str]]:
    name, labels = json.loads(raw)
    return name, labels


def incr(r: redis.Redis, name: str, amount: int = 1, **labels: Any) -> None:
    """Add to a shared counter; a Redis outage drops the sample."""
    with contextlib.suppress(redis.RedisError):
        r.hincrby(COUNTERS, _field(name, labels), amount)


def count_in_process(name: str) -> None:
    """Count an event that happened because Redis was unreachable (so it cannot be counted there)."""
    _local[name] = _local.get(name, 0) + 1


def lever_request(pipe: redis.client.Pipeline, endpoint: str, status: int | str, seconds: float) -> None:
    """Queue the writes that count one Lever call and its latency on `pipe`."""
    pipe.hincrby(COUNTERS, _field("jobsite_lever_requests_total", {"endpoint": endpoint, "status": status}), 1)
    _observe(pipe, "jobsite_lever_request_seconds", seconds, {"endpoint": endpoint})


def observe(r: redis.Redis, name: str, seconds: float, **labels: Any) -> None:
    """Add a sample to a shared histogram (its buckets in BUCKETS_S); a Redis outage drops it."""
    try:
        with r.pipeline(transaction=False) as pipe:
            _observe(pipe, name, seconds, labels)
            pipe.execute()
    except redis.RedisError:
        pass


def _observe(pipe: redis.client.Pipeline, name: str, seconds: float, labels: Mapping[str, Any]) -> None:
    base = {k: str(v) for k, v in sorted(labels.items())}
    for le in [*(str(b) for b in BUCKETS_S[name] if seconds <= b), "+Inf"]:
        pipe.hincrby(HISTOGRAMS, json.dumps([name, base, le], separators=(",", ":")), 1)
    pipe.hincrbyfloat(HISTOGRAMS, json.dumps([name, base, "sum"], separators=(",", ":")), seconds)


def counter_values(r: redis.Redis, name: str, label: str) -> dict[str, int]:
    """A counter's values by one label, e.g. {"hit": 10, "miss": 1}."""
    out: dict[str, int] = {}
    for key, value in r.hgetall(COUNTERS).items():
        n, labels = _parse(key)
        if n == name:
            out[labels.get(label, "")] = out.get(labels.get(label, ""), 0) + int(value)
    return out


@dataclass(frozen=True)
class Gauge:
    """A value measured now: one number, or one per value of `label` (`by`)."""

    name: str
    help: str
    value: float = 0.0
    label: str = ""
    by: Mapping[str, float] = field(default_factory=dict)


class SiteCollector(Collector):
    """Reads the shared counters and histograms from Redis at each scrape, plus gauges."""

    def __init__(self, r: redis.Redis, gauges: Iterable[Gauge] = ()):
        self.r = r
        self.gauges = list(gauges)

    def collect(self) -> Iterator[Metric]:
        samples: dict[str, list[tuple[dict[str, str], int]]] = {}
        for key, value in self.r.hgetall(COUNTERS).items():
            name, labels = _parse(key)
            samples.setdefault(name, []).append((labels, int(value)))
        for name, count in _local.items():
            samples.setdefault(name, []).append(({}, count))
        for name in sorted(samples):
            names = sorted({k for labels, _ in samples[name] for k in labels})
            family = CounterMetricFamily(name, HELP.get(name, name), labels=names)
            for labels, value in sorted(samples[name], key=lambda s: sorted(s[0].items())):
                family.add_metric([labels.get(k, "") for k in names], value)
            yield family
        yield from self._histograms()
        for g in self.gauges:
            if g.label:
                gauge = GaugeMetricFamily(g.name, g.help, labels=[g.label])
                for value, v in sorted(g.by.items()):
                    gauge.add_metric([value], v)
                yield gauge
            else:
                yield GaugeMetricFamily(g.name, g.help, value=g.value)

    def _histograms(self) -> Iterator[Metric]:
        found: dict[str, dict[tuple[tuple[str, str], ...], dict[str, float]]] = {}
        for key, value in self.r.hgetall(HISTOGRAMS).items():
            name, labels, le = json.loads(key)
            found.setdefault(name, {}).setdefault(tuple(sorted(labels.items())), {})[le] = float(value)
        for name in sorted(found):
            names = sorted({k for labels in found[name] for k, _ in labels})
            family = HistogramMetricFamily(name, HELP.get(name, name), labels=names)
            for labels, h in sorted(found[name].items()):
                buckets = [(le, h.get(le, 0.0)) for le in [*(str(b) for b in BUCKETS_S[name]), "+Inf"]]
                family.add_metric([dict(labels).get(k, "") for k in names], buckets, sum_value=h.get("sum", 0.0))
            yield family


def render(r: redis.Redis, gauges: Iterable[Gauge] = ()) -> bytes:
    """The Prometheus text exposition of the shared counters, the histograms and `gauges`."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SiteCollector(r, gauges))
    return generate_latest(registry)

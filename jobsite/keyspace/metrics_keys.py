"""The keys of `metrics.py`: counters and histograms for Prometheus."""

from __future__ import annotations

from .. import keyspace

COUNTERS = keyspace.name("metrics:counters")  # hash: JSON [name, {label: value}] -> count
# hash: JSON [name, {label: value}, le | "sum"] -> count (cumulative) or seconds
HISTOGRAMS = keyspace.name("metrics:histograms")

"""The one backoff rule of the delivery side: capped exponential delays with jitter, for probes and retries."""

from __future__ import annotations

import random


def jitter(delay_s: float) -> float:
    """Spread retries so workers and sites do not stampede; never longer than `delay_s`. Tests pin it."""
    return delay_s * random.uniform(0.85, 1.0)  # noqa: S311 (spreading retries needs no secrecy)


def delay(attempt: int, base_s: float, cap_s: float) -> float:
    """The wait before try `attempt + 1`: `base_s` doubled per earlier attempt, at most `cap_s`, jittered."""
    return jitter(min(cap_s, base_s * 2 ** min(attempt, 30)))

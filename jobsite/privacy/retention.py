"""The one home of retention: what the schedule removes (every JOBSITE_RETENTION_DAYS, hourly in the workers and by
`jobsite purge`) and what Lever's deletion of a person removes at once (candidateDeleted), for every flow that keeps
personal data: applications (`applications.py`) and sourced people (`sourced.py`). A new flow that keeps a person's
data adds its two functions here. Its inputs are explicit: the Redis client and the retention period, no locator."""

from __future__ import annotations

from dataclasses import dataclass

import redis

from . import applications, sourced


@dataclass(frozen=True)
class Purged:
    applications: int
    people: int


def purge(r: redis.Redis, days: int, now: float | None = None) -> Purged:
    """Remove the personal data past the retention period, in every flow; returns how many of each were purged."""
    return Purged(applications.purge(r, days, now), sourced.purge(r, days, now))


def forget(r: redis.Redis, contact_id: str) -> int:
    """Lever deleted the person: remove what every flow holds about them now, whatever its age. Returns how many
    applications and sourced people they had."""
    return applications.forget_person(r, contact_id) + sourced.forget(r, contact_id)

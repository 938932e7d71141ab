"""The one home of retention: what the schedule removes (every JOBSITE_RETENTION_DAYS, hourly in the workers and by
`jobsite purge`) and what Lever's deletion of a person removes at once (candidateDeleted), for every flow that keeps
personal data: applications (`applications.py`) and sourced people (`sourced.py`). A new flow that keeps a person's
data adds its two functions here. Applications' removal takes only the Redis client and the period; a sourced
person's is a wish their lease holder writes in (sourcing/opportunities), so it takes the services."""

from __future__ import annotations

from dataclasses import dataclass

from ..services import Services
from . import applications, sourced


@dataclass(frozen=True)
class Purged:
    applications: int
    people: int


def purge(svc: Services, now: float | None = None) -> Purged:
    """Remove the personal data past the retention period, in every flow; returns how many of each were purged."""
    return Purged(applications.purge(svc.redis, svc.settings.retention_days, now), sourced.purge(svc, now))


def forget(svc: Services, contact_id: str) -> int:
    """Lever deleted the person: remove what every flow holds about them now, whatever its age. Returns how many
    applications and sourced people they had."""
    return applications.forget_person(svc.redis, contact_id) + sourced.forget(svc, contact_id)

"""The one home of retention: what the schedule removes (every JOBSITE_RETENTION_DAYS, hourly in the workers and by
`jobsite purge`) and what Lever's deletion of a person removes at once (candidateDeleted), for every flow that keeps
personal data: applications (`applications.py`), sourced people (`sourced.py`) and job alert subscriptions
(`alerts/subscriptions.py`: unconfirmed ones removed after 7 days, ended ones after the retention period; an alert
names no Lever person). A new flow that keeps a person's data adds its two functions here. Applications' removal
takes only the Redis client and the period; a sourced person's is a wish their lease holder writes in
(sourcing/opportunities), so it takes delivery's inputs (`Delivery`)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from ..alerts import subscriptions
from ..delivery.sender import Delivery
from . import applications, sourced


@dataclass(frozen=True)
class Purged:
    applications: int
    people: int
    alert_subscriptions: int = 0


def purge(delivery: Delivery, now: float | None = None) -> Purged:
    """Remove the personal data past the retention period, in every flow; returns how many of each were purged."""
    days = delivery.settings.retention_days
    return Purged(applications.purge(delivery.redis, days, now), sourced.purge(delivery, now), _alerts(delivery, now))


def _alerts(delivery: Delivery, now: float | None) -> int:
    """Job alert subscriptions never confirmed (EXPIRE_DAYS) or ended longer ago than the retention period."""
    at = time.time() if now is None else now
    r = delivery.redis
    return subscriptions.expire(r, at) + subscriptions.purge(r, at, delivery.settings.retention_days * 86400)


def forget(delivery: Delivery, contact_id: str) -> int:
    """Lever deleted the person: remove what every flow holds about them now, whatever its age. Returns how many
    applications and sourced people they had."""
    return applications.forget_person(delivery.redis, contact_id) + sourced.forget(delivery, contact_id)

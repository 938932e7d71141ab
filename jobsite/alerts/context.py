"""What the job alerts use, and nothing else: built once per process by the composition root (`Services.alerting`)
and passed to the matching, the digests and the confirmation email, instead of the `Services` locator."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from redis import Redis

from ..postings.catalog import Catalog
from ..settings import Settings


@dataclass(frozen=True)
class Alerting:
    redis: Redis
    catalog: Callable[[], Catalog]  # the postings as this process reads them, built only by a job that needs them
    settings: Settings  # the emails' templates and links read many (notify/messages.py), the matching its gather time

"""What admission uses, and nothing else: built once per process by the composition root (`Services.admission`) and
passed to every check, instead of the `Services` locator."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from redis import Redis

from ..settings import Settings


@dataclass(frozen=True)
class Admission:
    quick: Callable[[], Redis]  # a request's quick client; raises at once while Redis is known to be silent
    heard: Callable[[BaseException], None]  # tells the process's memory of Redis's silence of an error
    redis: Callable[[], Redis]  # the process's client, for counts that never hold a request up
    secret_key: str  # keys the HMAC of a visitor's address
    submissions_per_ip_per_hour: int
    submission_bytes_per_ip_per_hour: int
    api_client_per_hour: int
    signups_per_hour: int
    high_water: float  # fractions of Redis's maxmemory (memory.check_room)
    low_water: float

    @classmethod
    def of(
        cls,
        settings: Settings,
        *,
        quick: Callable[[], Redis],
        heard: Callable[[BaseException], None],
        redis: Callable[[], Redis],
    ) -> Admission:
        return cls(
            quick=quick,
            heard=heard,
            redis=redis,
            secret_key=settings.secret_key,
            submissions_per_ip_per_hour=settings.submissions_per_ip_per_hour,
            submission_bytes_per_ip_per_hour=settings.submission_mb_per_ip_per_hour * 2**20,
            api_client_per_hour=settings.api_client_per_hour,
            signups_per_hour=settings.signups_per_hour,
            high_water=settings.redis_high_water,
            low_water=settings.redis_low_water,
        )

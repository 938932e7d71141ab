"""The outside systems one process talks to, built lazily from `Settings` and shared by web and workers."""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import cached_property

import redis
from flask import Flask, current_app

from .lever import health
from .lever.client import LeverClient, LeverRateLimited
from .lever.pacing import Limits, reserve
from .postings.catalog import Catalog
from .redis_server import client
from .settings import Settings

READ_MAX_WAIT_S = 10.0  # a page waits this long at most for Lever's limit on a cold cache


class Services:
    """The composition root of one process: builds Redis, the Lever client and the postings catalog from `Settings`,
    each from its own inputs. Nothing connects until first used."""

    def __init__(self, settings: Settings):
        self.settings = settings

    @cached_property
    def redis(self) -> redis.Redis:
        return client(self.settings)

    @cached_property
    def lever(self) -> LeverClient:
        return self._lever_client()

    @cached_property
    def paced_lever(self) -> LeverClient:
        """A client whose every request first waits for a slot on the shared all-calls limit: for the catalog, whose
        cold-cache fetches come from many web processes at once (delivery paces its own calls)."""
        return self._lever_client(pace=self._wait_for_a_read_slot)

    def _lever_client(self, pace: Callable[[], None] | None = None) -> LeverClient:
        s = self.settings
        return LeverClient(base_url=s.lever_base_url, api_key=s.api_key,
                           timeout=(s.lever_connect_timeout_s, s.lever_read_timeout_s),
                           observe=health.observer(self.redis), pace=pace)

    def _wait_for_a_read_slot(self) -> None:
        slot = reserve(self.redis, (self.limits.lever,), READ_MAX_WAIT_S)
        if not slot.reserved:  # the catalog then serves what it has, or asks the candidate to come back
            raise LeverRateLimited(f"no free slot on Lever's limit within {READ_MAX_WAIT_S:.0f} s",
                                   retry_after=slot.wait_s)
        time.sleep(slot.wait_s)

    @cached_property
    def limits(self) -> Limits:
        """Lever's limits as the workers pace their calls to it."""
        s = self.settings
        return Limits.of(s.apply_rate_per_s, s.lever_rate_per_s, s.pacing_margin_s)

    @cached_property
    def catalog(self) -> Catalog:
        s = self.settings
        return Catalog(s.path("cache", "catalog"), lever=self.paced_lever, r=self.redis, fresh_s=s.catalog_fresh_s,
                       keep_s=s.catalog_keep_s)


def init_app(app: Flask, settings: Settings) -> None:
    app.extensions["jobsite"] = Services(settings)


def get_services() -> Services:
    """The current app's services (inside a request or app context)."""
    return current_app.extensions["jobsite"]

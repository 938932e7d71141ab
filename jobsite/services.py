"""The outside systems one process talks to, built lazily from `Settings` and shared by web and workers."""

from __future__ import annotations

from functools import cached_property

import redis
from flask import Flask, current_app

from .lever import LeverClient
from .redis_server import connect, redis_url
from .settings import Settings


class Services:
    """Handles to Redis, Lever and the postings catalog. Nothing connects until first used."""

    def __init__(self, settings: Settings):
        self.settings = settings

    @cached_property
    def redis(self) -> redis.Redis:
        return connect(redis_url(self.settings))

    @cached_property
    def lever(self) -> LeverClient:
        from . import metrics

        s = self.settings
        return LeverClient(
            base_url=s.lever_base_url,
            api_key=s.api_key,
            timeout=(s.lever_connect_timeout_s, s.lever_read_timeout_s),
            observe=metrics.lever_observer(self),
        )

    @cached_property
    def catalog(self):  # type: ignore[no-untyped-def]
        from .catalog import Catalog

        return Catalog(self)


def init_app(app: Flask, settings: Settings) -> None:
    app.extensions["jobsite"] = Services(settings)


def get_services() -> Services:
    """The current app's services (inside a request or app context)."""
    return current_app.extensions["jobsite"]

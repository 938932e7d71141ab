"""Endpoints for operators and load balancers: liveness, readiness."""

from __future__ import annotations

from typing import Any

import redis
from flask import Blueprint

from ..metrics import lever_last_seen
from ..services import get_services

bp = Blueprint("ops", __name__)


@bp.get("/healthz")
def healthz() -> Any:
    """The process is alive and serving."""
    return {"status": "ok"}


@bp.get("/readyz")
def readyz() -> Any:
    """Ready when Redis answers; Lever's state is reported as last seen, since the site works without Lever."""
    services = get_services()
    try:
        services.redis.ping()
        lever = lever_last_seen(services.redis)
    except redis.RedisError as e:
        return {"status": "unavailable", "redis": f"unreachable: {type(e).__name__}"}, 503
    return {"status": "ok", "redis": "ok", "lever": lever or {"status": "not contacted yet"}}

"""Endpoints for operators and load balancers: liveness, readiness."""

from __future__ import annotations

from typing import Any

import redis
from flask import Blueprint, Response

from .. import applications, gate, intake, metrics
from ..metrics import lever_last_seen
from ..services import get_services

bp = Blueprint("ops", __name__)


@bp.get("/healthz")
def healthz() -> Any:
    """The process is alive and serving."""
    return {"status": "ok"}


@bp.get("/metrics")
def prometheus() -> Any:
    """Prometheus text format: queue depth by state, deliveries, Lever calls and latency, cache, spool."""
    services = get_services()
    r = services.redis
    services.catalog.flush_stats(every_s=0, background=False)
    status = gate.status(r)
    gauges: dict[str, float | dict[str, float]] = {
        "jobsite_applications": {f'state="{k}"': v for k, v in applications.counts(r).items()},
        "jobsite_spool_files": len(intake.spooled(services)),
        "jobsite_delivery_gate_open": 1 if status.is_open else 0,
        "jobsite_delivery_paused": 1 if status.paused else 0,
    }
    return Response(metrics.render(r, gauges), mimetype="text/plain; version=0.0.4")


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

"""Endpoints for operators and load balancers: liveness, readiness."""

from __future__ import annotations

import hmac
from typing import Any

import redis
from flask import Blueprint, Response, request
from prometheus_client import CONTENT_TYPE_LATEST

from .. import metrics
from ..delivery import gate
from ..lever import health, pacing
from ..notify import messages
from ..records import spool, store
from ..redisdb import redis_server
from ..services import get_services
from .errors import error_response

bp = Blueprint("ops", __name__)


@bp.before_request
def require_token() -> Any:
    """With JOBSITE_METRICS_TOKEN set, /metrics and /readyz want it as a bearer token (they tell what the queue
    and Lever are doing); /healthz stays open for load balancers."""
    token = get_services().settings.metrics_token
    if token is None or request.endpoint == "ops.healthz":
        return None
    sent = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    if not hmac.compare_digest(sent.encode(), token.encode()):
        return error_response(
            401,
            "Send the metrics token: Authorization: Bearer <JOBSITE_METRICS_TOKEN>.",
            {"WWW-Authenticate": 'Bearer realm="jobsite operations"'},
        )
    return None


@bp.get("/healthz")
def healthz() -> Any:
    """The process is alive and serving."""
    return {"status": "ok"}


@bp.get("/metrics")
def prometheus() -> Any:
    """Prometheus text format: queue depth by state, deliveries, Lever calls and latency, cache, spool, Redis memory,
    pacing."""
    services = get_services()
    r = services.redis
    services.catalog.flush_stats(every_s=0, background=False)
    status = gate.status(r)
    memory = redis_server.memory(r)
    limits = (services.limits.apply, services.limits.lever)
    paces = {limit.name: pacing.pace(r, limit) for limit in limits}
    off = messages.switch(services.settings).reason
    gauges = [
        metrics.Gauge("jobsite_applications", "Applications by state.", label="state", by=store.counts(r)),
        metrics.Gauge(
            "jobsite_confirmation_email_off",
            "1 while candidates get no confirmation email, by why: "
            "not_configured (no JOBSITE_SMTP_URL) or unfixed_python (no fix for CVE-2024-6923).",
            label="reason",
            by={reason: int(reason == off) for reason in messages.REASONS},
        ),
        metrics.Gauge(
            "jobsite_spool_files",
            "Applications spooled on this machine while Redis was down.",
            len(spool.entries(services.settings.data_dir)),
        ),
        metrics.Gauge("jobsite_delivery_gate_open", "1 while applications go to Lever.", int(status.is_open)),
        metrics.Gauge("jobsite_delivery_paused", "1 while a recruiter has paused delivery.", int(status.paused)),
        metrics.Gauge(
            "jobsite_redis_memory_used_bytes",
            "Memory Redis uses (applications and their files wait there until Lever has them).",
            memory.used,
        ),
        metrics.Gauge(
            "jobsite_redis_memory_max_bytes",
            "Redis's maxmemory (0: no limit); new applications are refused above JOBSITE_REDIS_HIGH_WATER of it.",
            memory.limit,
        ),
        metrics.Gauge(
            "jobsite_pacing_rate_per_s",
            "Calls to Lever per second the workers pace at now (lowered by a "
            "429, climbing back), by limit: apply, or every call.",
            label="limit",
            by={name: p.rate_per_s for name, p in paces.items()},
        ),
        metrics.Gauge(
            "jobsite_pacing_ceiling_per_s",
            "Lever's limit as configured: at most this many in any second.",
            label="limit",
            by={name: p.ceiling_per_s for name, p in paces.items()},
        ),
        metrics.Gauge(
            "jobsite_pacing_paused_seconds",
            "Left of the pause every worker keeps after a 429.",
            label="limit",
            by={name: p.paused_s for name, p in paces.items()},
        ),
    ]
    return Response(metrics.render(r, gauges), mimetype=CONTENT_TYPE_LATEST)


@bp.get("/readyz")
def readyz() -> Any:
    """Ready when Redis answers; Lever's state is reported as last seen, since the site works without Lever, and so
    is whether confirmation emails go out (applications are taken either way)."""
    services = get_services()
    switch = messages.switch(services.settings)
    said = {"status": "on" if switch.on else "off", "reason": switch.reason or None, "says": switch.says}
    try:
        services.redis.ping()
        lever = health.last_seen(services.redis)
    except redis.RedisError as e:
        return {"status": "unavailable", "redis": f"unreachable: {type(e).__name__}", "mail": said}, 503
    return {"status": "ok", "redis": "ok", "lever": lever or {"status": "not contacted yet"}, "mail": said}

"""Lever's webhooks: `POST /webhooks/lever` (candidateStageChange, candidateArchiveChange, candidateHired,
candidateDeleted, applicationCreated). Without LEVER_WEBHOOK_TOKEN the endpoint does not exist (404). The signature,
hex(HMAC-SHA256(token + triggeredAt)) with the signing token, is compared in constant time; stale and replayed
deliveries are refused; the change is applied at once and idempotently, so Lever gets its 2xx fast.

The body is capped before it is read (Lever's events are a few KB): a 24 MiB body used to be parsed, growing the
worker by 650 MB and blocking its event loop, before its signature was even looked at."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from flask import Blueprint, abort, request

from ..followup import report, tagging
from ..privacy import retention
from ..services import get_services

bp = Blueprint("webhooks", __name__)

MAX_BODY = 64 * 1024  # bytes; Lever's envelopes are a few KB


def _signed(envelope: dict[str, Any], key: str) -> bool:
    token, triggered, signature = envelope.get("token"), envelope.get("triggeredAt"), envelope.get("signature")
    if not isinstance(token, str) or not isinstance(signature, str) or not isinstance(triggered, int):
        return False
    expected = hmac.new(key.encode(), f"{token}{triggered}".encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature)


@bp.post("/webhooks/lever")
def lever() -> Any:
    svc = get_services()
    key = svc.settings.lever_webhook_token
    if not key:
        abort(404)
    if (request.content_length or 0) > MAX_BODY:
        return {"error": "too large"}, 413
    raw = request.stream.read(MAX_BODY + 1)  # a body without Content-Length is cut off here too
    if len(raw) > MAX_BODY:
        return {"error": "too large"}, 413
    try:
        envelope = json.loads(raw)
    except (ValueError, RecursionError):  # not JSON, or nested deeper than the parser goes
        return {"error": "not a JSON envelope"}, 400
    if not isinstance(envelope, dict) or not _signed(envelope, key):
        return {"error": "bad signature"}, 403
    try:
        applied = report.apply_webhook(
            svc.delivery,
            envelope,
            svc.settings.webhook_max_age_s,
            forget=lambda contact: retention.forget(svc.delivery, contact),
        )
    except report.WebhookRefused as e:
        return {"error": str(e)}, 409
    except tagging.LeverNotReachable:  # a deletion Lever cannot confirm now: Lever sends it again later
        return {"error": "Lever cannot confirm this event now"}, 503, {"Retry-After": "60"}
    return {"ok": True, "applied": applied}

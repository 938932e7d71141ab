"""Lever's webhooks: `POST /webhooks/lever` (candidateStageChange, candidateArchiveChange, candidateHired,
candidateDeleted, applicationCreated). Without LEVER_WEBHOOK_TOKEN the endpoint does not exist (404). The signature,
hex(HMAC-SHA256(token + triggeredAt)) with the signing token, is compared in constant time; stale and replayed
deliveries are refused; the change is applied at once and idempotently, so Lever gets its 2xx fast."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from flask import Blueprint, abort, request

from ..followup import report
from ..services import get_services
from ..sourcing import retention as sourced_retention

bp = Blueprint("webhooks", __name__)


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
    envelope = request.get_json(silent=True)
    if not isinstance(envelope, dict) or not _signed(envelope, key):
        return {"error": "bad signature"}, 403
    if envelope.get("event") not in report.EVENTS:
        return {"ok": True, "applied": False}  # an event we do not follow (or Lever's test POST)
    try:
        applied = report.apply_webhook(svc, envelope, svc.settings.webhook_max_age_s)
    except report.WebhookRefused as e:
        return {"error": str(e)}, 409
    contact = (envelope.get("data") or {}).get("contactId") if isinstance(envelope.get("data"), dict) else None
    if envelope["event"] == "candidateDeleted" and isinstance(contact, str) and contact:
        applied = bool(sourced_retention.forget(svc, contact)) or applied  # sourced people too (talent, events)
    return {"ok": True, "applied": applied}

"""The audit log: every recruiter action, with who and when, kept in Redis."""

from __future__ import annotations

import json
import time
from typing import Any

import redis

AUDIT = "audit"
KEEP = 10_000


def record(r: redis.Redis, who: str, action: str, target: str = "", detail: str = "") -> None:
    entry = {"at": time.time(), "who": who, "action": action, "target": target, "detail": detail[:500]}
    pipe = r.pipeline()
    pipe.lpush(AUDIT, json.dumps(entry))
    pipe.ltrim(AUDIT, 0, KEEP - 1)
    pipe.execute()


def entries(r: redis.Redis, limit: int = 100, target: str | None = None) -> list[dict[str, Any]]:
    """Newest first; only those about `target` if given."""
    items = [json.loads(x) for x in r.lrange(AUDIT, 0, (limit if target is None else KEEP) - 1)]
    if target is not None:
        items = [e for e in items if e["target"] == target][:limit]
    return items

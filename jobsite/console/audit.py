"""The audit log: every recruiter action, with who and when, kept in Redis; and apart from it, every use of an
integrator key.

Two lists, each trimmed to KEEP entries: a script hammering the API with a key (valid or revoked, GETs included)
fills only its own list, so it can never push recruiters' actions out of theirs.
"""

from __future__ import annotations

import json
import time
from typing import Any

import redis

from ..keyspace.console_keys import API_USE, AUDIT

KEEP = 10_000


def record(r: redis.Redis, who: str, action: str, target: str = "", detail: str = "") -> None:
    """A recruiter's (or an operator's) action."""
    _push(r, AUDIT, who, action, target, detail)


def record_api(r: redis.Redis, client: str, action: str, target: str = "", detail: str = "") -> None:
    """A request made with an integrator key (`client` names it), in the list of API use."""
    _push(r, API_USE, f"API client {client}", action, target, detail)


def _push(r: redis.Redis, key: str, who: str, action: str, target: str, detail: str) -> None:
    entry = {"at": time.time(), "who": who, "action": action, "target": target, "detail": detail[:500]}
    pipe = r.pipeline()
    pipe.lpush(key, json.dumps(entry))
    pipe.ltrim(key, 0, KEEP - 1)
    pipe.execute()


def entries(r: redis.Redis, limit: int = 100, target: str | None = None, *, api: bool = False) -> list[dict[str, Any]]:
    """Newest first: recruiters' actions, or the uses of integrator keys with `api`. About `target` (an
    application), both together."""
    if target is None:
        return [json.loads(x) for x in r.lrange(API_USE if api else AUDIT, 0, limit - 1)]
    items = [json.loads(x) for key in (AUDIT, API_USE) for x in r.lrange(key, 0, KEEP - 1)]
    return sorted((e for e in items if e["target"] == target), key=lambda e: -e["at"])[:limit]

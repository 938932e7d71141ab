"""Recruiting events (a meetup, a fair): a name, a date and the postings recruiters capture people for."""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import asdict, dataclass, field
from datetime import date

import redis

from ..keyspace.sourcing_keys import EVENT_RECORD, EVENTS

MAX_NAME_CHARS = 120


class BadEvent(ValueError):
    """The event as asked for cannot be made: the message says which field and why."""


@dataclass
class Event:
    id: str
    name: str
    day: str  # YYYY-MM-DD, or "" when not given
    postings: list[str] = field(default_factory=list)
    created_at: float = 0.0
    created_by: str = ""


def add(r: redis.Redis, name: str, day: str = "", postings: list[str] | None = None, who: str = "") -> Event:
    """Create an event; raises BadEvent for an empty or overlong name or a date that is not YYYY-MM-DD."""
    name = " ".join(name.split())
    if not name or len(name) > MAX_NAME_CHARS or not name.isprintable():
        raise BadEvent(f"name: from 1 to {MAX_NAME_CHARS} printable characters")
    if day:
        try:
            day = date.fromisoformat(day).isoformat()
        except ValueError:
            raise BadEvent("date: YYYY-MM-DD") from None
    event = Event(
        id="e" + secrets.token_hex(6),
        name=name,
        day=day,
        postings=list(dict.fromkeys(postings or [])),
        created_at=time.time(),
        created_by=who,
    )
    with r.pipeline() as pipe:
        pipe.set(EVENT_RECORD.format(event.id), json.dumps(asdict(event)))
        pipe.zadd(EVENTS, {event.id: event.created_at})
        pipe.execute()
    return event


def load(r: redis.Redis, event_id: str) -> Event | None:
    raw = r.get(EVENT_RECORD.format(event_id))
    return Event(**json.loads(raw)) if raw else None


def all_(r: redis.Redis) -> list[Event]:
    """Every event, the newest first."""
    ids = [x.decode() for x in r.zrevrange(EVENTS, 0, -1)]
    return [Event(**json.loads(raw)) for raw in (r.mget([EVENT_RECORD.format(i) for i in ids]) if ids else []) if raw]

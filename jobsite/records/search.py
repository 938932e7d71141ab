"""The console's search index: an application or a sourced person by its short reference, an exact email, or the
words of a name, answered from Redis in a few commands however many records there are (no scan of every record).

This module owns the `search:*` keys. The record owners write an entry in the same transaction that stores or
changes a record (`records/store.add`, `sourcing/people.add`) and forget it when personal data is removed, so the
index never holds what retention took away. Each index is a sorted set of members ("application:<receipt>",
"person:<id>") scored by when the record was made, so the newest come first and an answer is bounded. Key names
hold a hash of a word or an email, never the text: the index lists no personal data to whoever reads key names.
Records stored before the index existed are indexed once, on the first search (`ensure_built`).
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import redis

from ..keyspace.records_keys import BUILDING, BUILT, EMAIL, OF, REF, SCRATCH, WORD

APPLICATION, PERSON = "application", "person"
LIMIT = 50
MAX_WORDS = 8  # of a name, and of a query: a bound on the work one record or one search makes
BUILD_BATCH = 500
BUILD_BUDGET_S = 1.0  # of one search's time spent indexing older records


@dataclass(frozen=True)
class Entry:
    """What the index knows of one record: enough to find it, nothing to show."""

    kind: str
    id: str
    reference: str
    name: str
    email: str
    created_at: float

    @property
    def member(self) -> str:
        return f"{self.kind}:{self.id}"


@dataclass(frozen=True)
class Hit:
    kind: str
    id: str


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def words(text: str) -> list[str]:
    """A name's words as the index keeps them: case folded and without accents ("Müller" finds "muller" too)."""
    plain = "".join(c for c in unicodedata.normalize("NFKD", text.casefold()) if not unicodedata.combining(c))
    return list(dict.fromkeys(w for w in re.split(r"[\W_]+", plain) if w))[:MAX_WORDS]


def _reference(text: str) -> str:
    """A reference as typed: any case, with or without its dash or spaces."""
    return re.sub(r"[\s-]", "", text).upper()


def index(pipe: redis.Redis | redis.client.Pipeline, entry: Entry) -> None:
    """Queue the writes that make `entry` findable (on the owner's transaction)."""
    keys = [REF.format(_reference(entry.reference))]
    if entry.email.strip():
        keys.append(EMAIL.format(_digest(entry.email.strip().casefold())))
    keys += [WORD.format(_digest(w)) for w in words(entry.name)]
    for key in keys:
        pipe.zadd(key, {entry.member: entry.created_at})
    pipe.sadd(OF.format(entry.member), *keys)


def forget_personal(r: redis.Redis, kind: str, id_: str, pipe: redis.client.Pipeline | None = None) -> None:
    """Remove a record from the indexes of its name and email (its personal data is being removed); its reference,
    which is none, still finds it. With `pipe`, the removals are queued on it."""
    member = f"{kind}:{id_}"
    personal = [k for k in (k.decode() for k in r.smembers(OF.format(member))) if not k.startswith(REF.format(""))]
    if not personal:
        return
    out = pipe if pipe is not None else r.pipeline()
    for key in personal:
        out.zrem(key, member)
    out.srem(OF.format(member), *personal)
    if pipe is None:
        out.execute()


def forget(r: redis.Redis, kind: str, id_: str, pipe: redis.client.Pipeline) -> None:
    """Remove a record from every index, its reference's too (the record itself is being removed): queued on `pipe`."""
    member = f"{kind}:{id_}"
    for key in (k.decode() for k in r.smembers(OF.format(member))):
        pipe.zrem(key, member)
    pipe.delete(OF.format(member))


def find(r: redis.Redis, text: str, limit: int = LIMIT) -> list[Hit]:
    """Records matching `text`, newest first: a reference (any case, dash or not), an exact email (with an @), or
    every word of a name."""
    text = text.strip()[:200]
    if not text:
        return []
    by_email = "@" in text
    keys = [EMAIL.format(_digest(text.casefold()))] if by_email else [WORD.format(_digest(w)) for w in words(text)]
    if not keys:
        return []
    found: list[bytes] = []
    ref = _reference(text)
    if len(ref) == 8 and ref.isalnum():
        found += r.zrevrange(REF.format(ref), 0, limit - 1)
    if len(keys) == 1:
        found += r.zrevrange(keys[0], 0, limit - 1)
    else:
        scratch = SCRATCH.format(secrets.token_hex(8))
        with r.pipeline() as pipe:
            pipe.zinterstore(scratch, keys, aggregate="MAX")
            pipe.zrevrange(scratch, 0, limit - 1)
            pipe.delete(scratch)
            found += pipe.execute()[1]
    hits = []
    for member in dict.fromkeys(m.decode() for m in found):
        kind, _, id_ = member.partition(":")
        hits.append(Hit(kind, id_))
    return hits[:limit]


def ensure_built(
    r: redis.Redis,
    kind: str,
    everyone: Callable[[int], Iterable[tuple[int, list[Entry]]]],
    budget_s: float | None = BUILD_BUDGET_S,
) -> bool:
    """Index the records of `kind` stored before the index existed; True once all are. `everyone(start)` yields
    (the next start, a batch) from position `start`. Work stops after `budget_s` (None: until done) and the next
    search goes on from there, so no request waits for a whole store; one process builds at a time, another answers
    from what is indexed so far. Later records are indexed as they are stored."""
    if r.get(BUILT.format(kind)) == b"done":
        return True
    if not r.set(BUILDING.format(kind), "1", nx=True, ex=60):  # a builder that died frees it within a minute
        return False
    try:
        started = time.monotonic()
        for after, batch in everyone(int(r.get(BUILT.format(kind)) or 0)):
            with r.pipeline(transaction=False) as pipe:
                for entry in batch:
                    index(pipe, entry)
                pipe.set(BUILT.format(kind), after)
                pipe.execute()
            if budget_s is not None and time.monotonic() - started > budget_s:
                return False
        r.set(BUILT.format(kind), "done")
        return True
    finally:
        r.delete(BUILDING.format(kind))

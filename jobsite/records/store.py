"""Application records in Redis: one hash per application, a sorted set per state, an index of deliveries, and an
attempt log. This module owns those keys: every read and every state change goes through it.

Receipts are 128-bit random tokens: unguessable, and valid RQ job id characters.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypedDict

import redis

from ..keyspace.records_keys import ALL, ATTEMPTS, CONTACT, DELIVERED_LOG, RECORD, SAME_AS, STATE
from ..redisdb import redis_server
from . import search
from .application import Application, Attribution
from .uploads import StoredFile


class State(StrEnum):
    QUEUED = "queued"  # accepted, a job will deliver it
    WAITING = "waiting"  # waiting for Lever: maintenance, rate limit or a retry after a failure
    DELIVERING = "delivering"  # a worker is sending it now
    DELIVERED = "delivered"
    NEEDS_ATTENTION = "needs_attention"  # Lever refused it, or kept failing past the retry window
    DISCARDED = "discarded"  # a recruiter discarded it

    @property
    def label(self) -> str:
        """The state as the console shows it: the same word, capitalised (one vocabulary everywhere)."""
        return self.value.replace("_", " ").capitalize()

    @property
    def public(self) -> str:
        """The state as the status API gives it: the same word the console, the CLI and the receipt page use (one
        vocabulary; the receipt page puts it in plain words for candidates, web/candidates.py STATUS_WORDS)."""
        return self.value


FINAL = (State.DELIVERED, State.DISCARDED)  # nothing more will happen to it
AT_REST = (*FINAL, State.NEEDS_ATTENTION)  # nothing is sent until a person acts: no delivery runs, none is recovered


def new_receipt() -> str:
    return secrets.token_urlsafe(16)


# Letters and digits a person can read out and type back: no 0/O, 1/I/L, nor U/V.
REFERENCE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTWXYZ"


def reference(receipt: str) -> str:
    """A short reference for people to read out ("7KQM-4XPR"): derived from the receipt by a hash, so every receipt,
    old ones too, has one without storing it, and it gives away nothing of the receipt, which stays the key in links
    (8 characters of 29: about 5 * 10**11 values)."""
    n = int.from_bytes(hashlib.sha256(receipt.encode()).digest()[:8], "big")
    chars = []
    for _ in range(8):
        n, i = divmod(n, len(REFERENCE_ALPHABET))
        chars.append(REFERENCE_ALPHABET[i])
    return "".join(chars[:4]) + "-" + "".join(chars[4:])


def record_key(receipt: str) -> str:
    return RECORD.format(receipt)


def state_key(state: State) -> str:
    return STATE.format(state.value)


LISTS = ("files", "uploads", "tags_requested", "tags_confirmed", "maybe_delivered", "duplicates")  # kept as JSON


class LeverUpload(TypedDict):
    """A file Lever holds for an application, reused by a later attempt until shortly before it expires."""

    uri: str
    expires_at_ms: int


@dataclass
class Record:
    """One application as stored."""

    receipt: str
    posting_id: str
    state: State
    created_at: float
    application: Application | None
    files: list[StoredFile] = field(default_factory=list)
    updated_at: float = 0.0
    attempts: int = 0
    job_id: str = ""
    inflight_at: float = 0.0  # an apply was sent at this time and its outcome is not known yet
    first_sent_at: float = 0.0
    uploads: dict[str, LeverUpload] = field(default_factory=dict)  # form field name -> its upload to Lever
    lever_application_id: str = ""
    opportunity_id: str = ""
    contact_id: str = ""
    last_error: str = ""
    next_attempt_at: float = 0.0
    delivered_at: float = 0.0
    posting_title: str = ""
    purged: bool = False
    source: str = ""  # where the candidate came from (source, lever-source, utm_source, referrer): Lever's source
    medium: str = ""  # utm_medium
    campaign: str = ""  # utm_campaign
    referrer: str = ""  # the referring site's host, on first touch
    client: str = ""  # the integrator (API client) whose backend sent it, if one did
    waited_maintenance: bool = False  # it was parked while Lever was in maintenance
    tags_requested: list[str] = field(default_factory=list)  # the tags asked of Lever for its opportunity
    tags_confirmed: list[str] = field(default_factory=list)  # those Lever has confirmed
    tagging: str = ""  # what became of tagging: "", "waiting", "done", or why it stopped
    language: str = ""  # the language the candidate saw the site in (BCP 47), for what we write to them later
    settle_until: float = 0.0  # an apply got no answer: Lever may still be processing it until then
    resent: bool = False  # sent again after an apply whose outcome was unknown: the follow-up looks for duplicates
    maybe_delivered: list[dict[str, str]] = field(default_factory=list)  # Lever's {opportunity, application} that
    # may be this application (reconcile cannot tell): a person decides in the console
    duplicates: list[str] = field(default_factory=list)  # other opportunities in Lever carrying this application

    def to_redis(self) -> dict[str, str]:
        data = {k: v for k, v in self.__dict__.items() if k not in ("application", "state", *LISTS)}
        out = {k: str(int(v) if isinstance(v, bool) else v) for k, v in data.items()}
        out.update({k: json.dumps(getattr(self, k)) for k in LISTS})
        out.update(
            state=self.state.value, application=json.dumps(self.application.to_dict()) if self.application else ""
        )
        return out

    @classmethod
    def from_redis(cls, raw: dict[bytes, bytes]) -> Record:
        d = {k.decode(): v.decode() for k, v in raw.items()}

        def number(name: str) -> float:
            return float(d.get(name) or 0)

        return cls(
            receipt=d["receipt"],
            posting_id=d["posting_id"],
            state=State(d["state"]),
            application=Application.from_dict(json.loads(d["application"])) if d.get("application") else None,
            files=json.loads(d.get("files") or "[]"),
            uploads=json.loads(d.get("uploads") or "{}"),
            attempts=int(d.get("attempts") or 0),
            purged=d.get("purged") == "1",
            job_id=d.get("job_id", ""),
            lever_application_id=d.get("lever_application_id", ""),
            opportunity_id=d.get("opportunity_id", ""),
            contact_id=d.get("contact_id", ""),
            last_error=d.get("last_error", ""),
            posting_title=d.get("posting_title", ""),
            source=d.get("source", ""),
            client=d.get("client", ""),
            medium=d.get("medium", ""),
            campaign=d.get("campaign", ""),
            referrer=d.get("referrer", ""),
            waited_maintenance=d.get("waited_maintenance") == "1",
            tagging=d.get("tagging", ""),
            language=d.get("language", ""),
            tags_requested=json.loads(d.get("tags_requested") or "[]"),
            tags_confirmed=json.loads(d.get("tags_confirmed") or "[]"),
            maybe_delivered=json.loads(d.get("maybe_delivered") or "[]"),
            duplicates=json.loads(d.get("duplicates") or "[]"),
            resent=d.get("resent") == "1",
            settle_until=number("settle_until"),
            created_at=number("created_at"),
            updated_at=number("updated_at"),
            inflight_at=number("inflight_at"),
            first_sent_at=number("first_sent_at"),
            next_attempt_at=number("next_attempt_at"),
            delivered_at=number("delivered_at"),
        )

    @property
    def attribution(self) -> Attribution:
        return Attribution(source=self.source, medium=self.medium, campaign=self.campaign, referrer=self.referrer)

    def public(self) -> dict[str, Any]:
        """What the status endpoint shows: no personal data."""
        return {
            "receipt": self.receipt,
            "status": self.state.public,
            "posting": self.posting_id,
            "received_at": int(self.created_at),
            "delivered_at": int(self.delivered_at) or None,
        }


def add(pipe: redis.client.Pipeline, record: Record) -> None:
    """Queue the writes that create `record` on a MULTI pipeline."""
    record.updated_at = record.updated_at or record.created_at
    pipe.hset(record_key(record.receipt), mapping=record.to_redis())
    pipe.zadd(ALL, {record.receipt: record.created_at})
    pipe.zadd(state_key(record.state), {record.receipt: record.created_at})
    search.index(pipe, search_entry(record))


def search_entry(record: Record) -> search.Entry:
    """What the console's search finds an application by: its reference, the candidate's name and email."""
    personal = record.application.personal if record.application and not record.purged else {}
    return search.Entry(
        search.APPLICATION,
        record.receipt,
        reference(record.receipt),
        str(personal.get("fullName") or ""),
        str(personal.get("email") or ""),
        record.created_at,
    )


def search_batches(
    r: redis.Redis, start: int = 0, batch: int = search.BUILD_BATCH
) -> Iterator[tuple[int, list[search.Entry]]]:
    """Every application from position `start` (oldest first) for search.ensure_built: (the next position, a
    batch). Once a batch is indexed (the generator resumes), those purged meanwhile are forgotten again: retention
    may run while the index is built."""
    while ids := [x.decode() for x in r.zrange(ALL, start, start + batch - 1)]:
        start += len(ids)
        yield start, [search_entry(rec) for rec in load_many(r, ids)]
        with r.pipeline(transaction=False) as pipe:
            for receipt in ids:
                pipe.hget(record_key(receipt), "purged")
            for receipt, purged in zip(ids, pipe.execute(), strict=True):
                if purged == b"1":
                    search.forget_personal(r, search.APPLICATION, receipt)


def load(r: redis.Redis, receipt: str) -> Record | None:
    raw = r.hgetall(record_key(receipt))
    return Record.from_redis(raw) if raw else None


def add_alias(r: redis.Redis, receipt: str, same_as: str) -> None:
    """Make `receipt`, given to a retry spooled while Redis was down, answer for the application it repeated."""
    r.set(SAME_AS.format(receipt), same_as)


def load_answering(r: redis.Redis, receipt: str) -> Record | None:
    """The record a receipt answers for: its own, or that of the application it was a retry of."""
    record = load(r, receipt)
    if record is None and (same_as := r.get(SAME_AS.format(receipt))):
        record = load(r, same_as.decode())
    return record


def update(
    r: redis.Redis | redis.client.Pipeline, record: Record, state: State | None = None, **changes: Any
) -> Record:
    """Change fields and, if given, the state (moving it between the state sets), in one transaction. The same call
    made again gives the same record, in the one set of its state (sender.commit makes a write again after a
    connection dropped at its EXEC, with the caller's copy already changed by the first try)."""
    for k, v in changes.items():
        setattr(record, k, v)
    record.updated_at = time.time()
    if state is not None:
        record.state = state
    own = not isinstance(r, redis.client.Pipeline)  # (a Pipeline is also a redis.Redis: ask for the narrower type)
    pipe = r.pipeline() if own else r
    fields = record.to_redis()
    mapping = {k: fields[k] for k in (*changes, "updated_at", "state")}
    pipe.hset(record_key(record.receipt), mapping=mapping)
    if state is not None:
        for other in State:  # (every other set, not the one the caller's copy names: it may have moved already)
            if other != state:
                pipe.zrem(state_key(other), record.receipt)
        pipe.zadd(state_key(state), {record.receipt: record.created_at})
        if state == State.DELIVERED:
            pipe.zadd(DELIVERED_LOG, {record.receipt: record.delivered_at or time.time()})
    if changes.get("contact_id"):
        pipe.sadd(CONTACT.format(record.contact_id), record.receipt)
    if own:
        pipe.execute()
    return record


def if_marked(
    r: redis.Redis, receipt: str, inflight_at: float, write: Callable[[redis.client.Pipeline, Record], object]
) -> bool:
    """Commit `write(pipe, record)` on the record as it now is, only if it still carries the in-flight mark
    `inflight_at` of a send and is not final: nothing has moved it on since that send. For what a process knows of
    its own send without the application's lease (never sent; or answered, and the lease ran out meanwhile). True if
    written."""
    key = record_key(receipt)
    with r.pipeline() as pipe:
        try:
            pipe.watch(key)
            raw = pipe.hgetall(key)
            record = Record.from_redis(raw) if raw else None
            if record is None or not inflight_at or record.inflight_at != inflight_at or record.state in FINAL:
                return False
            pipe.multi()
            write(pipe, record)
            pipe.execute()
        except redis.WatchError:
            return False
    return True


def withdraw_send(r: redis.Redis, receipt: str, inflight_at: float) -> bool:
    """Undo the mark of an apply recorded as about to be sent at `inflight_at` that was never sent, unless the record
    has moved on since (another send recorded, delivered). True if undone."""
    return if_marked(
        r, receipt, inflight_at, lambda pipe, record: update(pipe, record, inflight_at=0.0, settle_until=0.0)
    )


def set_job_id(r: redis.Redis, receipt: str, job_id: str) -> None:
    """The job that will deliver this application next (recovery checks it is still alive)."""
    r.hset(record_key(receipt), "job_id", job_id)


def purge_personal_data(r: redis.Redis, receipt: str) -> None:
    """Remove what identifies the candidate; the record's state, times and Lever's ids stay for the counts."""
    pipe = r.pipeline()
    pipe.hset(
        record_key(receipt),
        mapping={"application": "", "files": "[]", "uploads": "{}", "purged": "1", "last_error": ""},
    )
    pipe.delete(ATTEMPTS.format(receipt))
    pipe.zrem(DELIVERED_LOG, receipt)  # the log only feeds the last 24 hours' chart and rates
    search.forget_personal(r, search.APPLICATION, receipt, pipe)
    pipe.execute()


def known(r: redis.Redis, receipt: str) -> bool:
    """Whether an application with this receipt is stored (on a watching pipeline: read at once)."""
    return bool(r.exists(record_key(receipt)))


def watch(pipe: redis.client.Pipeline, *receipts: str) -> None:
    """Watch applications' records: a transaction on `pipe` fails if one of them is written meanwhile."""
    pipe.watch(*(record_key(receipt) for receipt in receipts))


def replicated(r: redis.Redis, receipt: str, replicas: int, timeout_ms: int, *, alias: str | None = None) -> bool:
    """Whether the record stored under `receipt` (and `alias`, a receipt made to answer for it) is on `replicas`
    replicas within `timeout_ms`: redis_server.replicated, the record's key (and the alias's value) read back."""
    vouch: dict[str, bytes | None] = {record_key(receipt): None}
    if alias is not None:
        vouch[SAME_AS.format(alias)] = receipt.encode()
    return redis_server.replicated(r, replicas, timeout_ms, vouch=vouch)


def of_contact(r: redis.Redis, contact_id: str) -> list[str]:
    """The receipts of one person's applications (by Lever's contact id)."""
    return sorted(x.decode() for x in r.smembers(CONTACT.format(contact_id))) if contact_id else []


def forget_contact(r: redis.Redis, contact_id: str) -> list[str]:
    """Lever deleted the person: unlink their applications from Lever's ids (retention removes their personal data;
    the records' states, times and sources stay for the counts); returns the receipts."""
    receipts_ = of_contact(r, contact_id)
    pipe = r.pipeline()
    for receipt in receipts_:
        pipe.hset(
            record_key(receipt),
            mapping={
                "contact_id": "",
                "opportunity_id": "",
                "lever_application_id": "",
                "referrer": "",
                "tags_requested": "[]",
                "tags_confirmed": "[]",
            },
        )
    pipe.delete(CONTACT.format(contact_id))
    pipe.execute()
    return receipts_


def delivered_before(r: redis.Redis, cutoff: float) -> list[str]:
    """Receipts delivered before epoch `cutoff` and not purged yet."""
    return [x.decode() for x in r.zrangebyscore(DELIVERED_LOG, "-inf", cutoff)]


def received_between(r: redis.Redis, start: float, end: float) -> int:
    """How many applications arrived in [start, end)."""
    return int(r.zcount(ALL, start, f"({end}"))


def delivered_between(r: redis.Redis, start: float, end: float) -> int:
    """How many applications were delivered in [start, end) (purged ones leave this index)."""
    return int(r.zcount(DELIVERED_LOG, start, f"({end}"))


def oldest_created_at(r: redis.Redis, states: Iterable[State]) -> float | None:
    """When the oldest application in any of `states` arrived."""
    pipe = r.pipeline(transaction=False)
    for state in states:
        pipe.zrange(state_key(state), 0, 0, withscores=True)
    found = [first[0][1] for first in pipe.execute() if first]
    return min(found) if found else None


def receipts_between(
    r: redis.Redis, state: State | None, since: float | None, until: float | None, limit: int
) -> list[str]:
    """Receipts of applications that arrived in [since, until], in a state or any, newest first."""
    key = state_key(state) if state else ALL
    return [x.decode() for x in r.zrevrangebyscore(key, until or "+inf", since or "-inf", start=0, num=limit)]


def log_attempt(
    r: redis.Redis | redis.client.Pipeline, receipt: str, action: str, status: int | str | None, message: str = ""
) -> None:
    """Append to the application's delivery history (kept for recruiters)."""
    entry = {"at": time.time(), "action": action, "status": status, "message": message[:500]}
    r.rpush(ATTEMPTS.format(receipt), json.dumps(entry))


def attempts(r: redis.Redis, receipt: str) -> list[dict[str, Any]]:
    return [json.loads(x) for x in r.lrange(ATTEMPTS.format(receipt), 0, -1)]


def counts(r: redis.Redis) -> dict[str, int]:
    pipe = r.pipeline(transaction=False)
    for s in State:
        pipe.zcard(state_key(s))
    return {s.value: n for s, n in zip(State, pipe.execute(), strict=True)}


def receipts(r: redis.Redis, state: State, limit: int = 1000) -> list[str]:
    """Receipts in a state, oldest first."""
    return [x.decode() for x in r.zrange(state_key(state), 0, limit - 1)]


def load_many(r: redis.Redis, receipts_: Iterable[str]) -> list[Record]:
    pipe = r.pipeline(transaction=False)
    ids = list(receipts_)
    for receipt in ids:
        pipe.hgetall(record_key(receipt))
    return [Record.from_redis(raw) for raw in pipe.execute() if raw]

"""Sourced people in Redis: talent-community sign-ups and people captured at events, with what Lever has of them.

A person is one JSON value, written by whoever holds their delivery lease (sourcing/opportunities.py) or, before any
delivery, by intake. Each `Send` is one Create an opportunity (one posting, or none), so a capture for three postings
is three sends, each recorded as it goes: a crash or a dropped answer never re-sends one Lever already has.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

import redis

from ..keyspace.sourcing_keys import (
    ALL,
    BY_EMAIL,
    CHANGED,
    CONTACT,
    DELIVERED,
    EMAIL_INDEX_BUILT,
    EMAIL_INDEX_CURSOR,
    EVENT,
    JOB,
    KEY,
    LOG,
    PARKED,
    PENDING,
    TALENT,
    UNCONFIRMED,
    WISH,
)
from ..records import search, store, uploads
from ..records.store import State, reference
from ..records.uploads import StoredFile
from ..redisdb.lua import Lua

EMAIL_INDEX_BUDGET_S = 0.5  # the backfill's time in one upkeep: the rest waits for the next one

# Delete KEYS[1] only if it holds ARGV[1]: an address's index entry goes with its own member, never another's.
_UNINDEX = Lua("if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0")


class Kind(StrEnum):
    TALENT = "talent"  # joined the talent community on the site or through the API
    EVENT = "event"  # captured by a recruiter at an event


# Where a person stands: the records' states, one vocabulary for every flow on the sender (a person is never queued
# nor discarded; the same words in the JSON as before).
Standing = State


@dataclass(slots=True)  # the sender sets marks by name (opportunities._MARKS): a misspelt one raises, never hides
class Send:
    """One Create an opportunity: for `posting` ("" for none), then its note."""

    posting: str = ""
    opportunity_id: str = ""
    contact_id: str = ""
    inflight_at: float = 0.0  # set before the request goes out, cleared by an answer: set means outcome unknown
    first_sent_at: float = 0.0
    note_inflight_at: float = 0.0
    note_done: bool = False
    # Times are the Redis server's (delivery/sender.py). Until `settle_until`, Lever may still be processing an
    # answer-less create (`note_settle_until`: note). `marked`: the create carried our marker (`note_marked`: the
    # note); False only for a send a release before markers left in flight, looked for as that release did.
    settle_until: float = 0.0
    marked: bool = False
    note_settle_until: float = 0.0
    note_marked: bool = False
    # After delivery (the manage page): the company tags Lever has on this opportunity as the site last set them
    # (None: those it was created with), so a change of interests removes and adds only what differs; and the
    # withdrawal told to Lever, its tag and its note (marked as the capture's note is, its own marker).
    tags: list[str] | None = None
    change_inflight_at: float = 0.0  # a tag change or the withdrawal's note is on its way (for the console)
    withdrawn_tagged: bool = False
    withdrawn_noted: bool = False
    withdrawn_note_settle_until: float = 0.0
    withdrawn_note_inflight_at: float = 0.0


@dataclass
class Person:
    id: str
    kind: Kind
    created_at: float
    name: str
    email: str
    phone: str = ""
    links: list[str] = field(default_factory=list)
    teams: list[str] = field(default_factory=list)  # talent community: interests
    locations: list[str] = field(default_factory=list)
    consent: bool = False  # to be kept on file
    source: str = ""  # attribution (talent community)
    campaign: str = ""
    event_id: str = ""
    event_name: str = ""
    recruiter: str = ""  # the console user's email who captured them
    note: str = ""
    rating: int = 0
    client_id: str = ""
    resume: StoredFile | None = None
    sends: list[Send] = field(default_factory=list)
    standing: Standing = Standing.WAITING
    attempts: int = 0
    last_error: str = ""
    updated_at: float = 0.0
    delivered_at: float = 0.0
    purged: bool = False
    unconfirmed: bool = False  # a sign-up whose address is not confirmed yet: nothing goes to Lever until it is
    language: str = ""  # the language the person saw the site in, for the emails they get
    unsubscribed: bool = False  # the person said: no more emails (or left the talent community)
    withdrawn: bool = False  # the person withdrew consent: Lever is told (a tag, a note), then nothing more is sent
    changed_at: float = 0.0  # when the person last changed something on the manage page (its follow-ups' retries)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, raw: bytes | str) -> Person:
        d: dict[str, Any] = json.loads(raw)
        d["kind"], d["standing"] = Kind(d["kind"]), Standing(d["standing"])
        d["sends"] = [Send(**s) for s in d.get("sends") or []]
        return cls(**d)

    @property
    def contact_id(self) -> str:
        return next((s.contact_id for s in self.sends if s.contact_id), "")


def new_id() -> str:
    return "s" + secrets.token_hex(10)


def add(pipe: redis.client.Pipeline, person: Person) -> None:
    """Write a new person and its indexes (inside the caller's transaction); an unconfirmed sign-up waits in
    UNCONFIRMED, not in PENDING, so nothing delivers it (nor takes it up as lost) before it is confirmed."""
    person.updated_at = person.created_at
    pipe.set(KEY.format(person.id), person.to_json())
    pipe.zadd(ALL, {person.id: person.created_at})
    pipe.zadd(UNCONFIRMED if person.unconfirmed else PENDING, {person.id: person.created_at})
    if person.kind == Kind.TALENT:
        pipe.zadd(TALENT, {person.id: person.created_at})
        pipe.set(email_key(person.email), person.id)
    else:
        pipe.zadd(EVENT.format(person.event_id), {person.id: person.created_at})
    search.index(pipe, search_entry(person))


def email_key(email: str) -> str:
    """The talent community's index of one address (a digest: the address itself is in the record only)."""
    return BY_EMAIL.format(hashlib.sha256(email.strip().casefold().encode()).hexdigest()[:32])


def unindex(r: redis.Redis | redis.client.Pipeline, email: str, person_id: str) -> None:
    """Drop the address's index entry if it is this person's: a legacy duplicate (two records of one address from
    before the index) removed never takes the surviving member's entry with it."""
    _UNINDEX(r, [email_key(email)], [person_id])


def search_entry(person: Person) -> search.Entry:
    """What the console's search finds a sourced person by: a reference made from their id as an application's is
    from its receipt, their name and email."""
    return search.Entry(search.PERSON, person.id, reference(person.id), person.name, person.email, person.created_at)


def reindex(r: redis.Redis, pipe: redis.client.Pipeline, person: Person) -> None:
    """Find the person by their name and email as they are now: their old words go, then the new ones come (read
    with `r`, written on `pipe`, in its transaction)."""
    search.forget_personal(r, search.PERSON, person.id, pipe)
    search.index(pipe, search_entry(person))


def search_batches(
    r: redis.Redis, start: int = 0, batch: int = search.BUILD_BATCH
) -> Iterator[tuple[int, list[search.Entry]]]:
    """Everyone from position `start` for search.ensure_built: (the next position, a batch); those purged while
    their batch was indexed are forgotten again once it is (the generator resumes then)."""
    while ids := [x.decode() for x in r.zrange(ALL, start, start + batch - 1)]:
        start += len(ids)
        yield start, [search_entry(p) for p in load_many(r, ids)]
        for p in load_many(r, ids):
            if p.purged:
                search.forget_personal(r, search.PERSON, p.id)


def load(r: redis.Redis, person_id: str) -> Person | None:
    raw = r.get(KEY.format(person_id))
    return Person.from_json(raw) if raw else None


def load_many(r: redis.Redis, ids: list[str]) -> list[Person]:
    if not ids:
        return []
    return [Person.from_json(raw) for raw in r.mget([KEY.format(i) for i in ids]) if raw]


def save(r: redis.Redis | redis.client.Pipeline, person: Person, standing: Standing | None = None) -> None:
    """Write the person back, keeping the indexes in step with the standing. Once a person is confirmed, only
    their lease holder writes them (sourcing/opportunities.py); before, intake and the opt-in do, each in a
    transaction watching the record."""
    if standing is not None:
        person.standing = standing
    person.updated_at = time.time()
    r.set(KEY.format(person.id), person.to_json())
    if person.standing in store.AT_REST:
        r.zrem(PENDING, person.id)
    if person.standing == Standing.DELIVERED:
        r.zadd(DELIVERED, {person.id: person.delivered_at})
    for contact in {s.contact_id for s in person.sends if s.contact_id}:
        r.sadd(CONTACT.format(contact), person.id)


def if_marked(
    r: redis.Redis, person_id: str, place: int, mark: str, at: float, answered: Callable[[Send], None]
) -> bool:
    """Apply `answered` to the person's send at `place` and save them, on the record as it now is, only if that send
    still carries the in-flight mark `at` in its field `mark`: nothing has moved it on since the send Lever answered.
    For what an attempt learnt from Lever after its lease ran out. True if written."""
    key = KEY.format(person_id)
    with r.pipeline() as pipe:
        try:
            pipe.watch(key)
            person = load(pipe, person_id)
            if person is None or not at or place >= len(person.sends) or getattr(person.sends[place], mark) != at:
                return False
            answered(person.sends[place])
            pipe.multi()
            save(pipe, person)
            pipe.execute()
        except redis.WatchError:
            return False
    return True


def log(r: redis.Redis, person_id: str, action: str, status: int | str | None, message: str = "") -> None:
    """What an attempt did, for the console (Lever's message is shown there, never logged)."""
    r.rpush(
        LOG.format(person_id),
        json.dumps({"at": time.time(), "action": action, "status": status, "message": message[:300]}),
    )


def attempts(r: redis.Redis, person_id: str) -> list[dict[str, Any]]:
    return [json.loads(x) for x in r.lrange(LOG.format(person_id), 0, -1)]


def pending(r: redis.Redis) -> list[str]:
    return [x.decode() for x in r.zrange(PENDING, 0, -1)]


def of_event(r: redis.Redis, event_id: str) -> list[Person]:
    return load_many(r, [x.decode() for x in r.zrange(EVENT.format(event_id), 0, -1)])


def count_of_event(r: redis.Redis, event_id: str) -> int:
    """How many people were captured at one event."""
    return int(r.zcard(EVENT.format(event_id)))


def talent_community(r: redis.Redis, limit: int = 500) -> list[Person]:
    return load_many(r, [x.decode() for x in r.zrevrange(TALENT, 0, limit - 1)])


def everyone(r: redis.Redis) -> list[Person]:
    return load_many(r, [x.decode() for x in r.zrange(ALL, 0, -1)])


def set_job(r: redis.Redis | redis.client.Pipeline, person_id: str, job_id: str) -> None:
    r.set(JOB.format(person_id), job_id)


def jobs_of(r: redis.Redis, person_ids: list[str]) -> list[str]:
    """The id of each person's latest delivery job ("" for none), in one round trip."""
    if not person_ids:
        return []
    return [raw.decode() if raw else "" for raw in r.mget([JOB.format(i) for i in person_ids])]


def delivered_before(r: redis.Redis, cutoff: float) -> list[str]:
    return [x.decode() for x in r.zrangebyscore(DELIVERED, 0, cutoff)]


def of_contact(r: redis.Redis, contact_id: str) -> list[str]:
    return [x.decode() for x in r.smembers(CONTACT.format(contact_id))]


def forget_contact(r: redis.Redis, contact_id: str) -> None:
    """Forget which people were one Lever contact (Lever deleted the contact; its people are removed)."""
    r.delete(CONTACT.format(contact_id))


def purge_personal_data(
    r: redis.Redis, person: Person, pipe: redis.client.Pipeline, *, keep_email: bool = False
) -> None:
    """Remove what identifies the person, on `pipe` (the caller's transaction, the lease holder's: take_wish);
    Lever's ids, the kind, event and dates stay for the counts. `keep_email`: the address stays until a create whose
    outcome is unknown has been looked for in Lever by it (sourcing/opportunities.py clears it then)."""
    address = person.email
    person.name = person.phone = person.note = ""
    if not keep_email:
        person.email = ""
    person.links, person.resume, person.purged = [], None, True
    if person.kind == Kind.TALENT and address:
        unindex(pipe, address, person.id)
    pipe.set(KEY.format(person.id), person.to_json())
    pipe.zrem(DELIVERED, person.id)
    pipe.delete(LOG.format(person.id))
    search.forget_personal(r, search.PERSON, person.id, pipe)


def wished(r: redis.Redis, person_id: str) -> dict[str, Any]:
    """What the person asked on the manage page and the lease holder has not written in yet ({}: nothing)."""
    raw = r.get(WISH.format(person_id))
    return json.loads(raw) if raw else {}


def wish(
    r: redis.Redis, person_id: str, also: Callable[[redis.client.Pipeline], None] | None = None, **asked: Any
) -> None:
    """Record what was asked of a person's record by someone who holds no lease (the manage page, retention): merged
    with a wish not written in yet, with the person in CHANGED, and `also` (a job) in the same transaction. The
    lease holder writes it in (sourcing/opportunities.take_wish); upkeep takes up one no job is left to write in."""
    key = WISH.format(person_id)
    with r.pipeline() as pipe:
        while True:
            try:
                pipe.watch(key)
                merged = {**wished(pipe, person_id), **asked}
                pipe.multi()
                pipe.set(key, json.dumps(merged))
                pipe.zadd(CHANGED, {person_id: time.time()}, nx=True)
                if also is not None:
                    also(pipe)
                pipe.execute()
                return
            except redis.WatchError:
                continue


def as_wished(person: Person, wish: dict[str, Any]) -> Person:
    """The person with their wish written in (the wish's keys are Person's fields: teams, locations, unsubscribed,
    withdrawn; and `purge`, retention's, which take_wish carries out); the same object, changed."""
    for name in ("teams", "locations", "unsubscribed", "withdrawn"):
        if name in wish:
            setattr(person, name, wish[name])
    if person.withdrawn:
        person.unsubscribed = True
    return person


def ensure_email_index(r: redis.Redis, batch: int = 200, budget_s: float = EMAIL_INDEX_BUDGET_S) -> int:
    """Index by address the members who joined before the index existed (their re-joining must find them, not make
    a second record): oldest first, the first record of an address keeping it (SET NX, so a sign-up written
    meanwhile keeps its own), for at most `budget_s` a call, going on where the last call stopped (by join time);
    one EXISTS once done. Returns how many it added."""
    if r.exists(EMAIL_INDEX_BUILT):
        return 0
    added, started = 0, time.monotonic()
    after = (r.get(EMAIL_INDEX_CURSOR) or b"-inf").decode()
    while True:
        found = r.zrangebyscore(
            TALENT, f"({after}" if after != "-inf" else after, "+inf", start=0, num=batch, withscores=True
        )
        if not found:
            r.set(EMAIL_INDEX_BUILT, "1")
            r.delete(EMAIL_INDEX_CURSOR)
            return added
        with r.pipeline(transaction=False) as pipe:
            members = sorted(
                (
                    p
                    for p in load_many(r, [x.decode() for x, _ in found])
                    if p.email and not p.purged and not p.withdrawn
                ),
                key=lambda p: (p.unconfirmed, p.created_at),
            )
            for p in members:
                pipe.set(email_key(p.email), p.id, nx=True)
            after = repr(found[-1][1])
            pipe.set(EMAIL_INDEX_CURSOR, after)
            done = pipe.execute()[:-1]
        added += sum(1 for x in done if x)
        # A confirmed member takes the address from an unconfirmed record an earlier batch indexed (or a sign-up
        # since): the owner's record is the one a re-join must find, whatever the batches' order.
        added += sum(1 for p, x in zip(members, done, strict=True) if not x and not p.unconfirmed and _claim(r, p))
        if time.monotonic() - started > budget_s:
            return added


def _claim(r: redis.Redis, member: Person) -> bool:
    """Point the address's index at a confirmed `member` if it names an unconfirmed record (or none); True if so."""
    key = email_key(member.email)
    with r.pipeline() as pipe:
        while True:
            try:
                pipe.watch(key)
                held = pipe.get(key)
                if held:
                    pipe.watch(KEY.format(held.decode()))  # (its confirm meanwhile keeps it the holder)
                holder = load(pipe, held.decode()) if held else None
                if holder is not None and (holder.id == member.id or not holder.unconfirmed):
                    return False
                pipe.multi()
                pipe.set(key, member.id)
                pipe.execute()
                return True
            except redis.WatchError:
                continue


def remove(r: redis.Redis, person: Person, on: redis.client.Pipeline | None = None) -> None:
    """Remove every trace of a person who never reached Lever (an unconfirmed sign-up that expired): the record,
    its indexes, its log; the caller removes its files. On `on` (the caller's transaction) if given."""
    with r.pipeline() as own:
        pipe = on if on is not None else own
        pipe.delete(KEY.format(person.id), LOG.format(person.id), JOB.format(person.id), WISH.format(person.id))
        if person.email:
            unindex(pipe, person.email, person.id)
        for index in (ALL, PENDING, UNCONFIRMED, TALENT, PARKED, CHANGED):
            pipe.zrem(index, person.id)
        search.forget(r, search.PERSON, person.id, pipe)
        if on is None:
            own.execute()


def remove_unconfirmed(r: redis.Redis, person_id: str, *, joined_before: float | None = None) -> bool | None:
    """Remove every trace of a sign-up if it is still unconfirmed (and joined before `joined_before`, if given),
    the record watched while it is read: a confirm meanwhile keeps it. True: removed (its files too); None: gone
    already; False: confirmed (or joined later), left as it is."""
    with r.pipeline() as pipe:
        while True:
            try:
                pipe.watch(KEY.format(person_id))
                person = load(pipe, person_id)
                if person is None:
                    return None
                if not person.unconfirmed or (joined_before is not None and person.created_at > joined_before):
                    return False
                pipe.multi()
                uploads.remove(pipe, person_id)
                remove(r, person, pipe)
                pipe.execute()
                return True
            except redis.WatchError:
                continue


def joined_between(r: redis.Redis, start: float, end: float) -> tuple[int, int]:
    """How many joined the talent community, and how many were captured at events, in [start, end)."""
    with r.pipeline(transaction=False) as pipe:
        pipe.zcount(TALENT, start, f"({end}")
        pipe.zcount(ALL, start, f"({end}")
        talent, everyone = pipe.execute()
    return int(talent), int(everyone) - int(talent)

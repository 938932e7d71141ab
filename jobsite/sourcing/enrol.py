"""Taking in sourced people: a talent-community sign-up, a capture at an event. Validate, then write the person,
their resume's bytes and their delivery job in one Redis transaction, as intake does for applications.

A sign-up's Idempotency-Key and a capture's client_id make a repeat (a retry, a double tap, two tabs) the same
person: the first write wins, a repeat gets the first person back.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import redis
from redis import Redis

from ..admission.idempotency import IDEMPOTENCY_TTL_S, Idempotency, scoped_key
from ..delivery.jobs import enqueue_optin_email, enqueue_sourced
from ..keyspace.sourcing_keys import CLIENT, IDEMPOTENCY
from ..records import filetypes, uploads
from ..records.application import Attribution
from ..records.contacts import EMAIL
from ..records.uploads import UploadedFile
from ..words import N_, Message
from . import people
from .events import Event
from .people import Kind, Person

MAX_TEXT = 200
MAX_NOTE = 2000
MAX_LINKS = 5
LINK = re.compile(r"https?://[^\s\x00-\x1f\x7f-\x9f]+\Z")  # no control character, as the OpenAPI document says
CLIENT_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")  # what the capture page makes: a UUID or random letters
# An integrator's key lives IDEMPOTENCY_TTL_S (admission/idempotency.py); a capture's guard never expires (below).


class Invalid(Exception):
    """Field-level errors: field name -> message."""

    def __init__(self, errors: dict[str, Message]):
        super().__init__(f"{len(errors)} field(s) need attention")
        self.errors = errors


class KeyReused(Exception):
    """The Idempotency-Key came before with a different sign-up."""


@dataclass(frozen=True)
class Accepted:
    person: Person
    new: bool  # False: a repeat of an earlier sign-up or capture, answered with the first


def _text(
    data: Mapping[str, Any], name: str, errors: dict[str, Message], *, required: bool = False, limit: int = MAX_TEXT
) -> str:
    value = data.get(name)
    if value is None or value == "":
        if required:
            errors[name] = N_("This field is required.")
        return ""
    if not isinstance(value, str) or len(value) > limit or not value.replace("\n", " ").isprintable():
        errors[name] = Message(N_("Use at most %(n)s characters of text."), n=limit)
        return ""
    return " ".join(value.split()) if limit <= MAX_TEXT else value.strip()


def _email(data: Mapping[str, Any], errors: dict[str, Message]) -> str:
    email = _text(data, "email", errors, required=True)
    if email and not EMAIL.match(email):
        errors["email"] = N_("Enter an email address like name@example.com.")
    return email


def _choices(value: Any, allowed: Sequence[str], name: str, errors: dict[str, Message]) -> list[str]:
    values = value if isinstance(value, list) else ([] if value in (None, "") else [value])
    if not all(isinstance(v, str) and v in allowed for v in values):
        errors[name] = N_("Choose from the list.")
        return []
    return list(dict.fromkeys(values))


def talent_signup(
    data: Mapping[str, Any],
    resume: UploadedFile | None,
    *,
    teams: Sequence[str],
    locations: Sequence[str],
    max_file_bytes: int,
    attribution: Attribution | None = None,
) -> Person:
    """A talent-community sign-up from a form or the API: `name`, `email`, `phone`, `links` (a list or one per line),
    `teams` and `locations` (from the catalog), `consent` (to be kept on file; required). Raises Invalid."""
    errors: dict[str, Message] = {}
    name = _text(data, "name", errors, required=True)
    email = _email(data, errors)
    phone = _text(data, "phone", errors, limit=40)
    raw_links = data.get("links")
    raw_links = [] if raw_links in (None, "") else raw_links  # {} or 0 are not links
    if isinstance(raw_links, str):
        raw_links = raw_links.split()
    strings = isinstance(raw_links, list) and all(isinstance(x, str) for x in raw_links)
    links = [x.strip() for x in raw_links if x.strip()] if strings else None  # a form's empty field is no link
    if links is None or len(raw_links) > MAX_LINKS or not all(LINK.match(x) and len(x) <= 300 for x in links):
        errors["links"] = Message(N_("Give up to %(n)s web addresses starting with https://."), n=MAX_LINKS)
        links = []
    chosen_teams = _choices(data.get("teams"), teams, "teams", errors)
    chosen_locations = _choices(data.get("locations"), locations, "locations", errors)
    consent = data.get("consent")
    if consent not in (True, "true", "on", "yes", "1"):
        errors["consent"] = N_("We can only keep your details on file with your consent.")
    if resume is not None:
        if len(resume.content) > max_file_bytes:
            errors["resume"] = Message(N_("The file is larger than %(mb)s MB."), mb=max_file_bytes // 2**20)
        elif filetypes.kind_of(resume.filename, resume.content) is None:  # the same check as applications'
            errors["resume"] = N_("Send a PDF, Word or text file.")
    if errors:
        raise Invalid(errors)
    where = attribution or Attribution()
    return Person(
        id=people.new_id(),
        kind=Kind.TALENT,
        created_at=time.time(),
        name=name,
        email=email,
        phone=phone,
        links=links,
        teams=chosen_teams,
        locations=chosen_locations,
        consent=True,
        source=where.source,
        campaign=where.campaign,
        sends=[people.Send()],
    )


def event_capture(data: Mapping[str, Any], event: Event, recruiter: str) -> Person:
    """A capture at `event`: `name`, `email`, `phone`, `postings` (the event's, zero or more), `note`, `rating` (0 to
    5) and the capture page's `client_id`. One send per posting, one without a posting when none is chosen."""
    errors: dict[str, Message] = {}
    name = _text(data, "name", errors, required=True)
    email = _email(data, errors)
    phone = _text(data, "phone", errors, limit=40)
    note = _text(data, "note", errors, limit=MAX_NOTE)
    postings = _choices(data.get("postings"), event.postings, "postings", errors)
    rating = data.get("rating", 0) or 0
    if not isinstance(rating, int) or isinstance(rating, bool) or not 0 <= rating <= 5:
        errors["rating"] = N_("Rate from 0 to 5.")
        rating = 0
    client_id = data.get("client_id")
    if not isinstance(client_id, str) or not re.fullmatch(CLIENT_ID, client_id):
        errors["client_id"] = N_("A capture needs the id the page made for it.")
        client_id = ""
    if errors:
        raise Invalid(errors)
    return Person(
        id=people.new_id(),
        kind=Kind.EVENT,
        created_at=time.time(),
        name=name,
        email=email,
        phone=phone,
        event_id=event.id,
        event_name=event.name,
        recruiter=recruiter,
        note=note,
        rating=rating,
        client_id=client_id,
        sends=[people.Send(posting=p) for p in postings] or [people.Send()],
    )


def idempotency_key(key: str, person: Person, resume: UploadedFile | None, client: str = "") -> Idempotency:
    """A sign-up's Idempotency-Key (scoped to the integrator, admission/idempotency.py) and the fingerprint of what
    came."""
    what = {k: getattr(person, k) for k in ("name", "email", "phone", "links", "teams", "locations")}
    body = hashlib.sha256(json.dumps(what, sort_keys=True).encode())
    if resume is not None:
        body.update(hashlib.sha256(resume.content).digest())
    return Idempotency(scoped_key(IDEMPOTENCY, key, client), body.hexdigest())


def client_guard(person: Person) -> str:
    """The Redis key of a capture's client_id guard: per event and per recruiter, because the id is the page's, and a
    colleague who sent yours first (copied, guessed) was answered with their person while your phone dropped yours."""
    recruiter = hashlib.sha256(person.recruiter.encode()).hexdigest()[:16]
    return CLIENT.format(person.event_id, f"{recruiter}.{person.client_id}")  # "." is in no client_id


@dataclass(frozen=True)
class Enrolment:
    """What taking a sourced person in uses, and nothing else: built once per process by the composition root
    (`Services.enrolment`) instead of passing the `Services` locator."""

    quick: Callable[[], Redis]  # a request's quick client; raises at once while Redis is known to be silent
    heard: Callable[[BaseException], None]  # tells the process's memory of Redis's silence of an error
    optin: bool  # a talent sign-up waits for its confirmation by email (optin.wanted)


def submit(
    enrolment: Enrolment, person: Person, resume: UploadedFile | None = None, idempotency: Idempotency | None = None
) -> Accepted:
    """Persist and queue a sourced person; returns once it is durable. A repeat (same capture client_id, or same
    Idempotency-Key and content) returns the first; a key reused for other content raises KeyReused.

    The person's key is watched too, so a connection lost before EXEC's answer (Redis killed or out of disk, a
    failover, a network cut) ends in WatchError, never in a silent retry of the transaction by redis-py; and a
    WatchError is read back, not taken for a lost race: our person in Redis is written, a guard bound to another is
    the earlier capture, and anything else raises ConnectionError, which the web answers with a 503 (the capture
    page keeps the capture in its outbox and sends it again). A capture's guard has no expiry: the page keeps a
    capture until it is answered, however many days that takes, and the guard (a client id and a person id, no
    personal data) lives as long as the person's record does. Written with a request's quick client (services.py): a
    silent Redis is a 503 within seconds, not after minutes."""
    person.unconfirmed = person.kind == Kind.TALENT and enrolment.optin
    try:
        return _write(enrolment.quick(), person, resume, idempotency)
    except redis.RedisError as e:
        enrolment.heard(e)
        raise


def _write(r: redis.Redis, person: Person, resume: UploadedFile | None, idempotency: Idempotency | None) -> Accepted:
    contents: dict[str, bytes] = {}
    if resume is not None:
        stored, contents = uploads.describe({"resume": resume})
        person.resume = stored[0]
    guard, fingerprint = (idempotency.key, idempotency.fingerprint) if idempotency else ("", "")
    if person.kind == Kind.EVENT:
        guard, fingerprint = client_guard(person), ""
    for attempt in range(3):
        with r.pipeline() as pipe:
            member = None
            try:
                if guard:
                    pipe.watch(guard)
                    earlier = pipe.get(guard)
                    if earlier:
                        pipe.reset()
                        return _earlier(r, earlier.decode(), fingerprint)
                if person.kind == Kind.TALENT:
                    pipe.watch(people.email_key(person.email))
                    known = pipe.get(people.email_key(person.email))
                    if known:  # watched before it is read: a confirm meanwhile is never written over
                        pipe.watch(people.KEY.format(known.decode()))
                        member = people.load(pipe, known.decode())
                    if member is not None and not member.purged:
                        return _again(r, pipe, member, person, contents, guard, fingerprint)
                pipe.watch(people.KEY.format(person.id))
                pipe.multi()
                people.add(pipe, person)
                if person.unconfirmed:  # its opt-in email first; delivery once confirmed (sourcing/optin.py)
                    enqueue_optin_email(r, person.id, pipeline=pipe)
                else:
                    people.set_job(pipe, person.id, enqueue_sourced(r, person.id, pipeline=pipe))
                if contents:
                    uploads.add(pipe, person.id, contents)
                if guard:
                    pipe.set(
                        guard, f"{fingerprint} {person.id}", ex=None if person.kind == Kind.EVENT else IDEMPOTENCY_TTL_S
                    )
                pipe.execute()
            except redis.WatchError:
                if people.load(r, person.id) is not None:  # written; its answer was lost
                    return Accepted(person, True)
                found = r.get(guard) if guard else None
                if found is not None:
                    return _earlier(r, found.decode(), fingerprint)
                if member is not None and attempt < 2:  # the member changed (confirmed, left): read them again
                    continue  # (writing the re-join twice changes nothing)
                raise redis.ConnectionError("the transaction's outcome is unknown: nothing of it in Redis") from None
        return Accepted(person, True)
    raise AssertionError("unreachable")  # (each attempt returns, continues or raises)


def _again(
    r: redis.Redis,
    pipe: redis.client.Pipeline,
    member: Person,
    person: Person,
    contents: dict[str, bytes],
    guard: str,
    fingerprint: str,
) -> Accepted:
    """The address is a member already: one record per address, never a second. A sign-up not confirmed yet takes
    the new answers (nothing of it reached Lever, and both are unproven); a confirmed member's record is left as its
    owner made it, since anyone may sign up any address: they change it through the manage link of their emails.
    Either way the answer is that one record, not new (the web says so without showing it)."""
    if member.unconfirmed:  # (the caller watched the record before reading it)
        for name in ("name", "phone", "links", "teams", "locations", "language", "source", "campaign"):
            setattr(member, name, getattr(person, name))
        if contents:
            member.resume = person.resume
    pipe.multi()
    if member.unconfirmed:
        people.save(pipe, member)
        people.reindex(r, pipe, member)
        if contents:
            uploads.add(pipe, member.id, contents)
    if guard:
        pipe.set(guard, f"{fingerprint} {member.id}", ex=IDEMPOTENCY_TTL_S)
    pipe.execute()
    return Accepted(member, False)


def _earlier(r: redis.Redis, stored: str, fingerprint: str) -> Accepted:
    seen, _, person_id = stored.partition(" ")
    if seen != fingerprint:
        raise KeyReused()
    person = people.load(r, person_id)
    if person is None:
        raise KeyReused()  # purged since: cannot answer with it
    return Accepted(person, False)

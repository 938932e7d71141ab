"""Job alert subscriptions: who asked to hear of which jobs, how often, in which language, and where each stands.

A subscription is an address, the job list's filters (team, department, location, commitment, workplace, search
words; each optional), a rhythm and a language. Anyone may ask for alerts for any address, so a subscription starts
PENDING and nothing but its confirmation email goes out until the email's signed link is followed and its button
pressed (CONFIRMED); unconfirmed for `EXPIRE_DAYS`, it is removed with every trace. It ends STOPPED (the person's
one click) or UNDELIVERABLE (the mail server refused the address for good); the personal data of ended
subscriptions is removed on the retention schedule (`purge`).

Matching is indexed, not a scan: each confirmed subscription is filed under one anchor, the value of its most
selective filter (team, then location, department, the longest search word, commitment, workplace), or under "any"
when it has none. A posting can only match subscriptions anchored on one of its own values (its team, each of its
locations, ...; for search words, every prefix of a word it contains), so `matching` reads those few hashes and
checks each candidate with the job list's own rule (`postings.board.matches`): the cost follows the candidates,
not the number of subscriptions. An anchor's hash holds each member's filters and address digest, so candidates
need no second read.

Its keys (one hash per subscription, a zset per state, an address's subscriptions, the anchors, the search words in
use as anchors) are named in keyspace/alerts_keys.py, with the rest of the job alerts'.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

import redis

from ..delivery.jobs import enqueue_alert_confirmation
from ..keyspace.alerts_keys import ADDR, ALONG, ANY, IX, QWORDS, STATE, SUB
from ..notify import links, sending
from ..postings import board
from ..postings.posting import Posting
from ..settings import Settings
from ..words import N_

EXPIRE_DAYS = 7  # a subscription not confirmed within this is removed
MAX_PENDING_PER_ADDRESS = 3  # a stranger can cause at most this many confirmation emails per address per EXPIRE_DAYS
MAX_PER_ADDRESS = 20  # subscriptions (not ended) one address may hold
LANGUAGES = ("en", "de", "fr")
FILTERS = ("team", "department", "location", "commitment", "workplace", "q")
ANCHOR_ORDER = ("team", "location", "department", "q", "commitment", "workplace")  # most selective first
MAX_VALUE = 200  # characters of one filter's value, as the job list keeps them

CONFIRM_MAIL = "alert-confirm:{}"  # the confirmation email's record in notify/sending (`mail:alert-confirm:<id>`)

_WORD = re.compile(r"\w+")  # the job list's words (postings/board.py): casefolded runs of letters and digits


class State(StrEnum):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    STOPPED = "stopped"
    UNDELIVERABLE = "undeliverable"


ENDED = (State.STOPPED, State.UNDELIVERABLE)


class Frequency(StrEnum):
    INSTANT = "instant"  # as jobs open, gathered over a few minutes
    DAILY = "daily"
    WEEKLY = "weekly"


@dataclass(frozen=True)
class Subscription:
    """One person's alert: times are epoch seconds."""

    id: str
    email: str
    filters: dict[str, str]
    frequency: Frequency
    language: str
    state: State
    created_at: float
    confirmed_at: float | None
    stopped_at: float | None

    @property
    def address(self) -> str:
        """The digest its address is indexed by (`address_key`)."""
        return address_key(self.email)


class Invalid(ValueError):
    """A subscription's data is not usable; `errors` says why per field (`Message`s: English, or said by the web)."""

    def __init__(self, errors: Mapping[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = dict(errors)


def address_key(email: str) -> str:
    """An address as subscriptions are grouped by: one person however they capitalise it."""
    return hashlib.sha256(email.strip().casefold().encode()).hexdigest()[:32]


def clean_filters(given: Mapping[str, Any]) -> dict[str, str]:
    """The filters kept of what was given: the known ones, trimmed as the job list trims them, empty ones dropped."""
    found: dict[str, str] = {}
    for name in FILTERS:
        value = given.get(name)
        if isinstance(value, str):
            value = value.strip()[:MAX_VALUE]
            if value:
                found[name] = value
    return found


def matches(sub_filters: Mapping[str, str], posting: Posting) -> bool:
    """Whether a posting is one the subscription asked for: the job list's rule for the same filters."""
    return board.matches(posting, board.Query(**{k: v for k, v in sub_filters.items() if k in FILTERS}))


def _anchor(filters: Mapping[str, str]) -> str:
    """The one index key a confirmed subscription is filed under."""
    for name in ANCHOR_ORDER:
        value = filters.get(name)
        if not value:
            continue
        if name == "q":
            words = _WORD.findall(value.casefold())
            if not words:
                continue  # no word: the job list ignores such search text
            return IX.format("q", max(words, key=len))
        return IX.format(name, value)
    return ANY


def _posting_keys(r: redis.Redis, posting: Posting, offer: board.Offer) -> list[str]:
    """Every anchor a subscription matching this posting can be filed under."""
    keys = [ANY]
    for name, value in (
        ("team", posting.get("team")),
        ("department", posting.get("department")),
        ("commitment", posting.get("commitment")),
        ("workplace", posting.get("workplaceType")),
    ):
        if value:
            keys.append(IX.format(name, value))
    keys += [IX.format("location", loc) for loc in posting.get("locations") or [] if loc]
    prefixes = sorted(offer.prefixes)
    if prefixes:
        used = r.smismember(QWORDS, prefixes)
        keys += [IX.format("q", p) for p, yes in zip(prefixes, used, strict=True) if yes]
    return keys


def matching(r: redis.Redis, posting: Posting) -> Iterator[str]:
    """The ids of the confirmed subscriptions that ask for this posting, one per address (the lowest id of an
    address's matching subscriptions, so a person with two alerts hears of a job once). Reads only the anchors the
    posting can match."""
    offer = board.Offer(posting)
    keys = _posting_keys(r, posting, offer)
    with r.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.hgetall(key)
        found = pipe.execute()
    chosen: dict[str, str] = {}
    for members in found:
        for raw_id, raw in members.items():
            entry = json.loads(raw)
            if offer.satisfies(entry["f"]):
                sub_id, addr = raw_id.decode(), entry["a"]
                if addr not in chosen or sub_id < chosen[addr]:
                    chosen[addr] = sub_id
    yield from sorted(chosen.values())


def _index(pipe: redis.client.Pipeline, sub: Subscription) -> None:
    key = _anchor(sub.filters)
    pipe.hset(key, sub.id, json.dumps({"f": sub.filters, "a": sub.address}, separators=(",", ":")))
    if key.startswith(IX.format("q", "")):
        pipe.sadd(QWORDS, key.removeprefix(IX.format("q", "")))


def _unindex(pipe: redis.client.Pipeline, sub: Subscription) -> None:
    pipe.hdel(_anchor(sub.filters), sub.id)  # an emptied q anchor's word stays in QWORDS until `purge` tidies it


def _load(r: redis.Redis | redis.client.Pipeline, sub_id: str) -> Subscription | None:
    data = {k.decode(): v.decode() for k, v in r.hgetall(SUB.format(sub_id)).items()}
    if not data.get("email"):
        return None

    def when(name: str) -> float | None:
        return float(data[name]) if data.get(name) else None

    return Subscription(
        id=sub_id,
        email=data["email"],
        filters=json.loads(data.get("filters") or "{}"),
        frequency=Frequency(data["frequency"]),
        language=data.get("language") or "en",
        state=State(data["state"]),
        created_at=float(data["created_at"]),
        confirmed_at=when("confirmed_at"),
        stopped_at=when("stopped_at"),
    )


def _save(pipe: redis.client.Pipeline, sub: Subscription) -> None:
    pipe.hset(
        SUB.format(sub.id),
        mapping={
            "email": sub.email,
            "filters": json.dumps(sub.filters),
            "frequency": str(sub.frequency),
            "language": sub.language,
            "state": str(sub.state),
            "created_at": repr(sub.created_at),
            "confirmed_at": repr(sub.confirmed_at) if sub.confirmed_at is not None else "",
            "stopped_at": repr(sub.stopped_at) if sub.stopped_at is not None else "",
        },
    )


def _move(pipe: redis.client.Pipeline, old: Subscription | None, new: Subscription, at: float) -> None:
    """Queue the writes that take `old` to `new`: the record, its state's zset, its anchor."""
    _save(pipe, new)
    if old is None or old.state != new.state:
        if old is not None:
            pipe.zrem(STATE.format(old.state), new.id)
        pipe.zadd(STATE.format(new.state), {new.id: at})
    if old is not None and old.state == State.CONFIRMED:
        _unindex(pipe, old)
    if new.state == State.CONFIRMED:
        _index(pipe, new)


def get(r: redis.Redis, sub_id: str) -> Subscription | None:
    """The subscription, or None when there is none (never was, expired, purged)."""
    if not sub_id or len(sub_id) > 64:
        return None
    return _load(r, sub_id)


def of_address(r: redis.Redis, email: str) -> list[Subscription]:
    """Every subscription of one address (any state), oldest first."""
    ids = sorted(x.decode() for x in r.smembers(ADDR.format(address_key(email))))
    found = [s for s in (_load(r, i) for i in ids) if s is not None]
    return sorted(found, key=lambda s: s.created_at)


@dataclass(frozen=True)
class Asked:
    """What `subscribe` did: the subscription (new, or the address's same one) and whether it is new, which queued
    its confirmation email (only a new one gets one: a stranger cannot make the site mail an address again and
    again)."""

    subscription: Subscription
    new: bool


def subscribe(
    r: redis.Redis,
    email: str,
    filters: Mapping[str, Any],
    frequency: str,
    language: str,
    now: float | None = None,
    *,
    along: str | None = None,
) -> Asked:
    """Ask for alerts: a new PENDING subscription, its confirmation email queued in the same transaction; or the
    address's subscription with the same filters if it has one not ended (a pending one's rhythm and language
    follow the latest ask). Past
    MAX_PENDING_PER_ADDRESS pending or MAX_PER_ADDRESS held, the latest pending one is returned, unchanged and not
    new: the person already has its email, and the caller answers the same either way (nothing tells a stranger
    what an address holds). With `along` (a talent sign-up's id), no email of its own: `confirm_along` confirms it
    when that sign-up's own opt-in is confirmed, so the person gets one email to confirm both.

    Raises:
        Invalid: the address, rhythm or language is not one we can use.
    """
    email = email.strip()
    validate(email, frequency, language)
    wanted = clean_filters(filters)
    addr_key = ADDR.format(address_key(email))
    with r.pipeline() as pipe:
        while True:
            try:
                pipe.watch(addr_key)
                at = time.time() if now is None else now
                held = [s for s in (_load(pipe, x.decode()) for x in pipe.smembers(addr_key)) if s is not None]
                live = [s for s in held if s.state not in ENDED]
                same = next((s for s in live if s.filters == wanted), None)
                pending = sorted((s for s in live if s.state == State.PENDING), key=lambda s: s.created_at)
                if same is not None:
                    if same.state != State.PENDING:
                        return Asked(same, False)
                    changed = replace(same, frequency=Frequency(frequency), language=language)
                    pipe.multi()
                    _save(pipe, changed)
                    if along:
                        _along(pipe, along, same.id)
                    pipe.execute()
                    return Asked(changed, False)
                if pending and (len(pending) >= MAX_PENDING_PER_ADDRESS or len(live) >= MAX_PER_ADDRESS):
                    return Asked(pending[-1], False)
                if len(live) >= MAX_PER_ADDRESS:
                    return Asked(max(live, key=lambda s: s.created_at), False)
                sub = Subscription(
                    id=secrets.token_hex(12),
                    email=email,
                    filters=wanted,
                    frequency=Frequency(frequency),
                    language=language,
                    state=State.PENDING,
                    created_at=at,
                    confirmed_at=None,
                    stopped_at=None,
                )
                pipe.multi()
                _move(pipe, None, sub, at)
                pipe.sadd(addr_key, sub.id)
                if along:
                    _along(pipe, along, sub.id)
                else:  # in the transaction: never a subscription without its email
                    enqueue_alert_confirmation(r, sub.id, pipeline=pipe)
                pipe.execute()
                return Asked(sub, True)
            except redis.WatchError:
                continue


def _along(pipe: redis.client.Pipeline, along: str, sub_id: str) -> None:
    pipe.sadd(ALONG.format(along), sub_id)
    pipe.expire(ALONG.format(along), (EXPIRE_DAYS + 1) * 86400)


def confirm_along(r: redis.Redis, along: str) -> list[Subscription]:
    """Confirm the subscriptions asked for along with `along` (a talent sign-up whose address was just confirmed).
    Returns them as they stand."""
    found = [confirm(r, raw.decode()) for raw in r.smembers(ALONG.format(along))]
    r.delete(ALONG.format(along))
    return [s for s in found if s is not None]


def validate(email: str, frequency: str, language: str = "en") -> None:
    """Refuse what cannot make a subscription, with a message per field (ours, for the web to say).

    Raises:
        Invalid: per field.
    """
    errors: dict[str, str] = {}
    if not looks_like_address(email.strip()):
        errors["email"] = N_("Please enter a valid email address.")
    if frequency not in tuple(Frequency):
        errors["frequency"] = N_("Please choose how often.")
    if language not in LANGUAGES:
        errors["language"] = N_("The language must be one of en, de, fr.")
    if errors:
        raise Invalid(errors)


def looks_like_address(email: str) -> bool:
    """An address a mail server can take: one @, a dot in the domain, no spaces or header characters, short."""
    return (
        len(email) <= 254
        and email.count("@") == 1
        and not any(c.isspace() or c in '<>,;"()[]\\' for c in email)
        and "." in email.rsplit("@", 1)[1]
        and not email.startswith("@")
        and not email.endswith((".", "@"))
    )


def _update(
    r: redis.Redis, sub_id: str, change: Callable[[Subscription, float], Subscription | None]
) -> Subscription | None:
    """Apply `change` to the stored subscription in one transaction; `change` returns the new one, or None to
    leave it. Returns the subscription as it stands after, or None when there is none."""
    if not sub_id or len(sub_id) > 64:
        return None
    key = SUB.format(sub_id)
    with r.pipeline() as pipe:
        while True:
            try:
                pipe.watch(key)
                old = _load(pipe, sub_id)
                if old is None:
                    return None
                at = float(pipe.time()[0])
                new = change(old, at)
                if new is None or new == old:
                    return old
                pipe.multi()
                _move(pipe, old, new, at)
                pipe.execute()
                return new
            except redis.WatchError:
                continue


def confirm(r: redis.Redis, sub_id: str) -> Subscription | None:
    """The person followed the confirmation link and pressed its button: alerts may go. A second press, or one on
    an ended subscription, changes nothing."""
    return _update(
        r,
        sub_id,
        lambda s, at: replace(s, state=State.CONFIRMED, confirmed_at=at) if s.state == State.PENDING else None,
    )


def change(
    r: redis.Redis, sub_id: str, *, filters: Mapping[str, Any] | None = None, frequency: str | None = None
) -> Subscription | None:
    """New filters or rhythm from the manage page (not for an ended subscription).

    Raises:
        Invalid: the rhythm is not one of Frequency.
    """
    if frequency is not None and frequency not in tuple(Frequency):
        raise Invalid({"frequency": N_("Please choose how often.")})

    def changed(s: Subscription, at: float) -> Subscription | None:
        if s.state in ENDED:
            return None
        return replace(
            s,
            filters=clean_filters(filters) if filters is not None else s.filters,
            frequency=Frequency(frequency) if frequency else s.frequency,
        )

    return _update(r, sub_id, changed)


def stop(r: redis.Redis, sub_id: str) -> Subscription | None:
    """The person stopped this alert (one click, the manage page): nothing more is sent for it."""
    return _update(
        r, sub_id, lambda s, at: replace(s, state=State.STOPPED, stopped_at=at) if s.state not in ENDED else None
    )


def mark_undeliverable(r: redis.Redis, sub_id: str) -> None:
    """The mail server refused the subscription's address for good (a 5xx): no alert goes to that address any
    more, by any of its subscriptions."""
    sub = get(r, sub_id)
    if sub is None:
        return
    for other in of_address(r, sub.email):
        _update(
            r,
            other.id,
            lambda s, at: (
                replace(s, state=State.UNDELIVERABLE, stopped_at=at) if s.state != State.UNDELIVERABLE else None
            ),
        )


def stop_address(r: redis.Redis, email: str) -> int:
    """Stop every alert of one address (its owner left the talent community, or unsubscribed from all email).
    Returns how many were stopped."""
    return sum(1 for sub in of_address(r, email) if sub.state not in ENDED and stop(r, sub.id) is not None)


def _remove(r: redis.Redis, sub_id: str, states: tuple[State, ...]) -> bool:
    """Every trace of a subscription still in one of `states` (checked in the transaction that removes it, so one
    confirmed or stopped meanwhile stays): its record, state, anchor, address entry and confirmation email's record.
    Returns whether it was removed."""
    key = SUB.format(sub_id)
    with r.pipeline() as pipe:
        while True:
            try:
                pipe.watch(key)
                sub = _load(pipe, sub_id)
                if sub is None:
                    pipe.multi()
                    for state in states:
                        pipe.zrem(STATE.format(state), sub_id)
                    pipe.execute()
                    return False
                if sub.state not in states:
                    return False
                pipe.multi()
                pipe.delete(key)
                pipe.zrem(STATE.format(sub.state), sub.id)
                pipe.hdel(_anchor(sub.filters), sub.id)
                pipe.srem(ADDR.format(sub.address), sub.id)
                pipe.execute()
                break
            except redis.WatchError:
                continue
    sending.forget(r, CONFIRM_MAIL.format(sub_id))
    return True


def expire(r: redis.Redis, now: float) -> int:
    """Remove the subscriptions left unconfirmed for EXPIRE_DAYS, with every trace. Returns how many."""
    due = r.zrangebyscore(STATE.format(State.PENDING), 0, now - EXPIRE_DAYS * 86400)
    return sum(_remove(r, raw.decode(), (State.PENDING,)) for raw in due)


def purge(r: redis.Redis, now: float, keep_s: float) -> int:
    """Remove the stopped and undeliverable subscriptions ended more than `keep_s` ago, personal data and all.
    Returns how many; tidies search words no anchor uses any more."""
    removed = 0
    for state in ENDED:
        due = r.zrangebyscore(STATE.format(state), 0, now - keep_s)
        removed += sum(_remove(r, raw.decode(), ENDED) for raw in due)
    words = [w.decode() for w in r.smembers(QWORDS)]
    with r.pipeline(transaction=False) as pipe:
        for w in words:
            pipe.exists(IX.format("q", w))
        gone = [w for w, n in zip(words, pipe.execute(), strict=True) if not n]
    if gone:
        r.srem(QWORDS, *gone)  # a word re-added meanwhile is re-added on its next confirm or change
    return removed


def counts(r: redis.Redis) -> dict[State, int]:
    """How many subscriptions are in each state."""
    with r.pipeline(transaction=False) as pipe:
        for state in State:
            pipe.zcard(STATE.format(state))
        return dict(zip(State, (int(n) for n in pipe.execute()), strict=True))


def listing(r: redis.Redis, state: State, *, offset: int = 0, count: int = 50) -> list[Subscription]:
    """The subscriptions in one state, the latest to get there first (for the console)."""
    ids = r.zrevrange(STATE.format(state), offset, offset + count - 1)
    return [s for s in (_load(r, x.decode()) for x in ids) if s is not None]


def confirm_url(settings: Settings, sub_id: str) -> str:
    """The confirmation email's link: a page with one button whose POST confirms."""
    return links.signed_url(settings, "/alerts/confirm", sub_id, "alert-confirm")


def manage_url(settings: Settings, sub_id: str) -> str:
    """The manage page of one subscription (filters, rhythm, stop): signed, works without an account."""
    return links.signed_url(settings, "/alerts/manage", sub_id, "alert-manage")


def unsubscribe_url(settings: Settings, sub_id: str) -> str:
    """The one-click stop for List-Unsubscribe (RFC 8058: a POST with `List-Unsubscribe=One-Click` stops; a GET
    shows a button). https when JOBSITE_PUBLIC_URL is."""
    return links.signed_url(settings, "/alerts/stop", sub_id, "alert-stop")


def signed(settings: Settings, sub_id: str, given: str, purpose: str) -> bool:
    """Whether `given` signs this subscription's link for `purpose`: "alert-confirm", "alert-manage" or
    "alert-stop"."""
    return links.signed(settings, sub_id, given, purpose)


def frequencies(r: redis.Redis, sub_ids: list[str]) -> dict[str, Frequency]:
    """The rhythm of each of these subscriptions (one round trip; those gone are left out): the fan-out of a new
    posting schedules each person's email by it."""
    with r.pipeline(transaction=False) as pipe:
        for sub_id in sub_ids:
            pipe.hget(SUB.format(sub_id), "frequency")
        found = pipe.execute()
    return {sub_id: Frequency(raw.decode()) for sub_id, raw in zip(sub_ids, found, strict=True) if raw}

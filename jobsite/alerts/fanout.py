"""From a newly published posting to the people who asked for it: the matching job, and each person's queue of
postings not yet emailed.

The catalog announces a posting once (postings/published.py); the workers' upkeep hands it to a matching job on the
alerts queue (served after applications). The job asks the subscriptions' index who wants it and gives it to each,
in chunks: one Lua script per chunk records, for each person, the posting in `alert:sent:<sub>` (the at-most-once
record per subscription and posting: a second run, after a killed worker or a duplicate job, finds it there and
gives nothing twice), adds it to the person's pending postings and puts the person on the due list. Its lease says
it is making progress; a job that stops (a killed worker, Redis restarted under it) is handed to another worker by
the upkeep after `STALL_S`, which goes through everyone again and gives only what was not given.

Emails come later (alerts/digest.py): an instant subscription's postings are gathered for JOBSITE_ALERT_GATHER_S, a
daily or weekly one's wait for its digest.

Keys (owned here): `alert:sent:<sub>` (posting ids given to the subscription), `alert:due:<sub>` (its pending
postings: id -> when given), `alert:due` (subscriptions with pending postings: id -> when to look at them, on the
Redis server's clock), `alert:due:lease:<posting>` (the matching job at work on a posting).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import redis

from ..keyspace.alerts_keys import DUE, LEASE, PENDING, SENT
from ..postings import published
from ..postings.catalog import CatalogUnavailable, PostingNotFound
from ..redisdb.clock import server_now
from ..redisdb.lua import Lua
from . import subscriptions
from .context import Alerting
from .subscriptions import Frequency

log = logging.getLogger(__name__)

STALL_S = 15  # a matching job that has shown no progress this long is taken up by another worker (a second
# run while the first still goes gives nothing twice: only the time is lost)
CHUNK = 500  # subscriptions given a posting per script call
SENT_KEEP_S = 400 * 86400  # the record of what a subscription was given outlives any posting

# KEYS: DUE; ARGV: posting id, now, how long the record is kept (s), then pairs of subscription id and look-at time.
# Returns how many were given the posting. (The per-subscription keys are built here: one call covers a chunk.)
_GIVE = Lua(f"""
local posting, now, keep = ARGV[1], ARGV[2], ARGV[3]
local given = 0
for i = 4, #ARGV, 2 do
  local sub = ARGV[i]
  if redis.call('SADD', '{SENT.format("")}' .. sub, posting) == 1 then
    redis.call('EXPIRE', '{SENT.format("")}' .. sub, keep)
    redis.call('ZADD', '{PENDING.format("")}' .. sub, now, posting)
    redis.call('ZADD', KEYS[1], 'NX', ARGV[i + 1], sub)
    given = given + 1
  end
end
return given
""")
DIGEST_HOUR_UTC = 8  # daily digests go at 08:00 UTC, weekly ones on Mondays then


def next_digest(frequency: Frequency, now: float) -> float:
    """When a daily or weekly digest next goes (epoch s, UTC), after `now`; an instant one: now."""
    if frequency == Frequency.INSTANT:
        return now
    t = datetime.fromtimestamp(now, UTC).replace(hour=DIGEST_HOUR_UTC, minute=0, second=0, microsecond=0)
    if frequency == Frequency.WEEKLY:
        t -= timedelta(days=t.weekday())  # Monday of this week
        step = timedelta(days=7)
    else:
        step = timedelta(days=1)
    while t.timestamp() <= now:
        t += step
    return t.timestamp()


def look_at(frequency: Frequency, now: float, gather_s: float) -> float:
    """When a subscription given a posting now is next looked at: an instant one after the gathering, a daily or
    weekly one at its digest."""
    return now + gather_s if frequency == Frequency.INSTANT else next_digest(frequency, now)


def _chunks(ids: Iterator[str], size: int) -> Iterator[list[str]]:
    chunk: list[str] = []
    for i in ids:
        chunk.append(i)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def give(r: redis.Redis, posting_id: str, when: dict[str, float], *, now: float) -> int:
    """Give a posting to subscriptions (each at most once, ever), each looked at next `when[sub]` unless it is due
    sooner already; returns how many got it now."""
    if not when:
        return 0
    return int(_GIVE(r, [DUE], [posting_id, now, SENT_KEEP_S, *(x for pair in when.items() for x in pair)]))


def fan_out(alerting: Alerting, posting_id: str) -> str:
    """The matching job: give a newly published posting to every confirmed subscription that asked for it."""
    r = alerting.redis
    lease = LEASE.format(posting_id)
    if not r.set(lease, os.getpid(), nx=True, ex=STALL_S):
        return "another worker has it"
    try:
        try:
            try:
                posting = alerting.catalog().posting(posting_id)
            except PostingNotFound:  # this process's copy may predate it: ask Lever before deciding
                posting = alerting.catalog().refresh_postings().find(posting_id)
        except PostingNotFound:
            published.matched(r, posting_id)  # unpublished before anyone heard of it: nobody will
            return "no longer published"
        except CatalogUnavailable:
            return "the catalog is unavailable; the upkeep tries again"
        started = time.monotonic()
        now = server_now(r)
        gather_s = alerting.settings.alert_gather_s
        given = matched = 0
        for chunk in _chunks(subscriptions.matching(r, posting), CHUNK):
            matched += len(chunk)
            rhythm = subscriptions.frequencies(r, chunk)
            given += give(r, posting_id, {sub: look_at(f, now, gather_s) for sub, f in rhythm.items()}, now=now)
            r.set(lease, os.getpid(), ex=STALL_S)
            published.handed(r, posting_id, server_now(r))
        published.matched(r, posting_id)
        log.info(
            "alerts: posting %s matched %d subscription(s), %d given it now, in %.2f s",
            posting_id[:8],
            matched,
            given,
            time.monotonic() - started,
        )
        return f"{given} given"
    finally:
        r.delete(lease)


def stalled(r: redis.Redis) -> list[str]:
    """Announced postings to hand to a matching job: never handed, or their job stopped making progress. Each is
    marked handed now, so the next upkeep does not hand it again before STALL_S."""
    now = server_now(r)
    found = [p for p in published.waiting(r, now - STALL_S) if not r.exists(LEASE.format(p))]
    for posting_id in found:
        published.handed(r, posting_id, now)
    return found


def pending(r: redis.Redis, sub_id: str) -> list[str]:
    """The postings given to a subscription and not yet in an email, oldest first."""
    return [x.decode() for x in r.zrange(PENDING.format(sub_id), 0, -1)]


def forget(r: redis.Redis, sub_id: str) -> None:
    """Remove what is kept for a subscription (it is being purged)."""
    r.delete(SENT.format(sub_id), PENDING.format(sub_id))
    r.zrem(DUE, sub_id)


def waiting_people(r: redis.Redis) -> int:
    """How many subscriptions have postings waiting for their email."""
    return int(r.zcard(DUE))


def retry_soon(r: redis.Redis, posting_id: str) -> None:
    """The posting's matching job failed: hand it to another as soon as its lease is gone."""
    published.handed(r, posting_id, 0)

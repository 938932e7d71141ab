"""Sending job alerts: a person's pending postings in one email, in their language and rhythm, at most once.

The workers' upkeep takes the subscriptions whose look-at time has come (`alert:due`, fanout.py) and hands them, a
few per job, to the alerts queue; each is put back a lease later, so one whose job was lost comes round again. For
each, `send` checks that the subscription is still confirmed (stopped, undeliverable or gone: its pending postings
are dropped), that its time has come (an instant one's gathering; a daily or weekly one waits for its digest hour),
then freezes its pending postings into a batch (`alert:due:<sub>:batch`, with an id) so that the email written,
retried or recovered is always the same one: its record in notify/sending is `mail:alert:<sub>:<batch id>`, so a
second run finds it sent and sends nothing. The batch is marked begun only once that record's claim is held: a
run cut off before (Redis lost while it waited for its mail slot) leaves it to the next run, one cut off after (the
claim lapsed, the email may have gone) sends nothing. Postings unpublished meanwhile are left out (an empty batch sends
nothing). The email carries List-Unsubscribe (the signed one-click address) with List-Unsubscribe-Post (RFC 8058),
the manage link, and a plain-text part; it goes on the shared mail pace as bulk mail. A permanent refusal of the
address (5xx) marks every subscription of that address undeliverable.

Recruiters can pause every alert (`alert:pause`): matching goes on, nothing is sent until it is lifted. What was
sent is counted per day (`alert:stats:<YYYY-MM-DD>`: emails, postings).
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import redis

from ..delivery import backoff
from ..keyspace.alerts_keys import BATCH, PAUSE, STATS
from ..notify import messages, sending
from ..notify.sending import Letter, MailDeferred, Status
from ..postings.catalog import CatalogUnavailable, Snapshot
from ..postings.posting import Posting
from ..redisdb.clock import server_now
from ..redisdb.lua import Lua
from ..settings import Settings
from . import fanout, subscriptions
from .context import Alerting
from .subscriptions import Frequency, State, Subscription

log = logging.getLogger(__name__)

SEND_LEASE_S = 60  # a subscription handed to a send job comes round again after this if the job was lost (a
# second job finds its email sent, or being sent: never a second copy)
PER_JOB = 20  # subscriptions per send job
SWEEP_MAX = 2000  # subscriptions handed out per upkeep
MAIL_TRIES = 14  # as the confirmation email: a deferring mail server is tried over about four hours
MAIL_RETRY_BASE_S = 2.0
MAIL_RETRY_CAP_S = 3600.0
MAX_POSTINGS = 50  # an email lists at most this many postings (the newest); the rest are on the job list
STATS_KEEP_S = 120 * 86400
MAIL_KEEP_S = 8 * 86400
LIVE_FRESH_S = 10  # a list of postings this recent that lacks a posting says it is unpublished; an older one is
# read again from Lever before a posting is left out (a worker's copy may predate the posting)

# KEYS: the pending zset, the batch hash, DUE; ARGV: subscription id, new batch id. Freezes the pending postings
# into a batch (unless one is there already). Returns the batch's id and postings (JSON), or nothing to send.
_FREEZE = Lua("""
if redis.call('EXISTS', KEYS[2]) == 1 then
  return redis.call('HMGET', KEYS[2], 'id', 'postings')
end
local ids = redis.call('ZRANGE', KEYS[1], 0, -1)
if #ids == 0 then
  redis.call('ZREM', KEYS[3], ARGV[1])
  return false
end
local postings = cjson.encode(ids)
redis.call('HSET', KEYS[2], 'id', ARGV[2], 'postings', postings, 'tries', 0)
redis.call('DEL', KEYS[1])
return {ARGV[2], postings}
""")

# KEYS: the pending zset, DUE; ARGV: subscription id, the next look-at time. After a send: on the due list again if
# postings came meanwhile, else off it.
_SETTLE = Lua("""
if redis.call('ZCARD', KEYS[1]) > 0 then
  redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
else
  redis.call('ZREM', KEYS[2], ARGV[1])
end
return 1
""")


@dataclass(frozen=True)
class Pause:
    """Whether recruiters paused every alert, by whom (an account id) and when (epoch s)."""

    on: bool
    by: str = ""
    at: float = 0.0


def pause_state(r: redis.Redis) -> Pause:
    raw = r.get(PAUSE)
    if not raw:
        return Pause(False)
    data = json.loads(raw)
    return Pause(True, str(data.get("by", "")), float(data.get("at", 0)))


def set_pause(r: redis.Redis, on: bool, by: str) -> None:
    """Pause (or resume) every alert email; matching goes on meanwhile and what it gives waits."""
    if on:
        r.set(PAUSE, json.dumps({"by": by, "at": time.time()}))
    else:
        r.delete(PAUSE)


def _digest_started(frequency: Frequency, given_at: float, now: float) -> bool:
    """Whether a digest time passed since the oldest pending posting was given: then its email is due."""
    return frequency == Frequency.INSTANT or fanout.next_digest(frequency, given_at) <= now


def take_due(r: redis.Redis, now: float | None = None) -> list[list[str]]:
    """The subscriptions whose look-at time has come, in groups of PER_JOB, each put back SEND_LEASE_S later (so a
    lost job's subscriptions come round again). Nothing while alerts are paused."""
    if r.exists(PAUSE):
        return []
    now = server_now(r) if now is None else now
    ids = [x.decode() for x in r.zrangebyscore(fanout.DUE, "-inf", now, start=0, num=SWEEP_MAX)]
    if not ids:
        return []
    r.zadd(fanout.DUE, dict.fromkeys(ids, now + SEND_LEASE_S), xx=True)
    return [ids[i : i + PER_JOB] for i in range(0, len(ids), PER_JOB)]


def send(alerting: Alerting, sub_ids: list[str], now: float | None = None) -> dict[str, int]:
    """The send job: each subscription's due email, at most once. Returns how many ended how. `now` (the Redis
    server's clock by default) decides whether a digest's time has come."""
    counts: dict[str, int] = {}
    live = Live(alerting)
    for sub_id in sub_ids:
        what = _send_one(alerting, sub_id, live, now)
        counts[what] = counts.get(what, 0) + 1
    return counts


class Live:
    """The postings still published, as a send job sees them: this process's copy, read again from Lever once if
    it lacks a posting a batch holds (the copy may predate it: a posting is left out only when Lever has it no
    more). None while the catalog is unavailable: the emails then wait."""

    def __init__(self, alerting: Alerting):
        self.alerting = alerting
        self.snapshot: Snapshot | None = None
        self.postings: dict[str, Posting] = {}

    def of(self, posting_ids: list[str]) -> dict[str, Posting] | None:
        try:
            if self.snapshot is None:
                self._use(self.alerting.catalog().postings())
            assert self.snapshot is not None  # noqa: S101 (just read)
            if self.snapshot.age_s > LIVE_FRESH_S and any(p not in self.postings for p in posting_ids):
                self._use(self.alerting.catalog().refresh_postings())  # at most once per LIVE_FRESH_S per job
        except CatalogUnavailable:
            return None
        return self.postings

    def _use(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        self.postings = {p["id"]: p for p in snapshot.data}


def _send_one(alerting: Alerting, sub_id: str, live: Live, at: float | None) -> str:
    r, settings = alerting.redis, alerting.settings
    if r.exists(PAUSE):
        r.zadd(fanout.DUE, {sub_id: server_now(r) + 60})
        return "paused"
    sub = subscriptions.get(r, sub_id)
    if sub is None or sub.state != State.CONFIRMED:
        _drop(r, sub_id)
        return "not confirmed"
    now = server_now(r) if at is None else at
    batch_key = BATCH.format(sub_id)
    if not r.exists(batch_key):
        oldest = r.zrange(fanout.PENDING.format(sub_id), 0, 0, withscores=True)
        if oldest and not _digest_started(sub.frequency, float(oldest[0][1]), now):
            r.zadd(fanout.DUE, {sub_id: fanout.next_digest(sub.frequency, float(oldest[0][1]))})
            return "waits for its digest"
    frozen = _FREEZE(r, [fanout.PENDING.format(sub_id), batch_key, fanout.DUE], [sub_id, uuid.uuid4().hex])
    if not frozen:
        return "nothing pending"
    batch_id, posting_ids = frozen[0].decode(), json.loads(frozen[1])
    published = live.of(posting_ids)
    if published is None:
        return "catalog unavailable"  # the batch stays; the subscription comes round again after its lease
    postings = [published[p] for p in posting_ids if p in published]
    outcome = "nothing still published"
    if postings and settings.smtp is None:
        outcome = "mail is off"
    elif postings and settings.smtp is not None:
        tries, started = (int(x or 0) for x in r.hmget(batch_key, "tries", "started"))
        name = f"alert:{sub_id}:{batch_id}"
        found = sending.state(r, name)
        if found and found.status == Status.SENDING:
            return "being sent by another worker"  # it comes round again after the lease
        if found is None and started > tries:
            # A worker began this very email and died without a word: its claim lapsed, the email may have gone.
            # At most once: it is not sent again.
            outcome = "unknown (a worker died sending it)"
        else:

            def begin() -> Letter:
                # Marked only once the email's claim is ours (send_once calls this then), never before: a Redis lost
                # while the job waited for its mail slot leaves the email unbegun, and the next run sends it.
                r.hset(batch_key, "started", tries + 1)
                return _letter(settings, sub, postings)

            try:
                status = sending.send_once(
                    r,
                    settings.smtp,
                    name,
                    begin,
                    label=f"alert {sub_id[:8]}",
                    last_try=tries + 1 >= MAIL_TRIES,
                    keep_s=MAIL_KEEP_S,
                    bulk=True,
                )
            except MailDeferred:
                r.hincrby(batch_key, "tries", 1)
                r.zadd(fanout.DUE, {sub_id: now + backoff.delay(tries, MAIL_RETRY_BASE_S, MAIL_RETRY_CAP_S)})
                return "deferred"
            if status is None:
                return "being sent by another worker"  # it comes round again after the lease
            outcome = status.value
            if status == Status.SENT:
                _count(r, len(postings))
            elif status == Status.REFUSED and (found := sending.state(r, name)) and found.address_refused:
                subscriptions.mark_undeliverable(r, sub_id)
                _drop(r, sub_id)
                return "undeliverable"
    r.delete(batch_key)
    _SETTLE(r, [fanout.PENDING.format(sub_id), fanout.DUE], [sub_id, now + settings.alert_gather_s])
    return outcome


def _drop(r: redis.Redis, sub_id: str) -> None:
    """Nothing more goes to this subscription: its pending postings and batch go (what it was given stays, so a
    subscription confirmed again is not sent old postings)."""
    r.delete(fanout.PENDING.format(sub_id), BATCH.format(sub_id))
    r.zrem(fanout.DUE, sub_id)


def _count(r: redis.Redis, postings: int) -> None:
    key = STATS.format(datetime.now(UTC).strftime("%Y-%m-%d"))
    with r.pipeline() as pipe:
        pipe.hincrby(key, "emails", 1)
        pipe.hincrby(key, "postings", postings)
        pipe.expire(key, STATS_KEEP_S)
        pipe.execute()


def sent_per_day(r: redis.Redis, days: int = 14, today: datetime | None = None) -> list[tuple[str, int, int]]:
    """Emails and postings sent per day, the latest first: (YYYY-MM-DD, emails, postings)."""
    today = today or datetime.now(UTC)
    names = [(today - timedelta(days=i)).strftime("%Y-%m-%d") for i in range(days)]
    with r.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.hmget(STATS.format(name), "emails", "postings")
        found = pipe.execute()
    return [(name, int(e or 0), int(p or 0)) for name, (e, p) in zip(names, found, strict=True)]


def posting_url(settings: Settings, posting_id: str) -> str:
    base = (settings.public_url or f"http://localhost:{settings.port}").rstrip("/")
    return f"{base}/jobs/{posting_id}"


def _letter(settings: Settings, sub: Subscription, postings: list[Posting]) -> Letter:
    """The alert email: the postings (newest first), the manage link, and the one-click stop in its headers."""
    shown = sorted(postings, key=lambda p: p.get("createdAt") or 0, reverse=True)[:MAX_POSTINGS]
    jobs: list[dict[str, Any]] = [
        {
            "title": messages.one_line(p["text"]),
            "where": messages.one_line(", ".join(p.get("locations") or [])),
            "team": messages.one_line(p.get("team") or ""),
            "url": posting_url(settings, p["id"]),
        }
        for p in shown
    ]
    unsubscribe = subscriptions.unsubscribe_url(settings, sub.id)
    message = messages.write(
        settings,
        "alert",
        sub.language,
        sub.email,
        kind="alert",
        company=settings.company_name,
        jobs=jobs,
        count=len(jobs),
        more=len(postings) - len(shown),
        frequency=str(sub.frequency),
        manage=subscriptions.manage_url(settings, sub.id),
        unsubscribe=unsubscribe,
        site=(settings.public_url or "").rstrip("/") or f"http://localhost:{settings.port}",
    )
    message["List-Unsubscribe"] = f"<{unsubscribe}>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message["Precedence"] = "bulk"
    messages.check_headers(message)
    return Letter(message, sub.email)


def retry_soon(r: redis.Redis, sub_ids: list[str]) -> None:
    """A send job failed: its subscriptions are due again now (those still on the due list)."""
    if sub_ids:
        r.zadd(fanout.DUE, dict.fromkeys(sub_ids, 0), xx=True)

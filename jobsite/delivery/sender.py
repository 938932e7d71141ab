"""The exactly-once sender every flow that writes to Lever goes through (applications, sourced people, and the
next ones: an email to many people is one more flow on it).

Lever has no idempotency key, so "exactly once" is built here, once: a lease per item, so two workers never send
the same one; the lease as a fencing token, checked in the same transaction that records a send is about to leave
and checked again after any wait, so a worker stalled past its lease stops instead of sending a second copy; an
in-flight mark with a settle time, so an answer-less send is looked for in Lever (by our marker, which every write
that can be re-sent carries) before it is sent again, and "not found" is trusted only once Lever cannot still be
processing it (with replicas required, the mark is WAITed on them before the send leaves, so a failover cannot
forget a send Lever has); and what each of Lever's answers means for the item (wait, retry, a person looks, close
the gate).

Every time that is compared across machines (when a send was marked, when its settle time ends) is read from the
clock every machine shares, the Redis server's (TIME), never from one worker's own clock: a worker whose clock is
ahead, or steps during a drain, must not end a settle time early.

A flow supplies only what differs: its record, its body, its send, and how to find its own copy in Lever.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

import redis
from redis import Redis
from redis.exceptions import LockError
from redis.lock import Lock

from ..keyspace.delivery_keys import SENT, UNACKED
from ..lever.client import LeverClient, LeverError
from ..lever.pacing import Unfenced
from ..redisdb import redis_server
from ..redisdb.clock import server_now
from ..settings import Settings
from . import backoff, gate, jobs, outcomes

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_IN_PROCESS_WAIT_S = 10.0  # (at most half the lease) wait this long for a slot in the job; longer is rescheduled
RETRY_BASE_S = 5.0
RETRY_CAP_S = 900.0
REPLICA_RETRY_S = 2.0  # a send whose in-flight mark the replicas did not acknowledge is tried again after this,
REPLICA_RETRY_CAP_S = 60.0  # ... doubled per held send (every worker's) since the replicas last acknowledged, to this
UNACKED_TTL_S = 3600  # (a key left by a process that stopped trying: the dashboard's notice ends)
FAILING_AFTER = 3  # 5xx or unanswered Lever calls in a row (any worker's) that close the gate: Lever is failing
FAILING_WINDOW_S = 120.0  # ... each within this of the one before (longer than the first retries' backoff)


@dataclass(frozen=True)
class Delivery:
    """What delivering to Lever uses, and nothing else: applications here, and the flows on the same sender with the
    same inputs (their follow-ups, sourced people and their changes): the sender's, so every flow on it imports it from
    here. Built once per process by the composition root
    (`Services.delivery`) and passed to every step, instead of the `Services` locator."""

    redis: Redis  # `redis` in this class body is this field, not the module
    lever: LeverClient  # the workers' client; each step narrows its wait with `within`
    settings: Settings  # a dozen of them: the lease, the probe's timings, the retry window, replicas, the body


class Outcome(StrEnum):
    DELIVERED = "delivered"
    PARKED = "parked"  # gate closed or paused; released when it opens
    RETRY = "retry"  # try again at `retry_at`
    NEEDS_ATTENTION = "needs_attention"
    SKIPPED = "skipped"  # nothing to do: delivered, discarded, or another worker holds it


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    retry_at: float = 0.0
    gate_closed: bool = False  # this delivery closed the gate: a probe must be scheduled
    probe_delay_s: float = 0.0
    opened: tuple[str, ...] = ()  # this delivery opened the gate: these parked applications are to be queued


def retry_delay(attempts: int) -> float:
    return backoff.delay(attempts, RETRY_BASE_S, RETRY_CAP_S)


def lease(r: redis.Redis, key: str, ttl_s: int) -> Lock:
    """At most one worker delivers an item; a dead worker's item is taken up again once its lease runs out.
    redis-py's Lock checks its token when it extends and releases, so a worker whose lease expired can never end the
    lease another worker took since."""
    return r.lock(key, timeout=ttl_s, blocking=False)


@contextmanager
def leased(lock: Lock, what: str) -> Iterator[bool]:
    """Hold `lock` for one delivery (yields False when another worker holds it: skip). Releasing a lease that ran
    out meanwhile is logged, never raised: the delivery's own outcome stands."""
    if not lock.acquire():
        yield False
        return
    try:
        yield True
    finally:
        try:
            lock.release()
        except LockError:
            log.warning("%s: its lease ran out during delivery", what)


def hold(pipe: redis.client.Pipeline, lock: Lock) -> None:
    """In a transaction not yet begun (`pipe`, before MULTI): WATCH the item's lease and check its token is ours, so
    what the transaction writes commits only while the lease is still ours. Raises LockError."""
    token = lock.local.token
    if token is None:  # never taken (or let go): not ours, whoever holds it now
        raise LockError("the lease is not held", lock_name=str(lock.name))
    pipe.watch(lock.name)
    if pipe.get(lock.name) != token:
        raise LockError("the lease passed to another worker", lock_name=str(lock.name))


def commit(r: redis.Redis, lock: Lock, write: Callable[[redis.client.Pipeline], object]) -> None:
    """Commit `write` in one transaction, only while the lease is ours (`hold`). Raises LockError, nothing written.

    Every write an attempt makes to its item's record goes through here (or `hold`), not only its sends: a worker
    stopped past its lease (a paused VM, a long GC) wakes with an old copy of the item, and any write of that copy
    ("delivering", "retry later", even the opportunity it has just created) undoes what the lease's new holder did
    since, and the item goes out again (the SIGSTOP tests of test_sender.py saw a delivered person lose their
    opportunity). The flows' `deliver` turn the LockError into SKIPPED: the new holder's record stands. Not through
    here: what is not the record (the attempt log, the gate's parked set), and what an attempt knows of its own send,
    written only while the record still carries that send's mark (`if_marked` in records/store and sourcing/people:
    a mark withdrawn, Lever's answer kept).

    A WatchError is looked into, not taken for a lost lease: redis-py raises it too when the connection drops while
    keys are watched, and a holder that gave up there would leave its item to recovery a lease later. So the lease is
    checked again, and `write` made again while it is still ours: the first EXEC may have been applied, so `write`
    must leave the same end state however often it runs (store.update and people.save do; compute an increment
    before, not inside it)."""
    with r.pipeline() as pipe:
        while True:
            try:
                hold(pipe, lock)
                pipe.multi()
                write(pipe)
                pipe.execute()
                return
            except redis.WatchError:
                continue


class Unreplicated(Exception):
    """The in-flight mark is on the primary alone (the replicas did not acknowledge it in time): nothing was sent, as
    a failover now could forget the mark and let the item be sent again. Try again soon."""


def unreplicated_retry_s(r: redis.Redis) -> float:
    """Note a send held because the replicas did not acknowledge its mark (Unreplicated) and return how long its
    item waits: REPLICA_RETRY_S doubled per send held (by any worker) since the replicas last acknowledged one, up to
    REPLICA_RETRY_CAP_S, so a replica that is down costs a try a minute per item, not one every 2 s. The first one
    is logged; the dashboard shows it (`replicas_missing`) until a mark is acknowledged again."""
    try:
        with r.pipeline() as pipe:
            pipe.hsetnx(UNACKED, "since", time.time())
            pipe.hincrby(UNACKED, "held", 1)
            pipe.expire(UNACKED, UNACKED_TTL_S)
            held = int(pipe.execute()[1])
    except redis.RedisError:
        return REPLICA_RETRY_CAP_S
    if held == 1:
        log.warning(
            "Redis replicas do not acknowledge the in-flight marks (JOBSITE_REDIS_MIN_REPLICAS): nothing is "
            "sent to Lever until they do; held sends are tried again with backoff"
        )
    return backoff.delay(held - 1, REPLICA_RETRY_S, REPLICA_RETRY_CAP_S)


def replicas_missing(r: redis.Redis) -> dict[str, float] | None:
    """Since when the replicas acknowledge no in-flight mark, and how many sends were held since: None when they
    do."""
    found = r.hgetall(UNACKED)
    if not found:
        return None
    return {"since": float(found.get(b"since", 0) or 0), "held": int(found.get(b"held", 0) or 0)}


class Fence:
    """The lease as a fencing token: a worker records that it is about to send in the same transaction that checks
    it still holds the lease (WATCH the lease, compare its token, extend it, write the send), so a worker that stalled
    past its lease, while recovery gave the item to another, stops instead of sending a second copy. Lever cannot
    check a token, so the last check must be close to the send: if more than RECHECK_FRACTION of the lease has
    passed since it (the process was stopped while it waited for its slot), `recheck` checks again.

    With `replicas` (JOBSITE_REDIS_MIN_REPLICAS) the mark must be on that many replicas (WAIT, within
    `replica_wait_ms`) before the send leaves: a failover between the mark and Lever's answer would otherwise promote
    a replica that never saw the mark, and the item would be sent again without a reconcile."""

    RECHECK_FRACTION = 0.25  # of the lease: sent within it, the request reaches Lever long before the lease can end

    def __init__(self, r: redis.Redis, lock: Lock, lease_s: int, *, replicas: int = 0, replica_wait_ms: int = 1000):
        self.r, self.lock, self.lease_s = r, lock, lease_s
        self.replicas, self.replica_wait_ms = replicas, replica_wait_ms
        self.checked = 0.0

    @classmethod
    def of(cls, delivery: Delivery, lock: Lock) -> Fence:
        """The fence of one attempt, as every flow on the sender sets it: the lease's length, the replicas it waits
        for."""
        s = delivery.settings
        return cls(
            delivery.redis,
            lock,
            s.delivery_lease_s,
            replicas=s.redis_min_replicas,
            replica_wait_ms=s.redis_replica_wait_ms,
        )

    def record_send(self, write: Callable[[redis.client.Pipeline], None]) -> None:
        """Queue `write` (the send's in-flight mark) on a transaction that commits if and only if the lease is still
        ours, and with replicas required, WAIT for them to have it. Raises LockError, Unreplicated (the mark may be
        on the primary: the caller withdraws it, nothing was sent)."""
        key = self.lock.name
        # With replicas, the transaction leaves a token of its own, which the WAIT reads back on its connection: the
        # lease alone would not do, a failover's new primary can have it from before the transaction, not the mark.
        sent = {SENT.format(key): uuid.uuid4().hex.encode()} if self.replicas else {}

        def marked(pipe: redis.client.Pipeline) -> None:
            pipe.pexpire(key, self.lease_s * 1000)
            write(pipe)
            for sent_key, value in sent.items():
                pipe.set(sent_key, value, px=self.lease_s * 1000)

        commit(self.r, self.lock, marked)
        if not redis_server.replicated(self.r, self.replicas, self.replica_wait_ms, vouch=sent):
            raise Unreplicated(
                f"the in-flight mark is not on {self.replicas} Redis replica(s) within {self.replica_wait_ms} ms"
            )
        self.checked = time.monotonic()

    def write(self, write: Callable[[redis.client.Pipeline], object]) -> None:
        """Any other write of the attempt to its item (`commit`): only while the lease is ours. Raises LockError."""
        commit(self.r, self.lock, write)

    def recheck(self) -> None:
        """Check the lease again if the last check is too old to vouch for the send. Raises LockError."""
        if time.monotonic() - self.checked > self.lease_s * self.RECHECK_FRACTION:
            self.lock.reacquire()
            self.checked = time.monotonic()

    def send(
        self,
        lever: LeverClient,
        settle_s: float,
        marking: Callable[[Mark], Callable[[redis.client.Pipeline], None]],
        request: Callable[[], T],
    ) -> T:
        """One send, as every flow makes them: the lease extended, then `request` (Lever's call on `lever`) waits for
        its slot on its endpoint's limits, with the send marked in flight just before the slot (`marking(mark)` gives
        the write) in the transaction that checks the lease, and the lease checked again once the slot is reached if
        the wait was long (a stall between the mark and the slot is caught here). The client refuses such a send
        outside this (lever.pacing.Unfenced). Raises LockError or Unreplicated (nothing sent), RateLimitWait, and
        whatever `request` raises."""
        if lever.pace is None:
            raise Unfenced("a fenced send needs a paced client")
        self.lock.reacquire()
        if self.replicas and self.r.exists(UNACKED):
            # The replicas acknowledged no mark at the last try: ask them before taking a pacing slot, which a send
            # held for them would waste (an empty WAIT: it says only whether they acknowledge now).
            if not redis_server.replicated(self.r, self.replicas, self.replica_wait_ms, vouch={}):
                raise Unreplicated(
                    f"the Redis replicas ({self.replicas} required) acknowledge no write within "
                    f"{self.replica_wait_ms} ms"
                )
            self.r.delete(UNACKED)

        def before_send(slot_at: float) -> None:
            self.record_send(marking(mark(self.r, settle_s, slot_at)))

        with lever.pace.fenced(before_send, self.recheck):
            return request()


def lost(r: redis.Redis, lease_key: str, *, delivering: bool, idle_s: float, lease_s: int, job_id: str) -> bool:
    """Whether an item's delivery was lost, for recovery to queue it again (the caller leaves out what is parked or
    at rest): no worker holds its lease, and either a worker died in the middle of it (still delivering) or it has
    been untouched for longer than a lease with no job due to run it (the job vanished: Redis lost it, a crash; or
    it started over a lease ago and holds no lease: its worker died or Redis went away under it)."""
    return lost_many(r, [Held(lease_key, delivering, idle_s, job_id)], lease_s) == [True]


@dataclass(frozen=True)
class Held:
    """What recovery knows of one item: its lease's key, whether it was left delivering, how long it has been
    untouched, and the id of its latest job."""

    lease_key: str
    delivering: bool
    idle_s: float
    job_id: str


def lost_many(r: redis.Redis, items: list[Held], lease_s: int) -> list[bool]:
    """`lost` for each of `items`, in a few round trips however many there are (a backlog is checked at every
    upkeep)."""
    if not items:
        return []
    with r.pipeline(transaction=False) as pipe:
        for item in items:
            pipe.exists(item.lease_key)
        leased = pipe.execute()
    live = jobs.alive(
        r,
        [
            item.job_id
            for item, held in zip(items, leased, strict=True)
            if not held and not item.delivering and item.idle_s > lease_s
        ],
        started_within_s=lease_s,
    )
    return [
        not held and (item.delivering or (item.idle_s > lease_s and item.job_id not in live))
        for item, held in zip(items, leased, strict=True)
    ]


@dataclass(frozen=True)
class Mark:
    """A send marked in flight, on the Redis server's clock: `at` when it leaves, `settle_until` until when Lever may
    still be processing it although it lists nothing (a send that got no answer)."""

    at: float
    settle_until: float


def mark(r: redis.Redis, settle_s: float, slot_at: float | None = None) -> Mark:
    """The in-flight mark of a send leaving at `slot_at` (its pacing slot, on the server's clock) or now."""
    at = slot_at if slot_at is not None else server_now(r)
    return Mark(at, at + settle_s)


def settling_s(r: redis.Redis, settle_until: float) -> float:
    """How long Lever may still be processing an answer-less send (0: "not found" can be trusted now)."""
    return max(0.0, settle_until - server_now(r)) if settle_until else 0.0


class Action(StrEnum):
    """What a failed Lever call means for the item being sent."""

    WAIT = "wait"  # rate-limited: try again after the pause every worker now keeps
    RETRY = "retry"  # Lever failed this call: try again with backoff (reconciled first if the outcome is unknown)
    NEEDS_ATTENTION = "needs_attention"  # Lever refuses it as it is: a person must look
    CLOSE_GATE = "close_gate"  # Lever takes nothing now (maintenance, our key, failing): everything waits
    DO_WITHOUT = "do_without"  # a read the key may not make: go on without what it would tell (and say so)


class Work(StrEnum):
    """The kinds of work that write to Lever, each with its row of the policy."""

    APPLICATION = "application"  # Apply to a posting
    PERSON = "person"  # Create an opportunity, Create a note
    TAG = "tag"  # Update opportunity tags (a follow-up)
    CHANGE = "change"  # a delivered person's own change told to Lever: their tags, the withdrawal's tag and note
    READ = "read"  # any list or get: a reconcile, a lookup, the start-up check, the sync, the catalog


# The policy: for each kind of work, what each meaning of Lever's answer (outcomes.judge decides the meaning) makes
# it do. Maintenance and Lever failing close the gate for every kind alike (FAILING only once it is Lever's state,
# not one request's: see `decide`). A refused key closes the gate where the key is what every delivery needs; a key
# refused the tags says nothing about deliveries, so tagging stops for a person instead of holding every delivery.
_WRITE = {
    outcomes.Meaning.RATE_LIMITED: Action.WAIT,
    outcomes.Meaning.MAINTENANCE: Action.CLOSE_GATE,
    outcomes.Meaning.KEY_REFUSED: Action.CLOSE_GATE,
    outcomes.Meaning.REJECTED: Action.NEEDS_ATTENTION,
    outcomes.Meaning.FAILING: Action.RETRY,
}
POLICY = {
    Work.APPLICATION: _WRITE,
    Work.PERSON: _WRITE,
    Work.TAG: {**_WRITE, outcomes.Meaning.KEY_REFUSED: Action.NEEDS_ATTENTION},
    # A key refused a person's tags or note says nothing about deliveries either: a person looks at that one.
    Work.CHANGE: {**_WRITE, outcomes.Meaning.KEY_REFUSED: Action.NEEDS_ATTENTION},
    # A read refused to our key says the key lacks that permission, not that Lever takes nothing: the flow goes on
    # without it (a reconcile re-sends, a capture is created as the default user, the start-up check remembers it).
    # Any other answer to a read inside a flow is what it is for the flow's writes (a 503 closes the gate, a 5xx
    # retries); a read outside a flow (the sync, the catalog, the console) tries again later whatever it is.
    Work.READ: {**_WRITE, outcomes.Meaning.KEY_REFUSED: Action.DO_WITHOUT},
}


@dataclass(frozen=True)
class Decision:
    action: Action
    cause: gate.Cause | None = None  # CLOSE_GATE: why
    why: str = ""


def reading(error: LeverError) -> Action:
    """What a failed read means, by the policy's read row: DO_WITHOUT when the key may not make it; any other action
    is the flow's to take (its own row decides, as for its writes). Pure: counts nothing."""
    return POLICY[Work.READ][outcomes.judge(error).meaning]


def decide(r: redis.Redis, verdict: outcomes.Verdict, work: Work, *, probe: bool = False) -> Decision:
    """What to do with the item after `verdict`, by the policy's row for its kind of `work`. A failure counts
    towards the gate's failing state (any worker's, any flow's): after FAILING_AFTER in a row it is not this item's
    problem but Lever's, and everything waits behind the gate, where the probe checks Lever every few seconds (a
    probe's own failure backs off the probing instead)."""
    action = POLICY[work][verdict.meaning]
    if action == Action.CLOSE_GATE:
        return Decision(action, verdict.gate_cause, verdict.why)
    if action == Action.RETRY and not probe and gate.lever_failed(r, FAILING_AFTER, FAILING_WINDOW_S):
        return Decision(Action.CLOSE_GATE, gate.Cause.FAILING, f"Lever is failing ({verdict.status or 'no answer'})")
    return Decision(action, None, verdict.why)

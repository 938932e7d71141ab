"""Following what the site sent through Lever's Opportunities model, after delivery: company-prefixed tags on the
opportunity, and the opportunity looked up again when delivery could not find it.

Tagging is a follow-up of delivery, never part of it: a delivered application stays delivered whatever happens here.
Its calls pass the same gate (parked while Lever is in maintenance, released by upkeep when the gate opens) and the
same shared limit of all Lever calls as deliveries (the client's pacing), but a follow-up takes a slot only when one is
free within FOLLOWUP_MAX_WAIT_S, so a backlog of applications always goes first. `tag()` decides; the task layer
schedules. Follow-ups take delivery's inputs (`Delivery`: Redis, the workers' client, the settings), never the
`Services` locator: they use nothing else, and delivery's lookups of an opportunity take them as they are.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from enum import StrEnum

import redis

from ..delivery import backoff, gate, outcomes, sender
from ..delivery.deliverer import locate_opportunity, look_for_duplicates
from ..delivery.sender import Delivery
from ..keyspace.followup_keys import PARKED
from ..lever.client import LeverClient, LeverError
from ..lever.pacing import RateLimitWait
from ..records import store
from ..records.store import Record, State
from ..settings import Settings

log = logging.getLogger(__name__)

FOLLOWUP_MAX_WAIT_S = 1.0  # a follow-up call waits at most this for a slot of the shared bucket, else reschedules
TAG_TRIES = 10  # failed tagging is tried this often (rate limits and maintenance not counted), then left as is
TAG_RETRY_BASE_S = 5.0
TAG_RETRY_CAP_S = 900.0
NOT_FOUND_RETRY_S = 60.0  # Lever does not list the opportunity yet: look again this much later (then backoff)


class Step(StrEnum):
    DONE = "done"
    PARKED = "parked"  # the gate is closed or paused: released by upkeep when it opens
    RETRY = "retry"  # try again at `retry_at`, as try number `attempt`
    GAVE_UP = "gave_up"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class FollowUp:
    step: Step
    retry_at: float = 0.0
    attempt: int = 0
    gate_closed: bool = False  # a 503 closed the gate: a probe must be scheduled
    probe_delay_s: float = 0.0


def tags_for(settings: Settings, record: Record) -> list[str]:
    """The company-prefixed tags an application's opportunity gets (JOBSITE_TAGS, JOBSITE_TAG_PREFIX)."""
    prefix, kinds = settings.tag_prefix, settings.tags
    tags = []
    if "site" in kinds:
        tags.append(f"{prefix} careers site")
    if "source" in kinds and record.source:
        tags.append(f"{prefix} source: {record.source}")
    if "campaign" in kinds and record.campaign:
        tags.append(f"{prefix} campaign: {record.campaign}")
    if "maintenance" in kinds and record.waited_maintenance:
        tags.append(f"{prefix} applied during Lever maintenance")
    return tags


def site_tag(settings: Settings) -> str:
    """The tag every opportunity from the site carries (the pipeline sync lists by it)."""
    return f"{settings.tag_prefix} careers site"


def lever(delivery: Delivery) -> LeverClient:
    """The client for a follow-up's calls: each waits at most FOLLOWUP_MAX_WAIT_S for its slot on the shared limit of
    all Lever calls (a delivery waits longer), so when deliveries fill the limit, follow-ups step back. Its calls
    raise RateLimitWait."""
    return delivery.lever.within(FOLLOWUP_MAX_WAIT_S)


def _park(r: redis.Redis, receipt: str) -> None:
    r.zadd(PARKED, {receipt: time.time()}, nx=True)


def take_parked(r: redis.Redis) -> list[str]:
    """The parked follow-ups, oldest first, removed from the parking if the gate is open (upkeep queues them)."""
    return gate.release(r, PARKED)


def tag(delivery: Delivery, receipt: str, attempt: int = 0) -> FollowUp:
    """Add the application's tags to its opportunity (and, with JOBSITE_TAG_EVERY_OPPORTUNITY, to every opportunity
    of the contact); looks the opportunity up first when delivery could not find it."""
    r, s = delivery.redis, delivery.settings
    record = store.load(r, receipt)
    if record is None or record.state != State.DELIVERED or record.tagging == "done" or not record.lever_application_id:
        return FollowUp(Step.SKIPPED)
    wanted = tags_for(s, record)
    if not wanted:
        store.update(r, record, tagging="done")
        return FollowUp(Step.DONE)
    if record.tags_requested != wanted:
        store.update(r, record, tags_requested=wanted)
    if gate.park(r, receipt, time.time(), PARKED):
        store.update(r, record, tagging="waiting for Lever")
        return FollowUp(Step.PARKED)
    paced = lever(delivery)
    try:
        if not record.opportunity_id:
            found = locate_opportunity(delivery, record, record.lever_application_id, paced)
            if found is None:
                why = "Lever does not list its opportunity yet"
                return _retry(delivery, record, attempt, why, NOT_FOUND_RETRY_S)
            store.update(r, record, opportunity_id=str(found.get("id", "")), contact_id=str(found.get("contact", "")))
        if record.resent and not record.duplicates:  # sent again after an unknown outcome: a late first copy?
            look_for_duplicates(delivery, record, paced)
        targets = [record.opportunity_id]
        if s.tag_every_opportunity and record.contact_id:
            targets += [
                str(o["id"])
                for o in paced.list_opportunities(contact_id=record.contact_id)
                if o.get("id") != record.opportunity_id
            ]
        confirmed = wanted
        for opportunity_id in targets:
            got = paced.add_tags(opportunity_id, wanted)
            if opportunity_id == record.opportunity_id and got is not None:
                confirmed = [t for t in wanted if t in got]
    except RateLimitWait as e:
        return FollowUp(Step.RETRY, retry_at=time.time() + e.wait_s, attempt=attempt)
    except LeverError as e:
        verdict = outcomes.judge(e)
        decision = sender.decide(r, verdict, sender.Work.TAG)
        return _ACTS[decision.action](delivery, record, attempt, verdict, decision)
    store.update(r, record, tags_confirmed=confirmed, tagging="done")
    tags = f"{len(confirmed)} tag" + ("" if len(confirmed) == 1 else "s")
    opportunities = f"{len(targets)} " + ("opportunity" if len(targets) == 1 else "opportunities")
    store.log_attempt(r, receipt, "tags", 200, f"{tags} on {opportunities}")
    return FollowUp(Step.DONE)


def _wait(
    delivery: Delivery, record: Record, attempt: int, verdict: outcomes.Verdict, decision: sender.Decision
) -> FollowUp:
    return FollowUp(Step.RETRY, retry_at=time.time() + verdict.wait_s, attempt=attempt)


def _behind_the_gate(
    delivery: Delivery, record: Record, attempt: int, verdict: outcomes.Verdict, decision: sender.Decision
) -> FollowUp:
    """Lever takes nothing now: close the gate as a delivery would, and wait behind it (upkeep releases it)."""
    r, s = delivery.redis, delivery.settings
    assert decision.cause is not None  # noqa: S101 (always set with CLOSE_GATE; narrows the type)
    closed = gate.close(r, decision.cause, decision.why)
    _park(r, record.receipt)
    store.update(r, record, tagging="waiting for Lever")
    store.log_attempt(r, record.receipt, "tags", verdict.status or "no answer", f"{decision.why}: tagging waits")
    return FollowUp(Step.PARKED, gate_closed=closed, probe_delay_s=gate.probe_delay(0, s.probe_cap_s))


def _failed(
    delivery: Delivery, record: Record, attempt: int, verdict: outcomes.Verdict, decision: sender.Decision
) -> FollowUp:
    return _retry(delivery, record, attempt, verdict.why)  # adding a tag twice changes nothing: resend


def _refused(
    delivery: Delivery, record: Record, attempt: int, verdict: outcomes.Verdict, decision: sender.Decision
) -> FollowUp:
    why = f"Lever refused the tags ({verdict.status}): {verdict.message}"  # the key or the request: a person looks
    store.update(delivery.redis, record, tagging=why)
    store.log_attempt(delivery.redis, record.receipt, "tags", verdict.status, why)
    return FollowUp(Step.GAVE_UP)


_ACTS = {
    sender.Action.WAIT: _wait,
    sender.Action.CLOSE_GATE: _behind_the_gate,
    sender.Action.RETRY: _failed,
    sender.Action.NEEDS_ATTENTION: _refused,
}  # what each of the policy's actions is for a tagging


def _retry(delivery: Delivery, record: Record, attempt: int, why: str, base_s: float = TAG_RETRY_BASE_S) -> FollowUp:
    r = delivery.redis
    store.log_attempt(r, record.receipt, "tags", None, why)
    if attempt + 1 >= TAG_TRIES:
        store.update(r, record, tagging=f"gave up after {TAG_TRIES} tries: {why}")
        log.warning("application %s: tagging gave up (the console says why)", record.receipt[:8])
        return FollowUp(Step.GAVE_UP)
    store.update(r, record, tagging=f"retrying: {why}")
    delay = backoff.delay(attempt, base_s, TAG_RETRY_CAP_S)
    return FollowUp(Step.RETRY, retry_at=time.time() + delay, attempt=attempt + 1)


class LeverNotReachable(Exception):
    """The console's read of Lever could not be made now (maintenance, rate limit or failure): say so, try later."""


UNREACHABLE = {sender.Action.WAIT: "Lever answered 429: too many requests just now"}  # by the policy's read row


def of_contact(delivery: Delivery, contact_id: str) -> list[dict[str, object]]:
    """Every opportunity Lever holds for a person (List all opportunities with contact_id, stage expanded): each
    with its posting, stage and archive state. One call, through the gate and the shared bucket.

    Raises:
        LeverNotReachable: the gate is closed, no slot is free soon, or Lever failed.
    """
    r = delivery.redis
    if not gate.status(r).is_open:
        raise LeverNotReachable("Lever is in maintenance, or delivery is paused")
    try:
        found = lever(delivery).list_opportunities(contact_id=contact_id, expand=["stage", "applications"])
    except RateLimitWait:
        raise LeverNotReachable("the shared rate limit is busy with deliveries") from None
    except LeverError as e:  # a read outside a flow: whatever the policy's read row says, the console tries later
        said = UNREACHABLE.get(sender.reading(e), f"Lever answered {e.status or 'nothing'}: {e.message}")
        raise LeverNotReachable(said) from None
    out: list[dict[str, object]] = []
    for o in found:
        stage = o.get("stage")
        apps = [a for a in o.get("applications") or [] if isinstance(a, dict)]
        out.append(
            {
                "id": o.get("id"),
                "stage": stage.get("text") if isinstance(stage, dict) else stage,
                "posting": apps[0].get("posting") if apps else None,
                "archived": o.get("archived"),
                "tags": o.get("tags") or [],
                "created_at": (o.get("createdAt") or 0) / 1000,
            }
        )
    return out

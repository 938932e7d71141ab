"""The pipeline report: where every opportunity that came through the site stands in Lever (stage, archived or not
and why, hired or not), kept fresh by an incremental polling sync and by Lever's webhooks.

It owns `pipeline:*`: one hash per tracked opportunity, the set of them, the cached stage and archive-reason names
(an unknown id triggers at most one refresh a minute, not a storm), the last sync's time, and the webhook tokens
seen (replays are refused). The sync lists opportunities by the site's tag with `updated_at_start` from the last sync
and `expand=stage`, one page per slot of the shared bucket taken only when free soon (deliveries first), and not at
all while the gate is closed (maintenance answers 503).
"""

from __future__ import annotations

import csv
import io
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import redis

from ..delivery import gate
from ..delivery.sender import Delivery
from ..keyspace.followup_keys import NAMES, NAMES_REFRESHED, OPP, OPPS, PREFIX, SEEN, SYNC_LOCK, SYNCED_AT
from ..lever.client import LeverError
from ..lever.pacing import RateLimitWait
from ..records.store import Record
from . import tagging

log = logging.getLogger(__name__)

SYNC_MARGIN_MS = 60_000  # re-read this much before the last sync: clocks differ, and updates land while we read
EVENTS = ("applicationCreated", "candidateStageChange", "candidateArchiveChange", "candidateHired", "candidateDeleted")


def track(r: redis.Redis, record: Record) -> None:
    """Start following a delivered application's opportunity (once it is tagged, the sync finds it by tag too)."""
    if not record.opportunity_id:
        return
    key = OPP.format(record.opportunity_id)
    r.hset(
        key,
        mapping={
            "posting_id": record.posting_id,
            "posting": record.posting_title,
            "source": record.source,
            "campaign": record.campaign,
            "contact_id": record.contact_id,
        },
    )
    r.hsetnx(key, "created_at", int(record.delivered_at * 1000))
    r.hsetnx(key, "stage_id", "applicant-new")
    r.sadd(OPPS, record.opportunity_id)


def track_sourced(
    r: redis.Redis,
    opportunity_id: str,
    *,
    posting_id: str,
    posting: str,
    source: str,
    contact_id: str,
    created_at_ms: int,
) -> None:
    """Follow an opportunity sourcing created (a talent-community sign-up, an event capture) beside the
    applications: `source` says which ("talent community", "event: <name>"), so the funnel by source shows which
    event produced hires. Lever's webhooks keep its stage (the sync follows the site's tag, which it does not carry)."""
    key = OPP.format(opportunity_id)
    r.hset(
        key,
        mapping={
            "posting_id": posting_id,
            "posting": posting or ("(no posting)" if not posting_id else ""),
            "source": source,
            "campaign": "",
            "contact_id": contact_id,
            "sourced": 1,
        },
    )
    r.hsetnx(key, "created_at", created_at_ms)
    r.hsetnx(key, "stage_id", "lead-new")
    r.sadd(OPPS, opportunity_id)


def refresh_names(delivery: Delivery) -> None:
    """Fetch the stage and archive-reason names (two list calls, through the shared limit)."""
    r = delivery.redis
    lever = tagging.lever(delivery)
    stages = lever.list_stages()
    reasons = lever.list_archive_reasons()
    mapping: dict[str, str | int] = {}
    for i, st in enumerate(stages):
        mapping[f"stage:{st.id}"], mapping[f"order:{st.id}"] = st.text, i
    for a in reasons:
        mapping[f"reason:{a.id}"], mapping[f"hired:{a.id}"] = a.text, int(a.hired)
    with r.pipeline() as pipe:
        pipe.delete(NAMES)
        pipe.hset(NAMES, mapping=mapping)
        pipe.set(NAMES_REFRESHED, "1", ex=60)
        pipe.execute()


def _names(r: redis.Redis) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in r.hgetall(NAMES).items()}


def _ensure_names(delivery: Delivery, ids: Iterable[str]) -> None:
    """Refresh the names when an id is unknown, at most once a minute (a refresh that fails is tried next time)."""
    r = delivery.redis
    known = _names(r)
    if any(f"stage:{i}" not in known and f"reason:{i}" not in known for i in ids if i) and r.set(
        NAMES_REFRESHED, "1", nx=True, ex=60
    ):
        try:
            refresh_names(delivery)
        except (LeverError, RateLimitWait):
            r.delete(NAMES_REFRESHED)


def ensure_stage_names(delivery: Delivery) -> None:
    """Before the report is shown: fetch Lever's stage names when a tracked opportunity's stage has none yet (one
    just delivered, before any sync), so the report names stages and its funnel goes through every one of them.
    At most once a minute; with Lever unreachable the ids stay until the next try."""
    r = delivery.redis
    pipe = r.pipeline(transaction=False)
    for opp_id in r.smembers(OPPS):
        pipe.hget(OPP.format(opp_id.decode()), "stage_id")
    _ensure_names(delivery, {v.decode() for v in pipe.execute() if v})


def _apply(r: redis.Redis, opportunity: dict[str, Any]) -> None:
    """Keep what Lever says of an opportunity, unless a webhook told us of a later change while the page was read."""
    key = OPP.format(opportunity["id"])
    if int(r.hget(key, "updated_at") or 0) > int(opportunity.get("updatedAt") or 0):
        return
    stage = opportunity.get("stage")
    archived = opportunity.get("archived") or {}
    tags = opportunity.get("tags") or []
    fields: dict[str, Any] = {
        "stage_id": stage.get("id") if isinstance(stage, dict) else (stage or ""),
        "archive_reason": archived.get("reason") or "",
        "archived_at": archived.get("archivedAt") or 0,
        "created_at": opportunity.get("createdAt") or 0,
        "advanced_at": opportunity.get("lastAdvancedAt") or 0,
        "updated_at": opportunity.get("updatedAt") or 0,
        "contact_id": opportunity.get("contact") or "",
    }
    for t in tags:  # our own tags say where the candidate came from
        for kind in ("source", "campaign"):
            if t.startswith(f"{_prefix(r)} {kind}: "):
                fields.setdefault(kind, t.split(": ", 1)[1])
    r.hset(key, mapping=fields)
    r.sadd(OPPS, opportunity["id"])


def _prefix(r: redis.Redis) -> str:
    raw = r.get(PREFIX)
    return raw.decode() if raw else ""


def sync(delivery: Delivery) -> int | None:
    """One incremental sync; returns how many opportunities changed, or None when it could not run now (gate
    closed, bucket busy, Lever failing): the next sync covers the gap, since it starts from the last complete one."""
    r, s = delivery.redis, delivery.settings
    if not gate.status(r).is_open:
        return None
    r.set(PREFIX, s.tag_prefix)
    started = int(time.time() * 1000)
    since = int(r.get(SYNCED_AT) or 0)
    params: dict[str, Any] = {"tag": tagging.site_tag(s), "expand": "stage"}
    if since:
        params["updated_at_start"] = since - SYNC_MARGIN_MS
    changed = 0
    try:
        for page in tagging.lever(delivery).iter_opportunity_pages(**params):  # each page takes its slot
            ids = []
            for o in page:
                _apply(r, o)
                archived = o.get("archived") or {}
                ids.append(archived.get("reason") or "")
                changed += 1
            _ensure_names(delivery, ids)
    except RateLimitWait:
        return None
    except LeverError:  # whatever it means (a 429 slowed everyone already), the next sync covers the gap
        return None
    r.set(SYNCED_AT, started)
    return changed


def due_sync(r: redis.Redis, every_s: int) -> bool:
    """True once per `every_s` across every worker: this one should queue a sync."""
    return bool(r.set(SYNC_LOCK, "1", nx=True, ex=every_s))


# Webhooks


class WebhookRefused(Exception):
    """A stale or replayed webhook: refused, nothing changed."""


def apply_webhook(
    delivery: Delivery, envelope: dict[str, Any], max_age_s: int, *, forget: Callable[[str], object]
) -> bool:
    """Apply a verified webhook once; True if it concerned an opportunity from the site. Raises WebhookRefused for
    one triggered too long ago (or in the future) or whose token was seen before.

    Lever signs only token + triggeredAt, not the event or its data: so every verified token is marked used,
    whatever its event (a captured envelope of an event we ignore could otherwise come back as another), and an
    event that destroys data is acted on only once Lever confirms it (LeverNotReachable when it cannot say now:
    the token is released, so Lever's redelivery gets through). `forget` removes what every flow holds about a
    person Lever deleted (privacy/retention.forget: applications and sourced people alike)."""
    r = delivery.redis
    triggered = int(envelope.get("triggeredAt") or 0)
    if abs(time.time() * 1000 - triggered) > max_age_s * 1000:
        raise WebhookRefused("stale")
    if not r.set(SEEN.format(envelope["token"]), "1", nx=True, ex=max_age_s * 2):
        raise WebhookRefused("replayed")
    if envelope.get("event") not in EVENTS:
        return False  # an event we do not follow (or Lever's test POST): its token is spent all the same
    try:
        return _apply_event(delivery, envelope, triggered, forget)
    except Exception:
        r.delete(SEEN.format(envelope["token"]))  # not applied: Lever's redelivery must get through
        raise


def _apply_event(delivery: Delivery, envelope: dict[str, Any], triggered: int, forget: Callable[[str], object]) -> bool:
    r = delivery.redis
    data = envelope.get("data") or {}
    event = envelope.get("event")
    opportunity = str(data.get("opportunityId") or data.get("candidateId") or "")
    if event == "candidateDeleted":
        contact = str(data.get("contactId") or "") or _contact(r, opportunity)
        if contact and tagging.of_contact(delivery, contact):
            log.warning("webhook candidateDeleted ignored: Lever still holds that contact's opportunities")
            return False
        if contact:
            forget(contact)
        if r.sismember(OPPS, opportunity):
            r.hset(OPP.format(opportunity), mapping={"contact_id": "", "deleted": 1})
        return bool(contact)
    if not r.sismember(OPPS, opportunity):
        return False
    key = OPP.format(opportunity)
    if int(r.hget(key, "updated_at") or 0) > triggered:
        return True  # a newer state is already known: applying this would undo it
    if event == "candidateStageChange":
        r.hset(
            key,
            mapping={"stage_id": str(data.get("toStageId") or ""), "advanced_at": triggered, "updated_at": triggered},
        )
        _ensure_names(delivery, [str(data.get("toStageId") or "")])
    elif event == "candidateArchiveChange":
        to = data.get("toArchived") or {}
        reason = str(to.get("reason") or "") if isinstance(to, dict) else ""
        r.hset(
            key, mapping={"archive_reason": reason, "archived_at": triggered if reason else 0, "updated_at": triggered}
        )
        _ensure_names(delivery, [reason])
    elif event == "candidateHired":
        names = _names(r)
        hired = next((k.split(":", 1)[1] for k, v in names.items() if k.startswith("hired:") and v == "1"), "")
        if hired and not r.hget(key, "archive_reason"):
            r.hset(key, mapping={"archive_reason": hired, "archived_at": triggered})
    return True


def _contact(r: redis.Redis, opportunity: str) -> str:
    raw = r.hget(OPP.format(opportunity), "contact_id")
    return raw.decode() if raw else ""


# The report


@dataclass(frozen=True)
class Row:
    opportunity_id: str
    posting: str
    source: str
    campaign: str
    stage: str
    archived: bool
    archive_reason: str
    hired: bool
    created_at: float  # epoch s
    advanced_at: float
    contact_id: str = ""  # the person in Lever (the console links the row to their page)


def rows(r: redis.Redis, since: float | None = None, until: float | None = None) -> list[Row]:
    """Every tracked opportunity created in [since, until) (epoch s), newest first."""
    names = _names(r)
    ids = sorted(x.decode() for x in r.smembers(OPPS))
    pipe = r.pipeline(transaction=False)
    for i in ids:
        pipe.hgetall(OPP.format(i))
    out = []
    for opp_id, raw in zip(ids, pipe.execute(), strict=True):
        d = {k.decode(): v.decode() for k, v in raw.items()}
        created = int(d.get("created_at") or 0) / 1000
        if (since and created < since) or (until and created >= until):
            continue
        reason = d.get("archive_reason", "")
        out.append(
            Row(
                opp_id,
                d.get("posting") or d.get("posting_id", ""),
                d.get("source", ""),
                d.get("campaign", ""),
                names.get(f"stage:{d.get('stage_id', '')}", d.get("stage_id", "")),
                bool(reason),
                names.get(f"reason:{reason}", reason) if reason else "",
                names.get(f"hired:{reason}") == "1",
                created,
                int(d.get("advanced_at") or 0) / 1000,
                d.get("contact_id", ""),
            )
        )
    return sorted(out, key=lambda row: row.created_at, reverse=True)


def funnel(r: redis.Redis, found: list[Row], by: str) -> list[dict[str, Any]]:
    """Per posting (`by="posting"`) or per source and campaign (`by="source"`): applied, then how many reached
    each stage (in Lever's order; a candidate past a stage reached it), then hired, with rates of applied."""
    names = _names(r)
    order = {
        v: int(names[f"order:{k.split(':', 1)[1]}"])
        for k, v in names.items()
        if k.startswith("stage:") and f"order:{k.split(':', 1)[1]}" in names
    }
    stages = [name for name, _ in sorted(order.items(), key=lambda x: x[1])]
    groups: dict[str, list[Row]] = {}
    for row in found:
        key = row.posting if by == "posting" else " / ".join(x for x in (row.source or "(none)", row.campaign) if x)
        groups.setdefault(key, []).append(row)
    out = []
    for key, members in sorted(groups.items()):
        applied = len(members)
        reached = Counter(st for row in members for st in stages[: order.get(row.stage, 0) + 1])
        hired = sum(row.hired for row in members)
        out.append(
            {
                "group": key,
                "applied": applied,
                "stages": [
                    {"stage": st, "count": reached[st], "rate": round(reached[st] / applied, 3)} for st in stages
                ],
                "hired": hired,
                "hired_rate": round(hired / applied, 3),
            }
        )
    return out


def report(r: redis.Redis, since: float | None = None, until: float | None = None) -> dict[str, Any]:
    """The whole report as plain data (the console, the CLI's JSON)."""
    found = rows(r, since, until)
    return {
        "synced_at": int(r.get(SYNCED_AT) or 0) / 1000,
        "opportunities": len(found),
        "hired": sum(x.hired for x in found),
        "rows": [x.__dict__ for x in found],
        "by_posting": funnel(r, found, "posting"),
        "by_source": funnel(r, found, "source"),
    }


CSV_COLUMNS = (
    "opportunity_id",
    "posting",
    "source",
    "campaign",
    "stage",
    "archived",
    "archive_reason",
    "hired",
    "created_at",
    "advanced_at",
)


def to_csv(found: list[Row]) -> str:
    """The rows as CSV; a cell that a spreadsheet would run as a formula is quoted with a leading apostrophe."""
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(CSV_COLUMNS)
    for row in found:
        cells = [getattr(row, c) for c in CSV_COLUMNS]
        w.writerow(["'" + c if isinstance(c, str) and c[:1] in ("=", "+", "-", "@") else c for c in cells])
    return out.getvalue()

"""What recruiters and operators see of the delivery side: Lever's state, the gate, the queue, rates and history."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from redis import Redis

from ..delivery import gate, sender
from ..lever import health, pacing
from ..lever.pacing import Limits
from ..records import spool, store
from ..records.store import State

RATE_WINDOW_S = 60
HOURS = 24


@dataclass(frozen=True)
class Board:
    """What the dashboard reads, and nothing else: built once per process by the composition root
    (`Services.board`)."""

    redis: Redis
    limits: Limits  # Lever's limits as the workers pace their calls (the page shows how far a 429 lowered them)
    probe_interval_s: float
    data_dir: Path  # where this machine spools applications while Redis cannot take them
    redis_min_replicas: int


def lever_state(board: Board, status: gate.GateStatus) -> dict[str, Any]:
    """available | maintenance (since) | rate-limited | errors | unknown, as jobsite last saw Lever."""
    last = health.last_seen(board.redis)
    if status.closed:
        kind = {gate.Cause.MAINTENANCE: "maintenance", gate.Cause.FAILING: "failing"}.get(
            status.cause or gate.Cause.MAINTENANCE, "refusing our key"
        )
        return {"state": kind, "since": status.since, "detail": status.reason}
    paused = any(pacing.pace(board.redis, limit).paused_s > 0 for limit in (board.limits.apply, board.limits.lever))
    if paused:
        return {
            "state": "rate-limited",
            "since": last["at"] if last else None,
            "detail": "Lever answered 429: every worker pauses, then goes slower",
        }
    if not last:
        return {"state": "unknown", "detail": "jobsite has not called Lever yet"}
    recent = time.time() - last["at"] < 300
    if recent and last["status"] == "429":
        return {"state": "rate-limited", "since": last["at"], "detail": "Lever answered 429"}
    if recent and (last["status"] == "error" or last["status"].startswith("5")):
        return {"state": "errors", "since": last["at"], "detail": f"last answer: {last['status']}"}
    return {"state": "available", "since": last["at"], "detail": f"last answer: {last['status']}"}


# Lever's state in a recruiter's words: a short word for the card and a sentence under it.
LEVER_WORDS = {
    "available": ("Available", "Lever is taking applications."),
    "maintenance": ("In maintenance", "Lever is down for maintenance; applications wait here and go when it is back."),
    "rate-limited": ("Busy", "Lever asked us to slow down; applications go a little slower for a few minutes."),
    "failing": ("Having problems", "Lever is not answering properly; applications wait and go as soon as it does."),
    "errors": ("Having problems", "Lever's last answers were errors; applications are tried again."),
    "refusing our key": ("Refusing our key", "Lever refuses the site's API key; an admin must fix it."),
    "unknown": ("Not asked yet", "The site has not needed Lever since it started."),
}
GATE_WORDS = {"open": "Sending", "closed": "Waiting for Lever", "paused": "Paused"}


def gate_says(status: gate.GateStatus) -> str:
    """What the delivery gate's state means, in words for recruiters: what is true now and what happens next."""
    if status.paused:
        return "Paused by a recruiter — applications are kept and wait until you resume"
    if not status.closed:
        return "Applications are being sent to Lever as they arrive"
    if status.cause == gate.Cause.FAILING:
        failing = status.reason.removeprefix("Lever is failing (").removesuffix(")")
        return f"Lever is failing ({failing}s) — applications wait and are sent as soon as it answers"
    if status.cause == gate.Cause.KEY_REFUSED:
        return "Lever refuses our API key — applications wait here and are sent once an admin fixes the key"
    return "Lever is in maintenance — applications wait here and are sent automatically once it ends"


def probe_check(board: Board, status: gate.GateStatus) -> str:
    """How jobsite finds out that Lever takes applications again, in words for recruiters ("" unless it is looking):
    a light read every few seconds, or, where the key may not make it, re-sending the oldest application."""
    if not status.closed or status.paused:
        return ""
    if status.cause == gate.Cause.KEY_REFUSED:
        return "Checking Lever by re-sending the oldest application until the API key is accepted"
    refused = gate.read_refused(board.redis)
    if refused:
        return f"Checking Lever by re-sending the oldest application: {refused}"
    return f"Checking Lever every {board.probe_interval_s:g} s with a light read"


def pacing_now(board: Board) -> dict[str, dict[str, Any]]:
    """The shared pacing of calls to Lever as every worker applies it now: the rate, the ceiling, and how far a 429
    has lowered it."""
    out = {}
    for limit in (board.limits.apply, board.limits.lever):
        p = pacing.pace(board.redis, limit)
        out[limit.name] = {
            "rate_per_s": round(p.rate_per_s, 2),
            "ceiling_per_s": p.ceiling_per_s,
            "share": round(p.factor, 3),
            "lowered": p.factor < 1,
            "paused_s": round(p.paused_s, 1),
        }
    return out


def status(board: Board) -> dict[str, Any]:
    """Everything the dashboard shows, as plain data (the page and its JSON both use it)."""
    r = board.redis
    now = time.time()
    g = gate.status(r)
    counts = store.counts(r)
    backlog = counts["queued"] + counts["waiting"] + counts["delivering"]
    oldest = store.oldest_created_at(r, (State.WAITING, State.QUEUED, State.DELIVERING))
    rate = store.delivered_between(r, now - RATE_WINDOW_S, now + 0.001) / RATE_WINDOW_S
    lever = lever_state(board, g)
    lever["word"], lever["says"] = LEVER_WORDS[lever["state"]]
    gate_state = "paused" if g.paused else g.state.value
    paced = pacing_now(board)
    # The estimate is the backlog at the pace every worker is held to (what the page shows as the pace), not the
    # last minute's deliveries: those count only the part of a minute a drain has run, and would disagree with it.
    pace = paced[board.limits.apply.name]["rate_per_s"]
    return {
        "now": now,
        "lever": lever,
        "gate": {
            "state": gate_state,
            "since": g.since,
            "failures": g.failures,
            "next_probe_at": g.next_probe_at if g.closed else None,
            "parked": g.parked,
            "check": probe_check(board, g),
            "cause": g.cause.value if g.closed and g.cause else None,
            "says": gate_says(g),
            "word": GATE_WORDS[gate_state],
        },
        "counts": counts,
        "backlog": backlog,
        "oldest_waiting_s": round(now - oldest) if oldest else None,
        "delivery_rate_per_s": round(rate, 2),
        "pacing": paced,
        "per_minute": round(pace * 60),
        "eta_s": round(backlog / pace) if pace > 0 and backlog else None,
        "spooled": len(spool.entries(board.data_dir)),
        "replicas_missing": sender.replicas_missing(r) if board.redis_min_replicas else None,
    }


def history(board: Board, hours: int = HOURS) -> list[dict[str, Any]]:
    """Submissions and deliveries per hour over the last `hours`, oldest first."""
    r = board.redis
    end = (int(time.time()) // 3600 + 1) * 3600
    out = []
    for h in range(hours, 0, -1):
        start = end - h * 3600
        out.append(
            {
                "hour": start,
                "submitted": store.received_between(r, start, start + 3600),
                "delivered": store.delivered_between(r, start, start + 3600),
            }
        )
    return out

"""The invariants, checked on the history of a run and on what Lever (the sandbox) holds at its end:

- every submission answered 2xx (application, sign-up, capture) is in Lever exactly once per send (found by its own
  email, and an application by our marker too, the receipt link in its `urls`), and a capture's note once on each;
- a submission answered only otherwise (4xx, 503) left nothing in Lever; one left without an answer, at most once;
- every request is answered within ANSWER_BOUND_S with a 2xx, a 3xx, a 4xx or a 503 with Retry-After: never a 5xx
  else (unless a fault stopped or killed the web process serving it: then no answer is excused);
- the backlog drains by itself after the last fault is healed: it never stalls (no progress for a while), and it is
  all in Lever within a bound that follows it (a margin plus what it takes at Lever's strict rates, see
  `wait_for_drain`);
- Lever answers no 429 outside a 429 storm (the site keeps to Lever's limits, strictly read)."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import requests

from .load import Submission

ANSWER_BOUND_S = 15.0
STORM_GRACE_S = 1.0  # a 429 answered just as a storm was cleared still belongs to it
WEB_FAULTS = ("kill_web_worker", "stop_web_worker")


@dataclass
class Verdict:
    violations: list[dict[str, Any]] = field(default_factory=list)
    counts: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.violations

    def invariants(self) -> set[str]:
        return {v["invariant"] for v in self.violations}


def lever_state(sandbox_url: str) -> dict[str, Any]:
    opps = requests.get(f"{sandbox_url}/_sandbox/opportunities", timeout=30).json()["data"]
    received = requests.get(f"{sandbox_url}/_sandbox/received", timeout=30).json()
    by_email: dict[str, list[dict[str, Any]]] = {}
    for o in opps:
        for e in o["emails"]:
            by_email.setdefault(e, []).append(o)
    notes: dict[str, list[str]] = {}
    for n in received["notes"]:
        notes.setdefault(n["opportunity"], []).append(n["text"])
    return {"by_email": by_email, "notes": notes, "requests": received["requests"], "opportunities": len(opps)}


def found(sub: Submission, lever: dict[str, Any]) -> tuple[int, int]:
    """(opportunities of this submission in Lever, notes of it across them)."""
    opps = lever["by_email"].get(sub.email, [])
    notes = sum(1 for o in opps for text in lever["notes"].get(o["id"], []) if sub.note in text) if sub.note else 0
    return len(opps), notes


def complete(subs: list[Submission], lever: dict[str, Any]) -> bool:
    """Every accepted submission has reached Lever (each send, each note)."""
    for s in subs:
        if s.accepted:
            opps, notes = found(s, lever)
            if opps < s.sends or (s.note and notes < s.sends):
                return False
    return True


def backlog(subs: list[Submission], lever: dict[str, Any]) -> Counter[str]:
    """What accepted submissions still miss in Lever: applies, creates (sign-ups, captures' opportunities), notes."""
    left: Counter[str] = Counter()
    for s in subs:
        if s.accepted:
            opps, notes = found(s, lever)
            missing = max(0, s.sends - opps)
            left["applies" if s.kind.startswith("apply") else "creates"] += missing
            if s.note:
                left["notes"] += max(0, s.sends - notes)
    return left


# The site keeps to Lever's limits read strictly (2 applies and 10 calls in any second) with a margin, and every
# delivery costs calls besides its own (an apply's follow-up, a reconcile's listing): the drain is allowed this share of
# those rates, and each call besides an apply counts on the 10/s one.
APPLY_PER_S = 2.0
CALLS_PER_S = 10.0
RATE_SHARE = 0.5
CALLS_PER_APPLY = 3  # the apply, its follow-up's tagging, a reconcile's read


def drain_estimate_s(left: Counter[str]) -> float:
    """How long Lever's strict limits alone take to receive `left` (at RATE_SHARE of them)."""
    applies = left["applies"]
    calls = CALLS_PER_APPLY * applies + left["creates"] + left["notes"]
    return max(applies / APPLY_PER_S, calls / CALLS_PER_S) / RATE_SHARE


@dataclass
class Drain:
    """How the backlog drained after the last fault: seconds until all was in Lever (None: it stalled, or the
    bound passed), the bound (DRAIN_MARGIN + the estimate for the backlog at its start), what was left at the start
    and at the end, why it failed, and its progress (seconds, what was left) every few seconds."""

    drained_s: float | None
    bound_s: float
    start: dict[str, int]
    left: dict[str, int]
    failure: str = ""
    progress: list[tuple[float, int]] = field(default_factory=list)


def wait_for_drain(
    subs: list[Submission],
    sandbox_url: str,
    margin_s: float,
    *,
    stall_s: float = 90.0,
    every_s: float = 3.0,
    quiet_s: float = 5.0,
    record: Any = None,
) -> tuple[Drain, dict[str, Any]]:
    """Watch the backlog drain: every `every_s`, what accepted submissions still miss in Lever. It fails when it
    makes no progress for `stall_s` (a job lost, a gate that never opens) or when the bound passes: `margin_s` (the
    settle times, a probe, a lease) plus what the backlog at the start takes at Lever's rates (drain_estimate_s), so
    a long run's honest backlog is not read as a stall, and a drain slower than Lever's limits allow still fails.
    Lever's state is read again `quiet_s` after the end (a late duplicate shows in it)."""
    start = time.monotonic()
    lever = lever_state(sandbox_url)
    left = backlog(subs, lever)
    first = dict(left)
    bound = margin_s + drain_estimate_s(left)
    progress: list[tuple[float, int]] = []
    last_total, last_change = sum(left.values()), start
    drained, failure = None, ""
    while True:
        now = time.monotonic()
        total = sum(left.values())
        progress.append((round(now - start, 1), total))
        if record is not None:
            record({"type": "drain", "left": dict(left), "bound_s": round(bound, 1)})
        if total == 0:
            drained = now - start
            break
        if total < last_total:
            last_total, last_change = total, now
        if now - last_change > stall_s:
            failure = f"no progress for {stall_s:.0f} s"
            break
        if now - start > bound:
            failure = f"the bound of {bound:.0f} s passed"
            break
        time.sleep(every_s)
        try:
            lever = lever_state(sandbox_url)
            left = backlog(subs, lever)
        except requests.RequestException:
            pass
    time.sleep(quiet_s)
    lever = lever_state(sandbox_url)
    return Drain(drained, bound, first, dict(backlog(subs, lever)), failure, progress), lever


def check(
    subs: list[Submission],
    other: list[dict[str, Any]],
    windows: list[dict[str, Any]],
    lever: dict[str, Any],
    drain: Drain,
    since: float = 0.0,
) -> Verdict:
    v = Verdict()

    def bad(invariant: str, **detail: Any) -> None:
        v.violations.append({"invariant": invariant, **detail})

    web_faults = [w for w in windows if w["kind"] in WEB_FAULTS]

    def excused(a: dict[str, Any]) -> bool:
        return any(w["start"] - 0.5 <= a["t1"] and a["t0"] <= w["end"] + 1.0 for w in web_faults)

    attempts = [(s.kind, s.n, a) for s in subs for a in s.attempts] + [(a.get("what", ""), 0, a) for a in other]
    longest = 0.0
    for kind, n, a in attempts:
        took = a["t1"] - a["t0"]
        longest = max(longest, took)
        status = a["status"]
        where = {"kind": kind, "n": n, "path": a["path"], "status": status, "took_s": round(took, 2)}
        if not status:
            if not excused(a):
                bad("answered", **where, error=a.get("error"))
        elif took > ANSWER_BOUND_S and not excused(a):
            bad("answered within 15 s", **where)
        if status >= 500 and not (status == 503 and a.get("retry_after")):
            bad("never a 5xx but 503 with Retry-After", **where)
    totals: Counter[str] = Counter()
    for s in subs:
        opps, notes = found(s, lever)
        totals["submissions"] += 1
        totals[f"submissions:{s.kind}"] += 1
        totals["in_lever"] += opps
        where = {
            "kind": s.kind,
            "n": s.n,
            "email": s.email,
            "receipt": s.receipt,
            "answers": [a["status"] for a in s.attempts],
            "in_lever": opps,
            "sends": s.sends,
        }
        if s.accepted:
            totals["receipts"] += 1
            if opps < s.sends:
                totals["lost"] += s.sends - opps
                bad("every 202 reaches Lever", **where)
            if opps > s.sends:
                totals["duplicates"] += opps - s.sends
                bad("exactly once", **where)
            if s.kind.startswith("apply") and s.receipt:
                marked = [o for o in lever["by_email"].get(s.email, []) if any(s.receipt in x for x in o["links"])]
                if len(marked) != min(opps, 1) and opps:
                    bad("found by our marker", **where, marked=len(marked))
            if s.note and notes != s.sends and opps >= s.sends:
                totals["note_errors"] += 1
                bad("every note once", **where, notes=notes)
        elif s.unknown:
            if opps > s.sends:
                totals["duplicates"] += opps - s.sends
                bad("at most once without an answer", **where)
        elif opps:
            totals["unreceipted_in_lever"] += opps
            bad("nothing in Lever without a 202", **where)
    storms = [w for w in windows if w["kind"] == "lever_429_storm"]
    stray = [
        q
        for q in lever["requests"]
        if q["status"] == 429
        and q["t"] >= since  # not the nemesis's own reads while setting up
        and not any(w["start"] - STORM_GRACE_S <= q["t"] <= w["end"] + STORM_GRACE_S for w in storms)
    ]
    if stray:
        bad("no 429 outside a storm", count=len(stray), first=stray[:3])
    if drain.drained_s is None:
        bad(
            "the backlog drains by itself after the last fault",
            why=drain.failure,
            bound_s=round(drain.bound_s),
            at_start=drain.start,
            left=drain.left,
            pending=[
                {"kind": s.kind, "n": s.n, "email": s.email, "in_lever": found(s, lever)}
                for s in subs
                if s.accepted and found(s, lever)[0] < s.sends
            ][:20],
        )
    statuses = Counter(str(a["status"]) for _, _, a in attempts)
    v.counts = {
        **totals,
        "requests": len(attempts),
        "answers": dict(statuses),
        "server_errors": sum(n for st, n in statuses.items() if st.startswith("5") and st != "503"),
        "longest_answer_s": round(longest, 2),
        "drained_s": None if drain.drained_s is None else round(drain.drained_s, 1),
        "drain_bound_s": round(drain.bound_s, 1),
        "drain_backlog": drain.start,
        "drain_progress": drain.progress[:: max(1, len(drain.progress) // 20)],
        "lever_429": sum(1 for q in lever["requests"] if q["status"] == 429),
        "lever_429_outside": len(stray),
        "faults": dict(Counter(w["kind"] for w in windows)),
    }
    return v

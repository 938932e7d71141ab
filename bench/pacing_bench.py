"""Draining a backlog into a strict Lever: the sandbox refuses (429, no Retry-After) any apply that would make 3 in
a 1-second window as it receives them, and any call that would make 11. Several `jobsite worker` processes share
one redis-server, as on several machines; the web process takes the applications during a maintenance window.

Prints, per margin floor (the margin adapts to the lag every worker measures, lever/pacing.py): the drain rate
after the window as a ratio of Lever's 2 applies/s, the 429s the sandbox
answered, the tightest 3 consecutive applies as Lever received them, and the jitter the margin has to absorb: for
each application sent once, the delay from its reserved slot (the time jobsite recorded before sending it) to its
arrival at the sandbox, and how much two applies 2 apart came closer at arrival than their slots were.

Run: .venv/bin/python bench/pacing_bench.py [--applications 120] [--workers 3] [--margins-ms 30]
     (e.g. --margins-ms 10,30,100 to compare floors; default: the setting's default)
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import redis
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import sandboxed_site, simple_form, submit, wait_until
from jobsite import metrics
from jobsite.lever import pacing
from jobsite.records import store
from jobsite.records.store import State
from jobsite.settings import load_settings

APPLY_LIMIT = 2.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--applications", type=int, default=120)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument(
        "--margins-ms",
        default="",
        help="margin floors (JOBSITE_PACING_MARGIN_MS) to run with, comma-separated; default: the setting's default",
    )
    args = parser.parse_args()
    print(
        f"{args.applications} applications accepted during maintenance, then drained by {args.workers} workers "
        f"(separate processes, one redis-server) into the sandbox in strict window mode: at most 2 applies and "
        f"10 calls in any 1 s as received"
    )
    for margin in [int(m) for m in args.margins_ms.split(",") if m] or [None]:
        run(args.applications, args.workers, margin)


def run(n: int, workers: int, floor_ms: int | None) -> None:
    env = {"JOBSITE_PROBE_CAP_S": "2", "JOBSITE_UPKEEP_INTERVAL_S": "1"}
    if floor_ms is not None:
        env["JOBSITE_PACING_MARGIN_MS"] = str(floor_ms)
    with sandboxed_site("jsp", **env) as site:
        r, control = site.redis, site.control
        control.post(f"{site.sandbox_url}/_sandbox/limits", json={"mode": "window"}, timeout=5).raise_for_status()
        pid, form = simple_form(control, site.sandbox_url)
        requests.get(f"{site.url}/jobs/{pid}/apply", timeout=10)  # the form was seen: the cache is warm
        control.post(f"{site.sandbox_url}/_sandbox/maintenance", json={"on": True}, timeout=5).raise_for_status()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda i: submit(site.url, pid, form, i), range(n)))
        for _ in range(workers):
            site.start_worker()
        wait_until(lambda: store.counts(r)["waiting"] == n, 60)
        control.post(f"{site.sandbox_url}/_sandbox/maintenance", json={"on": False}, timeout=5).raise_for_status()
        # The schedule stood idle until the window's end: count its idle time from the drain's 3rd delivery on.
        wait_until(lambda: store.counts(r)["delivered"] >= 3, 60)
        idle_before = histogram(r, "jobsite_pacing_idle_seconds")
        wait_until(lambda: store.counts(r)["delivered"] == n, n / APPLY_LIMIT * 2 + 60)
        records = store.load_many(r, store.receipts(r, State.DELIVERED))
        lags = histogram(r, "jobsite_pacing_lag_seconds")
        idle = histogram(r, "jobsite_pacing_idle_seconds")
        unused = Unused(
            histogram(r, "jobsite_pacing_given_up_seconds"),
            {le: v - idle_before.get(le, 0.0) for le, v in idle.items()},
            metrics.counter_values(r, "jobsite_pacing_paused_slots_total", "limit").get("apply", 0),
        )
        received = control.get(f"{site.sandbox_url}/_sandbox/received", timeout=30).json()
        floor = load_settings(
            {"JOBSITE_PACING_MARGIN_MS": str(floor_ms)} if floor_ms is not None else {},
            secret_key="bench",  # noqa: S106 (not a secret)
        ).pacing_margin_s
        margin_ms = pacing.margin_s(r, pacing.Limit("apply", APPLY_LIMIT, floor)) * 1000
    report(received, records, n, workers, floor * 1000, margin_ms, lags, unused)


def histogram(r: redis.Redis, name: str) -> dict[str, float]:
    """A shared histogram of the apply limit: its buckets and sum by `le`."""
    return {
        json.loads(k)[2]: float(v)
        for k, v in r.hgetall(metrics.HISTOGRAMS).items()
        if json.loads(k)[:2] == [name, {"limit": "apply"}]
    }


@dataclass(frozen=True)
class Unused:
    """What the pacing left unused on the apply limit (lever/pacing.py counts it): slots given up waking late (how
    late: a histogram), slots given up to a pause, and the time the schedule stood idle before a call (no worker
    wanted a slot)."""

    late: dict[str, float]
    idle: dict[str, float]
    paused: int


def report(
    received: dict,
    records,
    n: int,
    workers: int,
    floor_ms: float,
    margin_ms: float,
    lags: dict[str, float],
    unused: Unused,
) -> None:
    applications, requests_ = received["applications"], received["requests"]
    delivered = sorted(q["t"] for q in requests_ if q["endpoint"] == "postings.apply" and q["status"] == 201)
    refused = sum(1 for q in requests_ if q["status"] == 429)
    emails = [next(p["value"] for p in a["body"]["personalInformation"] if p["name"] == "email") for a in applications]
    arrived = {e: a["arrived"] for e, a in zip(emails, applications, strict=True)}  # as the limits saw it
    once = [rec for rec in records if rec.attempts == 1]  # sent exactly once: its first_sent_at is that slot
    delays = sorted((arrived[rec.application.email] - rec.first_sent_at) * 1000 for rec in once)
    by_slot = sorted((rec.first_sent_at, arrived[rec.application.email]) for rec in once)
    squeezes = sorted(((b[0] - a[0]) - (b[1] - a[1])) * 1000 for a, b in zip(by_slot, by_slot[2:], strict=False))
    tightest = min(b - a for a, b in zip(delivered, delivered[2:], strict=False))
    rate = (len(delivered) - 1) / (delivered[-1] - delivered[0])
    steady = (len(delivered) - 2) / (delivered[-1] - delivered[1])  # from the first release of the backlog

    def pct(p: float) -> float:
        return delays[min(len(delays) - 1, int(len(delays) * p))]

    print(
        f"\nmargin floor {floor_ms:.0f} ms, {margin_ms:.0f} ms in force at the end ({workers} workers; load "
        f"average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores): delivered {len(delivered)}/{n}, exactly once: "
        f"{len(set(emails)) == len(emails) == n}; 429 answers: {refused}"
    )
    slots = sorted((arrived[rec.application.email], rec.first_sent_at) for rec in records if rec.first_sent_at)

    def held(t: float) -> float:
        """How long after its slot the apply Lever took at `t` arrived (ms)."""
        at, slot = min(slots, key=lambda s: abs(s[0] - t))
        return (at - slot) * 1000

    start = delivered[0]
    for q in requests_:
        if q["status"] == 429:
            before = sorted(t for t in delivered if q["t"] - 1 < t <= q["t"])
            print(
                f"  429 for {q['endpoint']} at +{q['t'] - start:.3f} s; applies Lever took in the second before it: "
                + ", ".join(f"-{(q['t'] - t) * 1000:.0f} ms (slot -> arrival {held(t):.0f} ms)" for t in before)
                + "; an apply held on its way for more than the margin is the machine's stall, not the pacing's"
            )
    print(
        f"  drain rate {rate:.2f}/s (after the probe's delivery {steady:.2f}/s) vs Lever's {APPLY_LIMIT:.0f}/s -> "
        f"ratio {rate / APPLY_LIMIT:.2f} ({steady / APPLY_LIMIT:.2f}); pacing spacing at the end "
        f"{(1000 + margin_ms) / APPLY_LIMIT:.0f} ms (ceiling ratio {1000 / (1000 + margin_ms):.3f})"
    )
    print(f"  tightest 3 consecutive applies at Lever: {tightest * 1000:.0f} ms (refused below 1000)")
    print(
        f"  slot -> arrival over {len(delays)} applications sent once: min {delays[0]:.1f}, p50 "
        f"{statistics.median(delays):.1f}, p90 {pct(0.9):.1f}, p99 {pct(0.99):.1f}, max {delays[-1]:.1f} ms; "
        f"spread (max - min) {delays[-1] - delays[0]:.1f} ms"
    )
    print(
        f"  squeeze (how much closer 2 applies 2 apart arrived than their slots were; a 429 when it exceeds the "
        f"margin): p50 {squeezes[len(squeezes) // 2]:.1f}, p99 {squeezes[int(len(squeezes) * 0.99)]:.1f}, "
        f"max {squeezes[-1]:.1f} ms"
    )
    total = lags.get("+Inf", 0.0)
    if total:
        shares = ", ".join(
            f"<={float(le) * 1000:g} ms {lags.get(le, 0) / total:.0%}"
            for le in ("0.001", "0.005", "0.02", "0.05", "0.1")
        )
        print(f"  worker side only (slot -> the call leaving, jobsite_pacing_lag_seconds): {shares} of {total:.0f}")
    explain(delivered, floor_ms, margin_ms, unused, len([q for q in requests_ if q["endpoint"] == "postings.apply"]))


def explain(delivered: list[float], floor_ms: float, margin_ms: float, unused: Unused, applies: int) -> None:
    """Where the time went that the drain lost against the floor's spacing (the best the pacing allows): the gaps
    at Lever wider than the spacing in force, the slots given up and the time no worker wanted one; the rest is the
    margin's growth over its floor."""
    best, spacing = (1000 + floor_ms) / APPLY_LIMIT / 1000, (1000 + margin_ms) / APPLY_LIMIT / 1000
    span = delivered[-1] - delivered[0]
    lost = span - (len(delivered) - 1) * best
    gaps = [b - a - spacing for a, b in itertools.pairwise(delivered)]
    wide = sorted((g for g in gaps if g > 0.05), reverse=True)
    late, idle = unused.late.get("+Inf", 0.0), unused.idle.get("sum", 0.0)
    print(
        f"  time lost against the floor's spacing ({best * 1000:.0f} ms): {lost:.2f} s of {span:.1f} s "
        f"({lost / best:.1f} slots); gaps at Lever wider than the spacing at the end by >50 ms: {len(wide)}, "
        f"{sum(wide):.2f} s in all"
        + (" (largest " + ", ".join(f"{g * 1000:.0f}" for g in wide[:5]) + " ms)" if wide else "")
    )
    print(
        f"  slots: {applies} applies sent; given up waking late {late:.0f} (late by "
        + ", ".join(f"<={float(le) * 1000:g} ms {unused.late.get(le, 0):.0f}" for le in ("0.02", "0.05", "0.1", "1"))
        + f"; a whole spacing each, {late * spacing:.2f} s, unless the calls after them move up), "
        f"given up to a pause {unused.paused}; the schedule idle (no worker wanted a "
        f"slot) {idle:.2f} s over {unused.idle.get('+Inf', 0):.0f} calls"
    )


if __name__ == "__main__":
    main()

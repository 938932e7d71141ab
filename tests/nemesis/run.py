"""One nemesis run (processes up, load and faults, drain, check, everything stopped), shrinking a failing schedule,
and the command line (`scripts/nemesis`)."""

from __future__ import annotations

import argparse
import json
import random
import signal
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import faults as faults_
from .checker import Verdict, check, wait_for_drain
from .faults import CATEGORIES, Fault, Injector
from .harness import Cluster
from .load import Load

# After the last fault is healed and the load stops, every accepted submission is in Lever within this margin plus
# what the backlog left then takes at Lever's strict rates (checker.wait_for_drain), with progress every DRAIN_STALL_S.
DRAIN_MARGIN_S = 60.0
DRAIN_STALL_S = 90.0
TAIL_S = 2.0  # load goes on this long after the last fault is healed


@dataclass
class Report:
    seed: int
    faults: list[Fault]
    verdict: Verdict
    history: Path

    @property
    def ok(self) -> bool:
        return self.verdict.ok


def run_once(
    seed: int,
    seconds: float,
    categories: tuple[str, ...] = CATEGORIES,
    *,
    schedule: list[Fault] | None = None,
    clients: int = 4,
    rate: float = 1.5,
    drain_margin_s: float = DRAIN_MARGIN_S,
    out: Path | None = None,
    say: Any = print,
) -> Report:
    """Run the site under the schedule drawn from `seed` (or the one given), and check it. Every process started is
    stopped, every fault healed and the tmpfs unmounted before this returns, whatever happened."""
    faults = schedule if schedule is not None else faults_.schedule(seed, seconds, categories)
    phase = (
        max([seconds] + [f.end + 1 for f in faults]) if schedule is None else max([5.0] + [f.end + 1 for f in faults])
    )
    out = out or Path(tempfile.gettempdir()) / "nemesis"
    out.mkdir(parents=True, exist_ok=True)
    history = out / f"seed-{seed}-{int(time.time())}.jsonl"
    lock = threading.Lock()
    t0 = [time.time()]
    log = open(history, "w")  # noqa: SIM115 (closed in the finally below)

    def record(event: dict[str, Any]) -> None:
        with lock:
            log.write(json.dumps({"t": round(time.time() - t0[0], 3), **event}, default=str) + "\n")
            log.flush()

    cats = {faults_.KINDS[f.kind].category for f in faults}
    cluster = Cluster(clock="clock" in cats, disk="disk" in cats, note=say)
    record(
        {
            "type": "run",
            "seed": seed,
            "seconds": seconds,
            "categories": categories,
            "schedule": [f.label() for f in faults],
            "root": str(cluster.root),
        }
    )
    injector: Injector | None = None
    load: Load | None = None
    verdict: Verdict | None = None  # None in the finally below: the run was interrupted (a SIGTERM's SystemExit)
    watching = threading.Event()
    try:
        cluster.start()
        load = Load(cluster, seed, record, clients=clients, rate=rate)
        load.setup()
        cluster.strict_lever()

        def supervise() -> None:
            while not watching.wait(0.5):
                try:
                    cluster.supervise()
                except Exception as e:
                    record({"type": "supervise_error", "error": repr(e)})

        threading.Thread(target=supervise, name="nemesis-supervisor", daemon=True).start()
        t0[0] = time.time()
        record({"type": "load", "phase": "start"})
        injector = Injector(cluster, faults, record, seed)
        injector.start(t0[0])
        load.start()
        injector.done.wait(phase + 30)
        time.sleep(max(0.0, t0[0] + phase - time.time()))  # the load runs the whole phase, even with few faults
        time.sleep(TAIL_S)
        load.finish()
        record({"type": "load", "phase": "end", "submissions": len(load.submissions)})
        injector.heal_all()
        drain, lever = wait_for_drain(
            load.submissions, cluster.sandbox_url, drain_margin_s, stall_s=DRAIN_STALL_S, record=record
        )
        if drain.drained_s is None:
            record({"type": "stall", "why": drain.failure, **stalled(cluster)})
        verdict = check(load.submissions, load.other, injector.windows, lever, drain, since=t0[0])
        verdict.counts["restarts"] = dict(cluster.restarts)
        record({"type": "verdict", "ok": verdict.ok, "counts": verdict.counts, "violations": verdict.violations})
    except Exception as e:  # the run itself failed: reported as a violation, with the processes' logs kept
        verdict = Verdict([{"invariant": "the run completes", "error": repr(e)}])
        record({"type": "verdict", "ok": False, "error": traceback.format_exc()})
    finally:
        watching.set()
        if injector is not None:
            injector.heal_all()
        if load is not None:
            load.stop.set()
        cluster.stop(keep_logs=None if verdict is not None and verdict.ok else history.with_suffix(".logs"))
        log.close()
    assert verdict is not None
    return Report(seed, faults, verdict, history)


def _terminated(signum: int, frame: Any) -> None:
    """A SIGTERM (a CI timeout, `timeout`, a person) ends the run through its finally blocks, which stop every
    process it started and unmount its tmpfs; a second one while they do so is ignored, so as not to cut them short."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise SystemExit(128 + signum)


def stalled(cluster: Cluster) -> dict[str, Any]:
    """What Redis says about a backlog that did not drain: the gate's keys, and each RQ queue's length and
    scheduled jobs (how many, and how far in the future by Redis's clock the first and last are due)."""
    try:
        r = cluster.direct_redis()
        now = float(r.time()[0])
        out: dict[str, Any] = {"gate": {}, "queues": {}, "scheduled": {}}
        for key in r.scan_iter("gate*"):
            name = key.decode()
            kind = r.type(key).decode()
            value = r.hgetall(key) if kind == "hash" else r.get(key) if kind == "string" else f"({kind})"
            out["gate"][name] = {k.decode(): v.decode() for k, v in value.items()} if isinstance(value, dict) else value
        for key in r.scan_iter("rq:queue:*"):
            out["queues"][key.decode()] = r.llen(key)
        for key in r.scan_iter("rq:scheduled:*"):
            due = [score for _, score in r.zrange(key, 0, -1, withscores=True)]
            if due:
                out["scheduled"][key.decode()] = {
                    "jobs": len(due),
                    "first_in_s": min(due) - now,
                    "last_in_s": max(due) - now,
                }
        r.close()
        return out
    except Exception as e:
        return {"error": repr(e)}


def shrink(
    report: Report, seconds: float, categories: tuple[str, ...], budget_s: float, say: Any = print, **kw: Any
) -> list[Fault]:
    """The smallest schedule found within `budget_s` that still breaks one of the invariants the run broke: drop
    halves, then quarters, ... of the faults (delta debugging), keeping any reduction that still fails."""
    wanted = report.verdict.invariants()
    current = list(report.faults)
    deadline = time.monotonic() + budget_s
    n = 2
    while current and time.monotonic() < deadline:
        size = max(1, len(current) // n)
        chunks = [current[i : i + size] for i in range(0, len(current), size)]
        for chunk in chunks:
            if time.monotonic() >= deadline:
                break
            candidate = [f for f in current if f not in chunk]
            say(f"nemesis: shrinking: trying {len(candidate)} of {len(current)} faults")
            again = run_once(report.seed, seconds, categories, schedule=candidate, say=say, **kw)
            if again.verdict.invariants() & wanted:
                current = candidate
                n = max(n - 1, 2)
                break
        else:
            if size == 1:
                break
            n = min(len(current), n * 2)
    return current


def summary(report: Report) -> str:
    c = report.verdict.counts
    lines = [
        f"nemesis seed {report.seed}: {'PASS' if report.ok else 'FAIL'}; history {report.history}",
        f"  faults: {json.dumps(c.get('faults', {}), sort_keys=True)}",
        f"  requests {c.get('requests')}, answers {json.dumps(c.get('answers', {}), sort_keys=True)}, "
        f"receipts {c.get('receipts', 0)} of {c.get('submissions', 0)} submissions, "
        f"in Lever {c.get('in_lever', 0)}, "
        f"duplicates {c.get('duplicates', 0)}, lost {c.get('lost', 0)}, 5xx {c.get('server_errors')}, "
        f"longest answer {c.get('longest_answer_s')} s, drained in {c.get('drained_s')} s "
        f"(bound {c.get('drain_bound_s')} s for {json.dumps(c.get('drain_backlog', {}), sort_keys=True)}), "
        f"Lever 429s {c.get('lever_429')} ({c.get('lever_429_outside')} outside storms), "
        f"restarts {json.dumps(c.get('restarts', {}), sort_keys=True)}",
    ]
    by: dict[str, list[dict[str, Any]]] = {}
    for v in report.verdict.violations:
        by.setdefault(v["invariant"], []).append(v)
    for name, found in by.items():
        lines.append(f"  VIOLATED {name}: {len(found)} times, e.g. {json.dumps(found[0], default=str)[:600]}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="scripts/nemesis", description=__doc__)
    ap.add_argument("--seed", type=int, default=None, help="replay this seed (default: a new one, printed)")
    ap.add_argument("--minutes", type=float, default=None, help="length of the fault phase (default 1)")
    ap.add_argument("--seconds", type=float, default=None, help="the same in seconds")
    ap.add_argument("--faults", default=",".join(CATEGORIES), help=f"categories, from {','.join(CATEGORIES)}")
    ap.add_argument("--schedule", type=Path, default=None, help="replay a schedule (JSON, as a failing run prints)")
    ap.add_argument("--shrink-minutes", type=float, default=10.0, help="time for shrinking a failure (0: none)")
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--rate", type=float, default=1.5, help="submissions a second from all clients together")
    ap.add_argument(
        "--drain-margin-s",
        type=float,
        default=DRAIN_MARGIN_S,
        help="the drain's bound after the faults, beyond what its backlog takes at Lever's rates",
    )
    ap.add_argument("--out", type=Path, default=None, help="where histories go (default $TMPDIR/nemesis)")
    args = ap.parse_args(argv)
    signal.signal(signal.SIGTERM, _terminated)
    seed = args.seed if args.seed is not None else random.randrange(2**31)
    seconds = args.seconds if args.seconds is not None else 60.0 * (args.minutes if args.minutes is not None else 1)
    categories = faults_.parse_categories(args.faults)
    schedule = faults_.loads(args.schedule.read_text()) if args.schedule else None
    print(
        f"nemesis: seed {seed}, {seconds:.0f} s of faults from {','.join(categories)}"
        f"{f', schedule {args.schedule}' if schedule is not None else ''}",
        flush=True,
    )
    kw = {"clients": args.clients, "rate": args.rate, "drain_margin_s": args.drain_margin_s, "out": args.out}
    report = run_once(seed, seconds, categories, schedule=schedule, **kw)
    print(summary(report), flush=True)
    if report.ok:
        return 0
    replay = f"scripts/nemesis --seed {seed} --seconds {seconds:g} --faults {','.join(categories)}"
    print(f"nemesis: FAILED with seed {seed}; replay: {replay}", flush=True)
    smallest = report.faults
    if args.shrink_minutes > 0 and report.faults:
        smallest = shrink(report, seconds, categories, args.shrink_minutes * 60, **kw)
    path = report.history.with_suffix(".schedule.json")
    path.write_text(faults_.dumps(smallest))
    print(
        f"nemesis: the smallest failing schedule found ({len(smallest)} of {len(report.faults)} faults), "
        f"seed {seed}: {[f.label() for f in smallest]}\n  replay it: scripts/nemesis --seed {seed} "
        f"--schedule {path}",
        flush=True,
    )
    return 1


if __name__ == "__main__":
    sys.exit(main())

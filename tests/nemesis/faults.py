"""The catalogue of faults, a seeded random schedule drawn from it, and the injector that applies each fault at its
time and heals it after its duration (every fault still active is healed when the run ends, whatever happens)."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import requests

from .harness import READ_TIMEOUT_S, SETTLE_S, Cluster, signal_pid
from .proxy import BLACKHOLE, PASS, REFUSE

ENDPOINTS = ("postings.apply", "opportunities.create", "opportunities.notes")  # applies, creates, notes
CATEGORIES = ("process", "redis", "disk", "clock", "lever")


@dataclass(frozen=True)
class Kind:
    name: str
    category: str
    weight: float
    duration: tuple[float, float]  # (0, 0): instant
    resource: str = ""  # two faults on one resource never overlap


CATALOGUE = [
    Kind("kill_web_worker", "process", 2, (0, 0)),
    Kind("kill_worker", "process", 2, (0, 0)),  # the worker and its scheduler, as a machine crash
    Kind("kill_scheduler", "process", 1, (0, 0)),
    Kind("kill_redis", "process", 2, (0, 0)),
    Kind("stop_web_worker", "process", 1, (1, 4), "web-stop"),
    Kind("stop_worker", "process", 2, (3, 15), "worker-stop"),  # past the lease (10 s) at times
    Kind("stop_scheduler", "process", 1, (3, 15), "scheduler-stop"),
    Kind("stop_redis", "process", 1, (1, 6), "redis-stop"),
    Kind("restart_redis", "redis", 2, (0, 0)),
    Kind("blackhole_redis", "redis", 2, (3, 20), "proxy"),  # longer than a client socket timeout (10 s) at times
    Kind("refuse_redis", "redis", 2, (2, 8), "proxy"),
    Kind("disk_full", "disk", 2, (2, 8), "disk"),
    Kind("clock_ahead", "clock", 1, (5, 20), "clock"),
    Kind("clock_behind", "clock", 1, (5, 20), "clock"),
    Kind("clock_step", "clock", 1, (5, 20), "clock"),
    Kind("lever_slow", "lever", 3, (3, 8), "latency"),  # per endpoint: slower than the read timeout, then processed
    Kind("lever_500_before", "lever", 3, (2, 6)),
    Kind("lever_500_after", "lever", 3, (2, 6)),
    Kind("lever_drop_after", "lever", 3, (2, 6)),
    Kind("lever_429_storm", "lever", 1, (2, 5), "storm"),
    Kind("lever_maintenance", "lever", 1, (3, 10), "maintenance"),
]
KINDS = {k.name: k for k in CATALOGUE}
# The first worker's clock: started again 150 s ahead or behind, or stepped 300 s forward while it runs; healed by
# starting it again on time.
CLOCK_OFFSETS = {"clock_ahead": 150, "clock_behind": -150, "clock_step": 300}
MEAN_GAP_S = 3.0  # one fault every 3 s on average


@dataclass
class Fault:
    kind: str
    at: float  # seconds after the load starts
    duration: float = 0.0
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def end(self) -> float:
        return self.at + self.duration

    def label(self) -> str:
        extra = ",".join(f"{k}={v}" for k, v in sorted(self.params.items()))
        return (
            f"{self.kind}({extra})@{self.at:.1f}s+{self.duration:.1f}s"
            if extra
            else f"{self.kind}@{self.at:.1f}s+{self.duration:.1f}s"
        )


def parse_categories(text: str) -> tuple[str, ...]:
    chosen = tuple(c.strip() for c in text.split(",") if c.strip())
    unknown = [c for c in chosen if c not in CATEGORIES]
    if unknown or not chosen:
        raise ValueError(f"--faults takes a comma-separated subset of {','.join(CATEGORIES)}; got {text!r}")
    return chosen


def schedule(seed: int, seconds: float, categories: tuple[str, ...], workers: int = 2) -> list[Fault]:
    """The faults of a run, from its seed alone: kinds by weight among the chosen categories, uniform start times in
    the fault phase, durations from each kind's range; a fault that would overlap another on its resource is dropped."""
    rng = random.Random(seed)
    kinds = [k for k in CATALOGUE if k.category in categories]
    if not kinds:
        return []
    out: list[Fault] = []
    for _ in range(max(1, int(seconds / MEAN_GAP_S))):
        kind = rng.choices(kinds, weights=[k.weight for k in kinds])[0]
        at = round(rng.uniform(1.0, max(1.5, seconds - 2.0)), 1)
        duration = round(rng.uniform(*kind.duration), 1) if kind.duration[1] else 0.0
        duration = min(duration, max(0.0, seconds - at))
        params: dict[str, Any] = {}
        if kind.name.startswith("lever_") and kind.name not in ("lever_429_storm", "lever_maintenance"):
            params["endpoint"] = rng.choice(ENDPOINTS)
        if kind.name == "lever_slow":  # past the read timeout, and at times past a retry's backoff, within the settle
            params["seconds"] = round(rng.uniform(READ_TIMEOUT_S + 1, SETTLE_S - 4), 1)
        if kind.name in ("kill_worker", "kill_scheduler", "stop_worker", "stop_scheduler"):
            params["worker"] = rng.randrange(workers)
        fault = Fault(kind.name, at, duration, params)
        resource = kind.resource + (f":{params['endpoint']}" if kind.resource == "latency" else "")
        if resource and any(_resource(f) == resource and f.at < fault.end + 1 and fault.at < f.end + 1 for f in out):
            continue
        out.append(fault)
    return sorted(out, key=lambda f: f.at)


def _resource(f: Fault) -> str:
    kind = KINDS[f.kind]
    return kind.resource + (f":{f.params['endpoint']}" if kind.resource == "latency" else "")


def dumps(faults: list[Fault]) -> str:
    return json.dumps([asdict(f) for f in faults], indent=1)


def loads(text: str) -> list[Fault]:
    return [Fault(**f) for f in json.loads(text)]


class Injector:
    """Applies a schedule in a thread: each fault at its time, healed after its duration. `heal_all()` (always
    called at the end) heals whatever is still active, so no fault outlives the run."""

    def __init__(self, cluster: Cluster, faults: list[Fault], record: Any, seed: int):
        self.cluster, self.faults, self.record = cluster, faults, record
        self.rng = random.Random(seed ^ 0x5EED)
        self.active: dict[int, tuple[Fault, Any]] = {}
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.abort = threading.Event()
        self.windows: list[dict[str, Any]] = []  # {"kind", "params", "start", "end"} in wall time
        self.thread = threading.Thread(target=self._run, name="nemesis-injector", daemon=True)

    def start(self, t0: float) -> None:
        self.t0 = t0
        self.thread.start()

    def _run(self) -> None:
        events = sorted(
            [(f.at, 0, i) for i, f in enumerate(self.faults)]
            + [(f.end, 1, i) for i, f in enumerate(self.faults) if f.duration],
            key=lambda e: e[:2],
        )
        try:
            for when, heal, i in events:
                delay = self.t0 + when - time.time()
                if delay > 0 and self.abort.wait(delay):
                    return
                if heal:
                    self._heal(i)
                else:
                    self._inject(i)
        finally:
            self.done.set()

    def _inject(self, i: int) -> None:
        f = self.faults[i]
        start = time.time()
        try:
            state = self._apply(f)
            outcome = "injected" if state is not False else "no target"
        except Exception as e:
            state, outcome = False, f"failed: {e!r}"
        self.record(
            {
                "type": "fault",
                "phase": "start",
                "fault": f.label(),
                "kind": f.kind,
                "params": f.params,
                "outcome": outcome,
            }
        )
        with self.lock:
            self.windows.append(
                {
                    "kind": f.kind,
                    "params": f.params,
                    "start": start,
                    "end": start + f.duration if f.duration else start + 0.5,
                    "i": i,
                }
            )
            if f.duration and state is not False:
                self.active[i] = (f, state)

    def _heal(self, i: int) -> None:
        with self.lock:
            entry = self.active.pop(i, None)
        if entry is None:
            return
        f, state = entry
        try:
            self._undo(f, state)
            outcome = "healed"
        except Exception as e:
            outcome = f"heal failed: {e!r}"
        with self.lock:
            for w in self.windows:
                if w["i"] == i:
                    w["end"] = time.time()
        self.record({"type": "fault", "phase": "heal", "fault": f.label(), "kind": f.kind, "outcome": outcome})

    def heal_all(self) -> None:
        self.abort.set()
        self.thread.join(10)
        for i in list(self.active):
            self._heal(i)

    # What each fault does

    def _sandbox(self, action: str, **body: Any) -> None:
        requests.post(f"{self.cluster.sandbox_url}/_sandbox/{action}", json=body, timeout=5).raise_for_status()

    def _apply(self, f: Fault) -> Any:
        c, k = self.cluster, f.kind
        w = f.params.get("worker", 0)
        if k == "kill_web_worker":
            return signal_pid(c.web_worker_pid(self.rng), signal.SIGKILL) or False
        if k == "kill_worker":
            pid = c.worker_pid(w)
            if pid is None:
                return False
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            return True
        if k == "kill_scheduler":
            return signal_pid(c.scheduler_pid(w), signal.SIGKILL) or False
        if k == "kill_redis":
            return signal_pid(c.redis.pid, signal.SIGKILL) or False
        if k in ("stop_web_worker", "stop_worker", "stop_scheduler", "stop_redis"):
            pid = {
                "stop_web_worker": lambda: c.web_worker_pid(self.rng),
                "stop_worker": lambda: c.worker_pid(w),
                "stop_scheduler": lambda: c.scheduler_pid(w),
                "stop_redis": lambda: c.redis.pid,
            }[k]()
            if pid is None:
                return False
            if k == "stop_worker":
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGSTOP)  # the worker with its scheduler
                return ("group", pid)
            return ("pid", pid) if signal_pid(pid, signal.SIGSTOP) else False
        if k == "restart_redis":
            return signal_pid(c.redis.pid, signal.SIGTERM) or False
        if k in ("blackhole_redis", "refuse_redis"):
            assert c.proxy is not None
            c.proxy.set_mode(BLACKHOLE if k == "blackhole_redis" else REFUSE)
            return True
        if k == "disk_full":
            if not c.mounted:
                return False
            c.fill_disk()
            return True
        if k in CLOCK_OFFSETS:
            if not c.clock:
                return False
            c.set_clock(CLOCK_OFFSETS[k], restart=k != "clock_step")  # a step is forward, in the running process
            return True
        tag = f"nemesis-{id(f)}"
        endpoint = f.params.get("endpoint", "")
        if k == "lever_slow":
            self._sandbox("latency", endpoint=endpoint, seconds=f.params.get("seconds", READ_TIMEOUT_S + 2))
        elif k in ("lever_500_before", "lever_500_after"):
            self._sandbox("fail", endpoint=endpoint, status=500, count=10**6, tag=tag, after=k.endswith("after"))
        elif k == "lever_drop_after":
            self._sandbox("drop", endpoint=endpoint, count=10**6, tag=tag)
        elif k == "lever_429_storm":
            self._sandbox("fail", path="/v1/", status=429, count=10**6, tag=tag, retry_after=1)
        elif k == "lever_maintenance":
            self._sandbox("maintenance", on=True)
        return tag

    def _undo(self, f: Fault, state: Any) -> None:
        c, k = self.cluster, f.kind
        if k.startswith("stop_"):
            how, pid = state
            if how == "group":
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGCONT)
            else:
                signal_pid(pid, signal.SIGCONT)
        elif k in ("blackhole_redis", "refuse_redis"):
            assert c.proxy is not None
            c.proxy.set_mode(PASS)
        elif k == "disk_full":
            c.free_disk()
        elif k in CLOCK_OFFSETS:
            c.set_clock(0, restart=True)
        elif k == "lever_slow":
            self._sandbox("latency", endpoint=f.params["endpoint"], seconds=0)
        elif k in ("lever_500_before", "lever_500_after", "lever_429_storm"):
            self._sandbox("fail", clear=True, tag=state)
        elif k == "lever_drop_after":
            self._sandbox("drop", clear=True, tag=state)
        elif k == "lever_maintenance":
            self._sandbox("maintenance", on=False)

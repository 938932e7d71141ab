"""The site's real processes for one nemesis run, all in one temp dir, all stopped at the end whatever happens:
the embedded redis-server (jobsite's own helper) behind the nemesis's proxy, the Lever sandbox in its own process in
strict window mode, `jobsite web` (gunicorn) and `jobsite worker`s with their schedulers. A process that dies is
started again, as systemd or `jobsite up` would."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis
import requests

from jobsite.redisdb.redis_server import EmbeddedRedis, connect

from .proxy import Proxy

FAKETIME_LIB = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")
TMPFS_SIZE = "48m"  # small enough to fill in a blink, large enough for a run's AOF and spool
RESTART_AFTER_S = 1.0
# The settings the processes run with: short enough for a run of a minute to see leases run out, probes, settle
# times and spool drains, and Lever's read timeout below the sandbox's slow answers.
READ_TIMEOUT_S = 3.0
SETTLE_S = 20.0
LEASE_S = 10
SITE_ENV = {
    "JOBSITE_LEVER_READ_TIMEOUT_S": str(READ_TIMEOUT_S),
    "JOBSITE_RECONCILE_SETTLE_S": str(SETTLE_S),
    "JOBSITE_DELIVERY_LEASE_S": str(LEASE_S),
    "JOBSITE_UPKEEP_INTERVAL_S": "1",
    "JOBSITE_PROBE_INTERVAL_S": "1",
    "JOBSITE_PROBE_CAP_S": "2",
    "JOBSITE_PACING_MARGIN_MS": "300",
    "JOBSITE_SPOOL_DRAIN_S": "2",
    "JOBSITE_SUBMISSIONS_PER_IP_PER_HOUR": "1000000",
    "JOBSITE_SUBMISSION_MB_PER_IP_PER_HOUR": "1000000",
    "JOBSITE_API_CLIENT_PER_HOUR": "1000000",
    "JOBSITE_SIGNIN_FAILURES_PER_IP_PER_HOUR": "1000",
    "JOBSITE_LOG_LEVEL": "WARNING",
    "JOBSITE_SECRET_KEY": "nemesis-secret",
    "JOBSITE_SOURCING": "on",
}
RECRUITER = ("rita@acme.example", "nemesis recruiter password")  # a Lever user of the sandbox, for perform_as


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"nemesis: timed out after {timeout:.0f} s waiting for {what}")


def children(pid: int) -> list[int]:
    """The pids whose parent is `pid`."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return found


def signal_pid(pid: int | None, sig: int) -> bool:
    if pid is None:
        return False
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return False
    return True


class Cluster:
    """The processes of one run. `start()` brings them up; `stop()` (always called) ends every one of them, frees
    and unmounts the data dir's tmpfs and removes the temp dir. `supervise()`, called every half second by the run,
    starts again whatever died."""

    def __init__(
        self,
        *,
        web_workers: int = 2,
        workers: int = 2,
        clock: bool = False,
        disk: bool = False,
        note: Callable[[str], None] = print,
    ):
        self.root = Path(tempfile.mkdtemp(prefix="nem"))  # short: the redis socket's path must fit in 108 bytes
        self.data = self.root / "data"
        self.data.mkdir()
        self.logs = self.root / "logs"
        self.logs.mkdir()
        self.note = note
        self.web_workers, self.n_workers = web_workers, workers
        self.mounted = False
        if disk:
            self.mounted = self._mount()
        self.clock_file = self.root / "clock"
        self.clock = clock and FAKETIME_LIB.exists()
        if clock and not self.clock:
            note(f"nemesis: {FAKETIME_LIB} is missing (apt-get install faketime): no clock faults")
        self.redis_port, self.sandbox_port, self.web_port = free_port(), free_port(), free_port()
        self.redis = EmbeddedRedis(self.data, port=self.redis_port, fsync="always", maxmemory=256 * 2**20)
        self.proxy: Proxy | None = None
        self.sandbox: subprocess.Popen[bytes] | None = None
        self.web: subprocess.Popen[bytes] | None = None
        self.workers: list[subprocess.Popen[bytes] | None] = [None] * workers
        self.dead_since: dict[str, float] = {}
        self.redis_down = False  # a fault holds Redis down: do not start it again yet
        self.stopping = False
        self.lock = threading.RLock()
        self.restarts: dict[str, int] = {}

    # Start and stop

    @property
    def sandbox_url(self) -> str:
        return f"http://127.0.0.1:{self.sandbox_port}"

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def start(self) -> None:
        self.redis.ensure(timeout_s=30)
        self.proxy = Proxy(self.redis_port)
        self.sandbox = self._spawn(
            "sandbox",
            [sys.executable, "-m", "jobsite", "sandbox", "--port", str(self.sandbox_port), "--quiet"],
            self._env(),
        )
        wait_until(self._sandbox_up, 30, "the sandbox")
        self.clock_file.write_text("+0\n")
        self._start_web()
        for i in range(self.n_workers):
            self._start_worker(i)
        wait_until(self._web_up, 60, "jobsite web")
        wait_until(
            lambda: len(self.direct_redis().smembers("rq:workers")) >= self.n_workers, 60, "the workers to register"
        )

    def strict_lever(self) -> None:
        """Lever's limits read as strictly as they can be: 2 applies and 10 calls in any second as received."""
        requests.post(
            f"{self.sandbox_url}/_sandbox/limits", json={"mode": "window", "apply_per_s": 2, "per_s": 10}, timeout=5
        ).raise_for_status()

    def stop(self, keep_logs: Path | None = None) -> None:
        """Everything ends: SIGCONT (a stopped process cannot die of SIGTERM), then SIGKILL each process group, a
        sweep of /proc for anything that still names this run's data dir, the tmpfs unmounted, the dir removed."""
        with self.lock:  # a supervisor starting a process again finishes first, and starts nothing after
            self.stopping = True
        procs = [self.web, self.sandbox, *self.workers]
        for p in procs:
            if p is not None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(p.pid, signal.SIGCONT)
                    os.killpg(p.pid, signal.SIGKILL)
        for p in procs:
            if p is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    p.wait(10)
        signal_pid(self.redis.pid, signal.SIGCONT)
        with contextlib.suppress(Exception):
            self.redis.stop(signal.SIGKILL, timeout_s=5)
        if self.proxy is not None:
            self.proxy.close()
        self._sweep()
        with contextlib.suppress(OSError):
            (self.data / "filler").unlink()
        with contextlib.suppress(OSError):
            shutil.copy(self.data / "redis" / "redis.log", self.logs / "redis.log")
        if keep_logs is not None:
            shutil.copytree(self.logs, keep_logs, dirs_exist_ok=True)
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.data)], check=False, capture_output=True, timeout=30)
            self.mounted = False
        shutil.rmtree(self.root, ignore_errors=True)

    def _sweep(self) -> None:
        for _ in range(3):
            left = self.leftovers()
            if not left:
                return
            for pid in left:
                signal_pid(pid, signal.SIGCONT)
                signal_pid(pid, signal.SIGKILL)
            time.sleep(0.2)

    def leftovers(self) -> list[int]:
        """Processes of this run still alive: those that name its dir in their command line or environment, or work
        in it (redis-server renames itself and inherits no environment of ours)."""
        mark = str(self.root).encode()
        found = []
        for proc in Path("/proc").glob("[0-9]*"):
            with contextlib.suppress(OSError):
                if proc.name == str(os.getpid()):
                    continue
                cwd = os.readlink(proc / "cwd")
                if (
                    mark in (proc / "cmdline").read_bytes()
                    or mark in (proc / "environ").read_bytes()
                    or cwd.startswith(str(self.root))
                    or cwd == "/redis (deleted)"  # its tmpfs lazily unmounted under it
                ):
                    found.append(int(proc.name))
        return found

    def _mount(self) -> bool:
        if os.geteuid() != 0:
            self.note("nemesis: not root, so no tmpfs for the data dir: no disk faults")
            return False
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE},mode=0700", "tmpfs", str(self.data)],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if done.returncode:
            self.note(f"nemesis: cannot mount a tmpfs ({done.stderr.strip()}): no disk faults")
            return False
        return True

    def _env(self, **extra: str) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("JOBSITE_", "LEVER_", "REDIS_", "FAKETIME", "LD_PRELOAD"))
        }
        env.update(
            SITE_ENV,
            JOBSITE_DATA_DIR=str(self.data),
            JOBSITE_PUBLIC_URL=self.web_url,
            REDIS_URL=f"redis://127.0.0.1:{self.proxy.port if self.proxy else self.redis_port}/0",
            LEVER_BASE_URL=f"{self.sandbox_url}/v1",
            JOBSITE_NEMESIS_ROOT=str(self.root),
        )
        env.update(extra)
        return env

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        with open(self.logs / f"{name}.log", "ab") as log:
            return subprocess.Popen(
                argv, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
            )

    def _start_web(self) -> None:
        self.web = self._spawn(
            "web",
            [sys.executable, "-m", "jobsite", "web", "--port", str(self.web_port), "--workers", str(self.web_workers)],
            self._env(),
        )

    def _start_worker(self, i: int) -> None:
        extra = {}
        if i == 0 and self.clock:  # the first worker's clock is the one the clock faults move
            # libfaketime 0.9.10 fails every sleep with EINVAL under FAKETIME_DONT_FAKE_MONOTONIC, so the monotonic
            # clock moves with the offset: the faults step it forward only (a step back would stretch every wait in
            # the process by the step, which no real clock does to a monotonic one).
            extra = {
                "LD_PRELOAD": str(FAKETIME_LIB),
                "FAKETIME_TIMESTAMP_FILE": str(self.clock_file),
                "FAKETIME_CACHE_DURATION": "1",
            }
        self.workers[i] = self._spawn(f"worker{i}", [sys.executable, "-m", "jobsite", "worker"], self._env(**extra))

    def _sandbox_up(self) -> bool:
        with contextlib.suppress(requests.RequestException):
            return requests.get(f"{self.sandbox_url}/_sandbox/", timeout=2).ok
        return False

    def _web_up(self) -> bool:
        with contextlib.suppress(requests.RequestException):
            return requests.get(f"{self.web_url}/healthz", timeout=2).ok
        return False

    def direct_redis(self) -> redis.Redis:
        """A connection to Redis itself, not through the proxy (setup and the checker's reads)."""
        return connect(f"redis://127.0.0.1:{self.redis_port}/0", retries=0)

    # Keeping it running

    def supervise(self) -> None:
        """Start again, after RESTART_AFTER_S, whatever died (a kill -9 fault), as a supervisor would."""
        with self.lock:
            if self.stopping:
                return
            now = time.monotonic()
            for name, proc, start in self._managed():
                if proc is not None and proc.poll() is None:
                    self.dead_since.pop(name, None)
                    continue
                if proc is not None:  # reap what is left of its group (a scheduler, gunicorn's workers)
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(proc.pid, signal.SIGKILL)
                died = self.dead_since.setdefault(name, now)
                if now - died >= RESTART_AFTER_S:
                    self.dead_since.pop(name)
                    self.restarts[name] = self.restarts.get(name, 0) + 1
                    start()
            if not self.redis_down and not self.redis.running():
                died = self.dead_since.setdefault("redis", now)
                if now - died >= RESTART_AFTER_S:
                    self.dead_since.pop("redis")
                    self.restarts["redis"] = self.restarts.get("redis", 0) + 1
                    try:
                        self.redis.ensure(timeout_s=5)
                    except RuntimeError as e:  # e.g. a full disk: tried again at the next call
                        self.note(f"nemesis: redis-server did not start again: {e}")
                        self.dead_since["redis"] = time.monotonic()

    def _managed(self) -> list[tuple[str, subprocess.Popen[bytes] | None, Callable[[], None]]]:
        out: list[tuple[str, subprocess.Popen[bytes] | None, Callable[[], None]]] = [("web", self.web, self._start_web)]
        out += [(f"worker{i}", w, lambda i=i: self._start_worker(i)) for i, w in enumerate(self.workers)]
        return out

    # Targets of process faults

    def web_worker_pid(self, rng: Any) -> int | None:
        pids = children(self.web.pid) if self.web else []
        return rng.choice(sorted(pids)) if pids else None

    def worker_pid(self, i: int) -> int | None:
        w = self.workers[i]
        return w.pid if w is not None and w.poll() is None else None

    def scheduler_pid(self, i: int) -> int | None:
        """RQ's scheduler process: a child of the worker that holds the scheduler's locks (of worker `i` first)."""
        for j in [i] + [j for j in range(self.n_workers) if j != i]:
            pid = self.worker_pid(j)
            kids = children(pid) if pid else []
            if kids:
                return kids[0]
        return None

    def set_clock(self, offset_s: int, *, restart: bool) -> None:
        """The first worker's clock (and its scheduler's), `offset_s` from the true time: stepped in the running
        process (re-read within 1 s), or with `restart` from the start of a new one (the old one killed, as a machine
        that comes back with a stale clock)."""
        tmp = self.clock_file.with_suffix(".tmp")
        tmp.write_text(f"{offset_s:+d}\n")
        tmp.replace(self.clock_file)
        if restart:
            with self.lock:
                if self.stopping:
                    return
                w = self.workers[0]
                if w is not None:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(w.pid, signal.SIGKILL)
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        w.wait(10)
                self._start_worker(0)

    def fill_disk(self) -> None:
        """Fill the data dir's tmpfs to the last byte."""
        chunk = b"\0" * 2**20
        with contextlib.suppress(OSError), open(self.data / "filler", "ab") as f:
            while True:
                f.write(chunk)
                f.flush()
        with contextlib.suppress(OSError), open(self.data / "filler", "ab") as f:  # the last partial megabyte
            while True:
                f.write(b"\0" * 4096)
                f.flush()

    def free_disk(self) -> None:
        with contextlib.suppress(OSError):
            (self.data / "filler").unlink()

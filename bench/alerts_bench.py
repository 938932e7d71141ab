"""Job alerts at scale, the sending side (issue 31, item 4): one new posting against N confirmed subscriptions with
varied filters, then E alerts sent to a local SMTP sink at the paced rate by W `jobsite worker` processes.

An embedded redis-server holds N confirmed subscriptions (bench/alert_matching_bench.py's mix of filters, daily
digests, plus E instant ones that ask for the new posting's team); the Lever sandbox publishes the posting. The bench
times the matching job (matching and giving the posting to everyone it matches: wall and CPU time of the worker),
prints Redis memory per subscription before and after, then starts W workers and times the E emails into an aiosmtpd
sink under JOBSITE_MAIL_PER_SECOND: elapsed time, the rate against the pace, the most in any one second of the
sink's clock, each address once, and each worker's peak memory (VmHWM).

Run: .venv/bin/python bench/alerts_bench.py [--subscriptions 100000] [--emails 10000] [--workers 2]
     [--per-second 200]   (--workers 0: the matching job alone)
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from aiosmtpd.controller import Controller

from bench.alert_matching_bench import fill as fill_varied
from bench.common import free_port, temp_dir
from jobsite.alerts import fanout
from jobsite.alerts import subscriptions as subs
from jobsite.postings import published
from jobsite.redisdb.clock import server_now
from jobsite.redisdb.redis_server import EmbeddedRedis, connect
from jobsite.sandbox import SandboxServer
from jobsite.sandbox.seed import new_posting
from jobsite.services import Services
from jobsite.settings import load_settings

TEAM = "Bench Alerts"
PUBLIC_URL = "https://careers.acme.test"


class Sink:
    """An SMTP sink: when each message arrived, and to whom (the content is dropped)."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.to: Counter[str] = Counter()
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.times.append(time.time())
            self.to.update(envelope.rcpt_tos)
        return "250 OK"


def fill_instant(r: Any, n: int) -> None:
    """`n` confirmed instant subscriptions to TEAM, written as confirming writes one."""
    now = time.time()
    for start in range(0, n, 1000):
        with r.pipeline(transaction=False) as pipe:
            for i in range(start, min(n, start + 1000)):
                sub = subs.Subscription(
                    id=f"i{i:023x}",
                    email=f"alert{i}@example.com",
                    filters={"team": TEAM},
                    frequency=subs.Frequency.INSTANT,
                    language=("en", "de", "fr")[i % 3],
                    state=subs.State.CONFIRMED,
                    created_at=now,
                    confirmed_at=now,
                    stopped_at=None,
                )
                subs._move(pipe, None, sub, now)
                pipe.sadd(subs.ADDR.format(sub.address), sub.id)
            pipe.execute()


def most_in_a_second(times: list[float]) -> int:
    times, most, start = sorted(times), 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= 1.0:
            start += 1
        most = max(most, end - start + 1)
    return most


def peak_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subscriptions", type=int, default=100_000)
    parser.add_argument("--emails", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--per-second", type=int, default=200)
    args = parser.parse_args()
    root = temp_dir("alerts-bench-")
    server = EmbeddedRedis(root)
    server.ensure()
    sandbox = SandboxServer().start()
    sink, smtp_port = Sink(), free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    procs: list[subprocess.Popen[bytes]] = []
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JOBSITE_", "LEVER_", "REDIS_"))}
    env.update(
        REDIS_URL=server.url,
        LEVER_BASE_URL=f"{sandbox.url}/v1",
        JOBSITE_SECRET_KEY="bench-secret-key-0123",  # noqa: S106 (a bench's own)
        JOBSITE_SMTP_URL=f"smtp://127.0.0.1:{smtp_port}",
        JOBSITE_PUBLIC_URL=PUBLIC_URL,
        JOBSITE_MAIL_ON_UNFIXED_PYTHON="1",
        JOBSITE_MAIL_PER_SECOND=str(args.per_second),
        JOBSITE_ALERT_GATHER_S="1",
        JOBSITE_UPKEEP_INTERVAL_S="1",
        JOBSITE_LOG_LEVEL="WARNING",
        JOBSITE_DATA_DIR=str(root / "site"),
    )
    try:
        svc = Services(load_settings(env))
        r = connect(server.url)
        r.flushall()
        published.notice(r, [p["id"] for p in svc.catalog.refresh_postings().data])  # what was there
        before = int(r.info("memory")["used_memory"])
        started = time.perf_counter()
        varied = args.subscriptions - args.emails
        fill_varied(r, varied, random.Random(31))
        fill_instant(r, args.emails)
        written = int(r.info("memory")["used_memory"])
        print(
            f"{args.subscriptions} confirmed subscriptions ({varied} varied, {args.emails} instant for the new "
            f"posting's team) written in {time.perf_counter() - started:.1f} s; Redis memory per subscription: "
            f"{(written - before) / args.subscriptions:.0f} bytes"
        )

        with sandbox.state.lock:
            p = new_posting(1, team=TEAM, text="Bench Engineer", now_ms=int(time.time() * 1000))
            sandbox.state.postings[p["id"]] = p
        svc.catalog.refresh_postings()  # the catalog announces it (in the background)
        announced = p["id"]
        while announced not in published.waiting(r, time.time() + 86400):
            time.sleep(0.01)
        wall, cpu = time.perf_counter(), time.process_time()
        matched = list(subs.matching(r, svc.catalog.posting(announced)))
        print(
            f"matching alone: {(time.perf_counter() - wall) * 1000:.0f} ms wall, "
            f"{(time.process_time() - cpu) * 1000:.0f} ms CPU, {len(matched)} subscriptions"
        )
        wall, cpu = time.perf_counter(), time.process_time()
        said = fanout.fan_out(svc.alerting, announced)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        given = int(r.zcard(fanout.DUE))
        print(
            f"matching job for one new posting: {wall * 1000:.0f} ms wall, {cpu * 1000:.0f} ms worker CPU "
            f"({said}; {given} people with it pending)"
        )
        after = int(r.info("memory")["used_memory"])
        print(
            f"Redis memory after the fan-out: {(after - written) / max(1, given):.0f} bytes per person given it "
            f"(the at-most-once record, the pending posting, the due entry)"
        )
        due_now = server_now(r)
        instant = [x.decode() for x in r.zrangebyscore(fanout.DUE, 0, due_now + 3600)]
        r.zadd(fanout.DUE, dict.fromkeys(instant, due_now), xx=True)  # the gathering is over
        expected = len(instant)
        print(
            f"{expected} instant alerts due ({args.emails} asked for the team, the rest match anything); "
            f"{given - expected} wait for their daily or weekly digest"
        )

        if not args.workers:
            return
        started = time.perf_counter()
        for i in range(args.workers):
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "jobsite", "worker"],
                    start_new_session=True,
                    env={**env, "JOBSITE_DATA_DIR": str(root / f"worker-{i}")},
                )
            )
        deadline = time.monotonic() + 3 * expected / min(args.per_second, 50) + 120
        while len(sink.times) < expected and time.monotonic() < deadline:
            time.sleep(0.5)
        elapsed = time.perf_counter() - started
        peaks = [peak_kb(p.pid) for p in procs]
        got = len(sink.times)
        span = max(sink.times) - min(sink.times) if got > 1 else 0.0
        bulk = max(1, args.per_second - -(-args.per_second // 5)) if args.per_second >= 2 else args.per_second
        print(
            f"{got} of {expected} alert emails to the sink with {args.workers} workers in {elapsed:.1f} s "
            f"(workers' start included); first to last {span:.1f} s = {got / span if span else 0:.0f}/s "
            f"against JOBSITE_MAIL_PER_SECOND={args.per_second} (alerts may use {bulk}/s)"
        )
        print(
            f"most in any one second: {most_in_a_second(sink.times)}; addresses sent twice: "
            f"{sum(1 for n in sink.to.values() if n > 1)}"
        )
        print(f"worker peak memory (VmHWM): {', '.join(f'{kb / 1024:.0f} MB' for kb in peaks)}")
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(30)
        controller.stop()
        sandbox.stop()
        server.stop()


if __name__ == "__main__":
    main()

"""Intake during a Lever maintenance window with files in Redis, on this machine, with the production processes
(gunicorn web, one worker, embedded redis-server) and the sandbox.

Prints: applications with a resume accepted per second and p50/p99 acceptance latency; the CPU time the web
processes and Redis spend per application (what to compare on a machine shared with other jobs); Redis memory per
waiting application (INFO used_memory before and after, once every application waits for Lever, divided by their number)
with MEMORY USAGE of one application's keys (a waiting application has no RQ job: it is parked behind the gate);
and the cost of the memory guard's INFO round trip.

With `--files s3` the files go to an S3-compatible store (moto's standalone server, in this process) through
JOBSITE_FILES_URL; with `--replicas 1` the embedded Redis gets a replica (valkey-server on a TCP port) and the web
answers only once WAIT has each application on it (JOBSITE_REDIS_MIN_REPLICAS=1).

Run: .venv/bin/python bench/intake_bench.py [--applications 300] [--clients 20] [--resume-kb 100] [--files s3]
     [--replicas 1]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import redis
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import bench_posting, free_port, start_site, stop, wait_http
from jobsite.records import store, uploads
from jobsite.redisdb.redis_server import EmbeddedRedis, connect, memory, redis_server_binary
from jobsite.sandbox import SandboxServer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--applications", type=int, default=300)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--resume-kb", type=int, default=100, help="size of each resume; 0 sends JSON only")
    parser.add_argument("--files", choices=("redis", "s3"), default="redis", help="where the files are kept")
    parser.add_argument("--replicas", type=int, choices=(0, 1), default=0, help="a replica the web WAITs for")
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    sandbox = SandboxServer().start()
    sb = sandbox.state
    parity = 0 if args.resume_kb else 1  # the seed's even postings ask for a resume
    pid, body = bench_posting(sb, parity)
    extra, s3 = {}, None
    if args.files == "s3":
        from moto.server import ThreadedMotoServer

        s3_port = free_port()
        s3 = ThreadedMotoServer(ip_address="127.0.0.1", port=s3_port, verbose=False)
        s3.start()
        extra = {
            "JOBSITE_FILES_URL": "s3://bench/files",
            "AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{s3_port}",
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        os.environ.update(extra)
        import boto3

        boto3.client("s3").create_bucket(Bucket="bench")
    primary_port = free_port()
    if args.replicas:
        extra.update(JOBSITE_REDIS_PORT=str(primary_port), JOBSITE_REDIS_MIN_REPLICAS=str(args.replicas))
    data, site, web, worker = start_site(sandbox.url, "jsi", **extra)
    replica = None
    try:
        wait_http(site + "/healthz")
        r = connect(EmbeddedRedis(data).url)
        if args.replicas:
            replica = subprocess.Popen(
                [
                    redis_server_binary(),
                    "--port",
                    str(free_port()),
                    "--bind",
                    "127.0.0.1",
                    "--replicaof",
                    "127.0.0.1",
                    str(primary_port),
                    "--dir",
                    tempfile.mkdtemp(prefix="jsir"),
                    "--appendonly",
                    "yes",
                    "--appendfsync",
                    "always",
                    "--save",
                    "",
                ],
                stdout=subprocess.DEVNULL,
            )
            while r.info("replication").get("slave0", {}).get("state") != "online":
                time.sleep(0.1)
        requests.get(f"{site}/jobs/{pid}/apply", timeout=10)  # the form was seen: the cache is warm
        sb.switches.maintenance = True
        session = requests.Session()
        session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=args.clients))
        resumes = [
            b"%PDF-1.7\n" + os.urandom(args.resume_kb * 1024 - 9) if args.resume_kb else b""
            for _ in range(args.applications)
        ]

        def submit(n: int) -> float:
            url = f"{site}/api/v1/postings/{pid}/applications"
            t = time.perf_counter()
            if args.resume_kb:
                answer = session.post(
                    url,
                    data={"application": json.dumps(body(n))},
                    files={"resume": (f"cv{n}.pdf", resumes[n])},
                    timeout=30,
                )
            else:
                answer = session.post(url, json=body(n), timeout=30)
            assert answer.status_code == 202, answer.text
            return time.perf_counter() - t

        submit(args.applications - 1)  # the first one closes the gate: measure from the state a window is in
        deadline = time.monotonic() + 60
        while store.counts(r)["waiting"] < 1 and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(3)  # Redis shrinks idle clients' query buffers within a couple of seconds
        before = memory(r).used

        web_cpu, worker_cpu, redis_cpu = cpu_s(web.pid), cpu_s(worker.pid), redis_cpu_s(r)
        t0 = time.perf_counter()
        with ThreadPoolExecutor(args.clients) as pool:
            latencies = sorted(pool.map(submit, range(args.applications - 1)))
        accept_s = time.perf_counter() - t0
        web_cpu, worker_cpu, redis_cpu = (
            cpu_s(web.pid) - web_cpu,
            cpu_s(worker.pid) - worker_cpu,
            redis_cpu_s(r) - redis_cpu,
        )
        deadline = time.monotonic() + 120
        while (
            sum(store.counts(r)[s] for s in ("waiting", "delivering")) < args.applications
            and time.monotonic() < deadline
        ):
            time.sleep(0.2)
        counts = store.counts(r)
        time.sleep(3)
        after = memory(r).used
        one = store.load_many(r, store.receipts(r, store.State.WAITING, 2))[-1]
        usage = {
            "record": r.memory_usage(store.record_key(one.receipt)) or 0,
            "files": r.memory_usage(uploads.KEY.format(one.receipt)) or 0,
            "attempts": r.memory_usage(store.ATTEMPTS.format(one.receipt)) or 0,
        }
        t = time.perf_counter()
        for _ in range(2000):
            memory(r)
        info_us = (time.perf_counter() - t) / 2000 * 1e6
    finally:
        stop(worker)
        stop(web)
        if replica is not None:
            replica.kill()
            replica.wait()
        if s3 is not None:
            s3.stop()
        sandbox.stop()
    n = args.applications - 1
    what = f"a {args.resume_kb} KB resume each (multipart)" if args.resume_kb else "no file (JSON)"
    setup = (", files in S3 (moto)" if args.files == "s3" else "") + (
        f", {args.replicas} replica (WAIT)" if args.replicas else ""
    )
    print(
        f"{n} applications with {what} from {args.clients} concurrent clients, Lever in maintenance "
        f"(gunicorn web, 1 worker, embedded redis{setup})"
    )
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    print(
        f"accepted: {n / accept_s:.0f} applications/s; acceptance latency p50 "
        f"{statistics.median(latencies) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms"
    )
    print(
        f"CPU per application while accepting: web {web_cpu / n * 1000:.2f} ms, worker {worker_cpu / n * 1000:.2f} ms, "
        f"Redis {redis_cpu / n * 1000:.2f} ms (the figures to compare on a loaded machine: the rate above follows the "
        "load of the other jobs)"
    )
    print(
        f"Redis memory per waiting application: {(after - before) / n:,.0f} bytes "
        f"(used_memory {before:,} -> {after:,}; {', '.join(f'{k} {v}' for k, v in counts.items() if v)})"
    )
    print(
        f"  MEMORY USAGE of one: record {usage['record']:,} B, files {usage['files']:,} B, attempt log "
        f"{usage['attempts']:,} B (the rest: its entries in the indexes)"
    )
    print(f"memory guard: INFO memory round trip {info_us:.0f} us (unix socket, this process)")


def cpu_s(pid: int) -> float:
    """CPU seconds (user and system) of a process and its children alive now (gunicorn's master and workers)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile
        if stat.parent.name == str(pid) or fields[1] == str(pid):  # fields[1]: the parent's pid
            total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


def redis_cpu_s(r: redis.Redis) -> float:
    """CPU seconds the Redis server has used so far."""
    info = r.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


if __name__ == "__main__":
    main()

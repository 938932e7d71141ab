"""Applications during and after a Lever maintenance window, on this machine, with the production processes
(gunicorn web, one worker, embedded redis-server) and the sandbox over HTTP.

Prints: applications accepted per second and p50/p99 acceptance latency while Lever is in maintenance; the drain
rate after the window (into the sandbox's strict window mode) as a ratio of the configured apply limit; seconds from
the end of maintenance to the first delivery (one window; bench/first_delivery_bench.py takes several).

Run: .venv/bin/python bench/delivery_bench.py [--applications 300] [--window 75] [--clients 20]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import bench_posting, start_site, stop, wait_http
from jobsite.sandbox import SandboxServer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--applications", type=int, default=300)
    parser.add_argument("--window", type=float, default=75, help="seconds of maintenance")
    parser.add_argument("--clients", type=int, default=20)
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    sandbox = SandboxServer().start()
    sb = sandbox.state
    sb.switches.mode = "window"  # strict: at most 2 applies, 10 calls in any 1 s as received (no Retry-After)
    sb.reset_buckets()
    pid, body = bench_posting(sb)
    _data, site, web, worker = start_site(sandbox.url, "jsd")
    try:
        wait_http(site + "/healthz")
        requests.get(f"{site}/jobs/{pid}/apply", timeout=10)  # the form was seen: the cache is warm
        sb.switches.maintenance = True
        window_start = time.monotonic()
        session = requests.Session()
        session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=args.clients))

        def submit(n: int) -> float:
            t = time.perf_counter()
            r = session.post(f"{site}/api/v1/postings/{pid}/applications", json=body(n), timeout=30)
            assert r.status_code == 202, r.text
            return time.perf_counter() - t

        t0 = time.perf_counter()
        with ThreadPoolExecutor(args.clients) as pool:
            latencies = sorted(pool.map(submit, range(args.applications)))
        accept_s = time.perf_counter() - t0
        while time.monotonic() - window_start < args.window:
            time.sleep(0.5)
        probes = sum(1 for q in sb.requests if q["endpoint"] in ("postings.apply", "stages.list"))
        sb.switches.maintenance = False
        window_end = time.time()
        deadline = time.monotonic() + args.applications / 2 * 2 + 120
        while len(sb.applications) < args.applications and time.monotonic() < deadline:
            time.sleep(0.2)
        received = [a["receivedAt"] / 1000 for a in sb.applications]
        too_many = sum(1 for q in sb.requests if q["status"] == 429)
    finally:
        stop(worker)
        stop(web)
        sandbox.stop()
    apply_limit = 2.0
    drain_rate = (len(received) - 1) / (received[-1] - received[0]) if len(received) > 1 else 0.0
    print(
        f"{args.applications} applications from {args.clients} concurrent clients, Lever in maintenance "
        f"for {args.window:.0f} s (gunicorn web, 1 worker, embedded redis, sandbox)"
    )
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    print(
        f"accepted: {args.applications / accept_s:.0f} applications/s; acceptance latency "
        f"p50 {statistics.median(latencies) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms"
    )
    print(f"probes sent during the window (reads, and the apply that closed the gate): {probes}")
    print(
        f"delivered after the window: {len(received)}/{args.applications}, exactly once: "
        f"{len({a['body']['personalInformation'][1]['value'] for a in sb.applications}) == len(received)}, "
        f"429 answers: {too_many}"
    )
    print(
        f"drain rate: {drain_rate:.2f}/s vs apply limit {apply_limit:.2f}/s -> ratio {drain_rate / apply_limit:.2f}"
        f" (target >= 0.9)"
    )
    print(
        f"end of maintenance to first delivery: {received[0] - window_end:.1f} s (a read probe every 2 s; "
        "bench/first_delivery_bench.py measures it over several windows)"
    )


if __name__ == "__main__":
    main()

"""Job list page from a warm cache under gunicorn vs a minimal Flask route returning the same bytes from memory,
and how many Lever requests a burst of 500 concurrent requests on a cold cache causes.

Run: .venv/bin/python bench/catalog_bench.py [--seconds 10]   (load from wrk when installed: apt-get install wrk;
else from a Python client, which loads the 2 cores itself and so gives lower figures for both)
"""

from __future__ import annotations

import argparse
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import logging  # noqa: E402

from bench.common import PY, free_port, load, spawn, stop, temp_dir, wait_http  # noqa: E402
from jobsite.sandbox import SandboxServer  # noqa: E402

GUNICORN = ["-k", "gevent", "--worker-connections", "1000", "-w", "2", "--log-level", "warning"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    sandbox = SandboxServer().start()
    data = temp_dir("jsb")
    port, base_port = free_port(), free_port()
    env = {"JOBSITE_DATA_DIR": str(data), "LEVER_BASE_URL": f"{sandbox.url}/v1", "JOBSITE_WEB_WORKERS": "2"}
    web = spawn([PY, "-m", "jobsite", "web", "--port", str(port)], env)
    try:
        site = f"http://127.0.0.1:{port}/"
        wait_http(site + "healthz")
        # Cold cache: 500 concurrent requests, count Lever's list requests.
        before = len(sandbox.state.requests)
        with ThreadPoolExecutor(500) as pool:
            statuses = list(pool.map(lambda _: requests.get(site, timeout=60).status_code, range(500)))
        lever_calls = [q for q in sandbox.state.requests[before:] if q["endpoint"] == "postings.list"]
        public = [p for p in sandbox.state.postings.values()
                  if p["state"] == "published" and "public" in (p["distributionChannels"] or [])]
        pages = -(-len(public) // 100)
        body = requests.get(site, timeout=5).content
        (data / "body.html").write_bytes(body)
        baseline = spawn([PY, "-m", "gunicorn", *GUNICORN, "-b", f"127.0.0.1:{base_port}", "bench.baseline_app:app"],
                         {"BASELINE_BODY": str(data / "body.html")})
        try:
            wait_http(f"http://127.0.0.1:{base_port}/")
            load(site, 2)  # warm-up
            jobsite_run = load(site, args.seconds)
            load(f"http://127.0.0.1:{base_port}/", 2)
            base_run = load(f"http://127.0.0.1:{base_port}/", args.seconds)
        finally:
            stop(baseline)
    finally:
        stop(web)
        sandbox.stop()
    print(f"job list page: {len(body)} bytes, gunicorn -w 2 gevent, wrk -t2 -c32, {args.seconds:.0f} s each")
    print(f"{'':28}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}")
    for name, run in (("jobsite (warm cache)", jobsite_run), ("minimal Flask, same bytes", base_run)):
        print(f"{name:28}{run['rps']:>10.0f}{run['p50_ms']:>10.2f}{run['p99_ms']:>10.2f}{run['errors']:>8.0f}")
    print(f"ratio jobsite / minimal: {jobsite_run['rps'] / base_run['rps']:.2f} (target >= 0.6)")
    print(f"cold cache, 500 concurrent requests: {statuses.count(200)} x 200, "
          f"{len(lever_calls)} Lever list request(s) (target: {pages}, one per page of the postings list)")


if __name__ == "__main__":
    main()

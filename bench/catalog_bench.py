"""Job list page from a warm cache under gunicorn vs a minimal Flask route returning the same bytes from memory,
and how many Lever requests a burst of 500 concurrent requests on a cold cache causes.

Also the cost of one request split into its parts: the app as a WSGI callable in this process (jobsite's front
cache lookup, the security headers around it; the minimal route through Flask), and the rest, which gunicorn, gevent,
the kernel and wrk spend (the 2 cores' time per request under load, less the app's part).

Run: .venv/bin/python bench/catalog_bench.py [--seconds 10] [--rounds 2]
wrk gives the load: `apt-get install -y wrk` (Debian/Ubuntu), `brew install wrk` (macOS), or build it from
https://github.com/wg/wrk. Without it a Python client loads the 2 cores itself and gives lower figures for both.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests
from werkzeug.test import EnvironBuilder

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import logging

from bench.common import PY, free_port, load, spawn, stop, temp_dir, wait_http
from jobsite.sandbox import SandboxServer

CORES = 2  # the load's CPU: both gunicorn workers and wrk share them
CALLS = 20_000


def per_call_us(app: Any, environ: dict[str, Any], calls: int = CALLS) -> tuple[float, bytes]:
    """Microseconds per call of a WSGI app on one request (body read and closed, as a server does), and the body."""

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        return None

    body = b""
    t = time.perf_counter()
    for _ in range(calls):
        answer = app(dict(environ), start_response)
        body = b"".join(answer)
        if hasattr(answer, "close"):
            answer.close()
    return (time.perf_counter() - t) / calls * 1e6, body


def in_process(env: dict[str, str], port: int, body_file: Path) -> dict[str, float]:
    """The app's own part of a request, no server: jobsite (front cache hit, inside the security headers) and the
    minimal Flask route, each over the same warm cache the served processes use."""
    from jobsite.settings import load_settings
    from jobsite.web.app import create_app

    os.environ["BASELINE_BODY"] = str(body_file)
    from bench.baseline_app import app as baseline

    jobsite = create_app(load_settings({**os.environ, **env}))
    environ = EnvironBuilder(path="/", headers={"Host": f"127.0.0.1:{port}"}).get_environ()
    per_call_us(jobsite.wsgi_app, environ, 100)  # the catalog read and the first render, then hits
    front_cache = jobsite.wsgi_app.app  # type: ignore[attr-defined]  # SecurityHeaders(FrontCache(Flask))
    whole, body = per_call_us(jobsite.wsgi_app, environ)
    lookup, _ = per_call_us(front_cache, environ)
    base, base_body = per_call_us(baseline.wsgi_app, environ)
    assert body == base_body == body_file.read_bytes(), "the two apps answer different bytes"
    return {"jobsite": whole, "lookup": lookup, "headers": whole - lookup, "minimal": base}


GUNICORN = ["-k", "gevent", "--worker-connections", "1000", "-w", "2", "--log-level", "warning"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10, help="of load on each app, split over the rounds")
    parser.add_argument("--rounds", type=int, default=2, help="the apps take turns; the best round of each counts")
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    sandbox = SandboxServer().start()
    data = temp_dir("jsb")
    port, base_port = free_port(), free_port()
    env = {"JOBSITE_DATA_DIR": str(data), "LEVER_BASE_URL": f"{sandbox.url}/v1", "JOBSITE_WEB_WORKERS": "2"}
    web = spawn([PY, "-m", "jobsite", "web", "--port", str(port)], env)
    try:
        site = f"http://127.0.0.1:{port}/"
        wait_http(site + "healthz", 120)  # gunicorn and Redis start slowly on a loaded machine
        # Cold cache: 500 concurrent requests, count Lever's list requests.
        before = len(sandbox.state.requests)
        with ThreadPoolExecutor(500) as pool:
            statuses = list(pool.map(lambda _: requests.get(site, timeout=60).status_code, range(500)))
        lever_calls = [q for q in sandbox.state.requests[before:] if q["endpoint"] == "postings.list"]
        public = [
            p
            for p in sandbox.state.postings.values()
            if p["state"] == "published" and "public" in (p["distributionChannels"] or [])
        ]
        pages = -(-len(public) // 100)
        body = requests.get(site, timeout=5).content
        (data / "body.html").write_bytes(body)
        baseline = spawn(
            [PY, "-m", "gunicorn", *GUNICORN, "-b", f"127.0.0.1:{base_port}", "bench.baseline_app:app"],
            {"BASELINE_BODY": str(data / "body.html")},
        )
        try:
            wait_http(f"http://127.0.0.1:{base_port}/")
            load(site, 2)  # warm-up
            load(f"http://127.0.0.1:{base_port}/", 2)
            # Turn about, best run of each: on a shared machine the load of other jobs changes from one run to the next.
            runs: dict[str, list[dict[str, float]]] = {"jobsite": [], "minimal": []}
            for _ in range(args.rounds):
                runs["jobsite"].append(load(site, args.seconds / args.rounds))
                runs["minimal"].append(load(f"http://127.0.0.1:{base_port}/", args.seconds / args.rounds))
            jobsite_run, base_run = (max(runs[k], key=lambda run: run["rps"]) for k in ("jobsite", "minimal"))
        finally:
            stop(baseline)
        parts = in_process(env, port, data / "body.html")
    finally:
        stop(web)
        sandbox.stop()
    tool = "wrk -t2 -c32" if shutil.which("wrk") else "a Python client (no wrk: apt-get install -y wrk)"
    print(
        f"job list page: {len(body)} bytes, gunicorn -w 2 gevent, {tool}, {args.seconds:.0f} s each "
        f"in {args.rounds} turns (best turn shown)"
    )
    print(f"{'':28}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}")
    for name, run in (("jobsite (warm cache)", jobsite_run), ("minimal Flask, same bytes", base_run)):
        print(f"{name:28}{run['rps']:>10.0f}{run['p50_ms']:>10.2f}{run['p99_ms']:>10.2f}{run['errors']:>8.0f}")
    ratio = jobsite_run["rps"] / base_run["rps"]
    print(f"ratio jobsite / minimal: {ratio:.2f} (target >= 0.9)")
    total = {"jobsite": CORES / jobsite_run["rps"] * 1e6, "minimal": CORES / base_run["rps"] * 1e6}
    print(f"per request, µs of the {CORES} cores' time  {'jobsite':>10}{'minimal':>10}")
    rows = [
        ("  front cache lookup (in process)", parts["lookup"], None),
        ("  security headers, request id", parts["headers"], None),
        ("  Flask route (in process)", None, parts["minimal"]),
        (
            "  gunicorn, gevent, kernel, wrk (rest)",
            total["jobsite"] - parts["jobsite"],
            total["minimal"] - parts["minimal"],
        ),
        ("  total (cores / req/s)", total["jobsite"], total["minimal"]),
    ]
    for name, ours, theirs in rows:
        cells = "".join(f"{'—' if v is None else f'{v:.1f}':>10}" for v in (ours, theirs))
        print(f"{name:<40}{cells}")
    print(
        f"cold cache, 500 concurrent requests: {statuses.count(200)} x 200, "
        f"{len(lever_calls)} Lever list request(s) (target: {pages}, one per page of the postings list)"
    )


if __name__ == "__main__":
    main()

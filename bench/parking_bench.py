"""How many junk bytes one outsider can park in Redis while Lever is in maintenance, and whether a real candidate
still gets in afterwards (issue 21, item 3).

An embedded redis-server with maxmemory 150mb (as in the issue), no worker (nothing leaves Redis, as during a
maintenance window), the app in-process. One IPv4 address, then one IPv6 /64 (a new address of it each time), send
applications with a 10 MB PDF until refused; then a candidate from elsewhere sends a 2 KB CV.

Run: .venv/bin/python bench/parking_bench.py [--maxmemory 150mb] [--file-mb 10]
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import bench_posting, temp_dir
from jobsite.redisdb.redis_server import connect, embedded, memory
from jobsite.sandbox import SandboxServer
from jobsite.settings import load_settings
from jobsite.web.app import create_app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--maxmemory", default="150mb")
    parser.add_argument("--file-mb", type=int, default=10)
    args = parser.parse_args()
    logging.getLogger("jobsite").setLevel(logging.ERROR)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    sandbox = SandboxServer().start()
    pid, body = bench_posting(sandbox.state, parity=0)
    data = temp_dir("parking-bench-")
    env = {
        "JOBSITE_DATA_DIR": str(data),
        "LEVER_BASE_URL": f"{sandbox.url}/v1",
        "JOBSITE_REDIS_MAXMEMORY": args.maxmemory,
    }
    server = embedded(load_settings(env))
    server.ensure()
    settings = load_settings({**env, "REDIS_URL": server.url})
    r = connect(server.url)
    client = create_app(settings).test_client()
    url = f"/api/v1/postings/{pid}/applications"
    junk = b"%PDF-1.7\n" + b"0" * (args.file_mb * 2**20 - 9)
    n = 0

    def send(address: str, content: bytes) -> int:
        nonlocal n
        n += 1
        files = {"application": json.dumps(body(n)), "resume": (io.BytesIO(content), "cv.pdf")}
        return client.post(url, data=files, environ_base={"REMOTE_ADDR": address}).status_code

    try:
        print(f"Redis maxmemory {memory(r).limit / 2**20:.0f} MB, {args.file_mb} MB per application")
        for label, address in (
            ("one IPv4 address", lambda i: "203.0.113.7"),
            ("one IPv6 /64, a new address each time", lambda i: f"2001:db8:0:7::{i + 1:x}"),
        ):
            r.flushdb()  # each outsider alone, on an empty Redis
            before, accepted, status = memory(r).used, 0, 202
            while status == 202 and accepted < 200:
                status = send(address(accepted), junk)
                accepted += status == 202
            parked = (memory(r).used - before) / 2**20
            candidate = send("198.51.100.9", b"%PDF-1.7 " * 228)
            print(
                f"{label}: {accepted} applications accepted, {parked:.0f} MB parked "
                f"({memory(r).used / memory(r).limit:.0%} of maxmemory), then {status}; "
                f"a candidate from elsewhere with a 2 KB CV: {candidate}"
            )
    finally:
        r.close()
        server.stop()
        sandbox.stop()


if __name__ == "__main__":
    main()

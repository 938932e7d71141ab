"""A real application during a flood of talent sign-ups (issue 28, item 3): sign-ups wait on their own queue, which a
worker serves only when no application waits, so the application should reach Lever about as fast as without the
flood (before, 600 sign-ups took one from 0.6 s to 64 s).

Starts the sandbox, `jobsite web` and one `jobsite worker`; sends one application alone, then --signups sign-ups
(16 at a time) and right after them one application; prints each application's time from its 202 to delivered, and
the difference.

Run: .venv/bin/python bench/flood_bench.py [--signups 600]
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import sandboxed_site, simple_form, submit, wait_until
from jobsite.records import store
from jobsite.records.store import State


def delivered_in(site, pid: str, form: dict, i: int) -> float:
    """Seconds from an application's 202 to its delivery."""
    receipt = submit(site.url, pid, form, i, prefix="a")
    started = time.monotonic()

    def done() -> bool:
        record = store.load(site.redis, receipt)
        return record is not None and record.state == State.DELIVERED

    wait_until(done, 300)
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--signups", type=int, default=600)
    args = parser.parse_args()
    with sandboxed_site("jsf", JOBSITE_SIGNUPS_PER_HOUR="1000000") as site:
        site.start_worker()
        pid, form = simple_form(site.control, site.sandbox_url)
        alone = delivered_in(site, pid, form, 0)

        def join(n: int) -> int:
            return requests.post(
                f"{site.url}/api/v1/talent",
                timeout=30,
                json={"name": f"Flood {n}", "email": f"f{n}@example.com", "consent": True},
            ).status_code

        with ThreadPoolExecutor(16) as pool:
            statuses = list(pool.map(join, range(args.signups)))
        assert statuses.count(202) == args.signups, set(statuses)
        flooded = delivered_in(site, pid, form, 1)
        print(
            f"application delivered {alone:.2f} s after its 202 alone, {flooded:.2f} s right after "
            f"{args.signups} sign-ups: {flooded - alone:+.2f} s"
        )


if __name__ == "__main__":
    main()

"""A Lever outage of 5xx answers, then recovery: how long after Lever answers again is the last application in it?

The web process takes the applications while the sandbox answers 500 to every Data API call (unprocessed), one
`jobsite worker` delivers; after `--outage-s` the sandbox recovers. Prints the time from recovery to the last
delivery, what the gate said during the outage, and duplicates and losses (each candidate's applications in Lever).

Run: .venv/bin/python bench/lever_outage_bench.py [--applications 20] [--outage-s 60]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import sandboxed_site, simple_form, submit, wait_until
from jobsite.delivery import gate
from jobsite.records import store
from jobsite.records.store import State


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--applications", type=int, default=20)
    parser.add_argument("--outage-s", type=float, default=60.0)
    args = parser.parse_args()
    n = args.applications
    said: set[str] = set()
    with sandboxed_site("jso", JOBSITE_UPKEEP_INTERVAL_S="1") as site:
        r, control = site.redis, site.control
        pid, form = simple_form(control, site.sandbox_url)
        requests.get(f"{site.url}/jobs/{pid}/apply", timeout=10)  # the form was seen: the cache is warm
        control.post(
            f"{site.sandbox_url}/_sandbox/fail", json={"path": "/v1/", "status": 500, "count": 10**9}, timeout=5
        ).raise_for_status()
        outage_started = time.monotonic()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda i: submit(site.url, pid, form, i), range(n)))
        site.start_worker()
        while time.monotonic() - outage_started < args.outage_s:
            status = gate.status(r)
            said.add(f"{status.state.value}" + (f" ({status.cause.value})" if status.cause else ""))
            time.sleep(0.5)
        control.post(f"{site.sandbox_url}/_sandbox/fail", json={"clear": True}, timeout=5).raise_for_status()
        recovered = time.time()
        wait_until(lambda: store.counts(r)["delivered"] == n, 900)
        delivered = sorted(rec.delivered_at for rec in store.load_many(r, store.receipts(r, State.DELIVERED)))
        received = control.get(f"{site.sandbox_url}/_sandbox/received", timeout=30).json()
    emails = Counter(
        next(p["value"] for p in a["body"]["personalInformation"] if p["name"] == "email")
        for a in received["applications"]
    )
    print(f"{n} applications, {args.outage_s:g} s of 500s from Lever, then recovery")
    print(f"  the gate during the outage: {', '.join(sorted(said))}")
    print(
        f"  recovery to first delivery: {delivered[0] - recovered:.1f} s, to the last: "
        f"{delivered[-1] - recovered:.1f} s (Lever's 2 applies/s alone take {(n - 1) / 2:.1f} s for {n})"
    )
    print(
        f"  in Lever: {len(emails)} candidates, duplicates {sum(c - 1 for c in emails.values())}, "
        f"lost {n - len(emails)}"
    )


if __name__ == "__main__":
    main()

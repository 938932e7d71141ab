"""What keeping the pipeline report fresh costs: Lever calls per 1,000 site-sourced opportunities per hour.

An hour is JOBSITE_PIPELINE_SYNC_S-spaced incremental syncs (12 at the default 300 s) against the sandbox holding
1,000 opportunities tagged as the site's, with recruiters moving some of them between syncs: a quiet hour (42 moves,
each candidate advanced once a day) and a busy one (500 moves). Beside it, what re-listing every tagged opportunity at
each sync would cost. Webhooks, when set up, replace most of it; they cost no calls.

Run: .venv/bin/python bench/pipeline_bench.py [--opportunities 1000]
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import bench_posting, temp_dir
from jobsite.followup import report, tagging
from jobsite.redisdb.redis_server import EmbeddedRedis
from jobsite.sandbox import API_KEY, SandboxServer
from jobsite.sandbox.simulator import STAGES
from jobsite.services import Services
from jobsite.settings import load_settings


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--opportunities", type=int, default=1000)
    args = parser.parse_args()
    sandbox = SandboxServer().start()
    redis = EmbeddedRedis(temp_dir("jsp"))
    redis.ensure()
    try:
        settings = load_settings(
            {}, data_dir=temp_dir("jsp"), redis_url=redis.url, lever_base_url=f"{sandbox.url}/v1", secret_key="x" * 32
        )
        svc = Services(settings)
        lever = requests.Session()
        lever.auth = (API_KEY, "")
        requests.post(
            f"{sandbox.url}/_sandbox/limits",
            json={"per_s": 100_000, "burst": 100_000, "apply_per_s": 100_000, "apply_burst": 100_000},
            timeout=5,
        ).raise_for_status()
        posting, body = bench_posting(sandbox.state)
        ids = []
        for n in range(args.opportunities):
            lever.post(f"{sandbox.url}/v1/postings/{posting}/apply", json=body(n), timeout=10).raise_for_status()
            opportunity = sandbox.state.opportunities[-1]["id"]  # Apply answers the application id only
            lever.post(
                f"{sandbox.url}/v1/opportunities/{opportunity}/addTags",
                json={"tags": [tagging.site_tag(settings)]},
                timeout=10,
            ).raise_for_status()
            ids.append(opportunity)
        syncs = 3600 // settings.pipeline_sync_s
        print(
            f"{args.opportunities} site-sourced opportunities, an hour = {syncs} incremental syncs "
            f"(JOBSITE_PIPELINE_SYNC_S={settings.pipeline_sync_s})"
        )
        print(f"{'':34}{'moves/h':>9}{'Lever calls/h':>15}{'per 1,000 opps':>16}{'full re-list':>14}")
        report.sync(svc.delivery)  # the first sync lists them all once; an hour is what comes after
        rng = random.Random(1)

        def advance(seconds: int) -> None:
            """Move Lever's and our clocks' past back, as if `seconds` had gone by (the bench takes seconds)."""
            with sandbox.state.lock:
                for o in sandbox.state.opportunities:
                    o["updatedAt"] -= seconds * 1000
            svc.redis.set(report.SYNCED_AT, int(svc.redis.get(report.SYNCED_AT) or 0) - seconds * 1000)

        for name, moves in (
            ("quiet hour (each advanced daily)", args.opportunities * 1 // 24),
            ("busy hour", args.opportunities // 2),
        ):
            before = len(sandbox.state.requests)
            for i in range(syncs):
                advance(settings.pipeline_sync_s)
                for _ in range(moves // syncs + (1 if i < moves % syncs else 0)):
                    requests.post(
                        f"{sandbox.url}/_sandbox/opportunities/{rng.choice(ids)}/stage",
                        json={"stage": rng.choice(STAGES)["id"]},
                        timeout=5,
                    ).raise_for_status()
                if report.sync(svc.delivery) is None:
                    raise SystemExit("a sync could not run")
            calls = [q for q in sandbox.state.requests[before:] if not q["endpoint"].startswith("_sandbox")]
            full = syncs * -(-args.opportunities // 100)
            per_1000 = len(calls) * 1000 / args.opportunities
            print(f"{name:34}{moves:>9}{len(calls):>15}{per_1000:>16.0f}{full:>14}")
        print("(full re-list: every tagged opportunity at each sync, 100 a page; webhooks make most syncs find none)")
    finally:
        redis.stop()
        sandbox.stop()


if __name__ == "__main__":
    main()

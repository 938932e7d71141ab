"""Job alerts at scale: one new posting matched against N confirmed subscriptions (issue 31, item 4).

An embedded redis-server holds N confirmed subscriptions with varied filters (team, location, department,
commitment, workplace, search words, in the proportions below; some with none), written as `subscriptions`
writes them. The bench times `subscriptions.matching` for new postings (wall time and the worker's CPU time), counts
the candidates it read against the subscriptions that matched, and compares with a scan that loads every
subscription and applies the same rule. It prints Redis memory per subscription.

Run: .venv/bin/python bench/alert_matching_bench.py [--subscriptions 100000] [--postings 20] [--teams 20]
[--places 30]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import temp_dir
from jobsite.alerts import subscriptions as subs
from jobsite.postings import board
from jobsite.postings.posting import Posting, public_posting
from jobsite.redisdb.redis_server import EmbeddedRedis, connect

TEAMS = [f"Team {i}" for i in range(20)]  # --teams and --places change these
PLACES = [f"City {i}" for i in range(30)]
DEPARTMENTS = [f"Department {i}" for i in range(5)]
COMMITMENTS = ["Full-time", "Part-time", "Internship"]
WORKPLACES = ["onsite", "remote", "hybrid"]
VOCABULARY = [f"word{i}" for i in range(2000)]
SEARCHED = VOCABULARY[:300]  # what people search for: the commoner words
# The share of subscriptions that set each filter.
SHARE = {"team": 0.4, "location": 0.5, "department": 0.2, "commitment": 0.3, "workplace": 0.3, "q": 0.3}


def filters(rng: random.Random) -> dict[str, str]:
    choices = {
        "team": TEAMS,
        "location": PLACES,
        "department": DEPARTMENTS,
        "commitment": COMMITMENTS,
        "workplace": WORKPLACES,
        "q": SEARCHED,
    }
    return {name: rng.choice(choices[name]) for name, share in SHARE.items() if rng.random() < share}


def posting(rng: random.Random, n: int) -> Posting:
    cats = {
        "team": rng.choice(TEAMS),
        "department": rng.choice(DEPARTMENTS),
        "commitment": rng.choice(COMMITMENTS),
        "allLocations": rng.sample(PLACES, 2),
    }
    return public_posting(
        {
            "id": f"new{n}",
            "text": "Senior " + rng.choice(VOCABULARY),
            "categories": cats,
            "workplaceType": rng.choice(WORKPLACES),
            "content": {"description": " ".join(rng.choices(VOCABULARY, k=300))},
        }
    )


def fill(r, n: int, rng: random.Random) -> None:
    """N confirmed subscriptions, written in batches the way confirming writes one."""
    now = time.time()
    for start in range(0, n, 1000):
        with r.pipeline(transaction=False) as pipe:
            for i in range(start, min(n, start + 1000)):
                sub = subs.Subscription(
                    id=f"{i:024x}",
                    email=f"person{i}@example.com",
                    filters=filters(rng),
                    frequency=rng.choice(list(subs.Frequency)),
                    language="en",
                    state=subs.State.CONFIRMED,
                    created_at=now,
                    confirmed_at=now,
                    stopped_at=None,
                )
                subs._move(pipe, None, sub, now)
                pipe.sadd(subs.ADDR.format(sub.address), sub.id)
            pipe.execute()


def scan(r, p: Posting) -> list[str]:
    """What matching without an index does: every confirmed subscription loaded and checked."""
    out = []
    for start in range(0, r.zcard(subs.STATE.format(subs.State.CONFIRMED)), 1000):
        ids = [x.decode() for x in r.zrange(subs.STATE.format(subs.State.CONFIRMED), start, start + 999)]
        with r.pipeline(transaction=False) as pipe:
            for i in ids:
                pipe.hget(subs.SUB.format(i), "filters")
            out += [i for i, f in zip(ids, pipe.execute(), strict=True) if subs.matches(json.loads(f), p)]
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subscriptions", type=int, default=100_000)
    parser.add_argument("--postings", type=int, default=20)
    parser.add_argument("--teams", type=int, default=20, help="teams in the company (more: fewer matches each)")
    parser.add_argument("--places", type=int, default=30, help="locations in the company")
    args = parser.parse_args()
    TEAMS[:] = [f"Team {i}" for i in range(args.teams)]
    PLACES[:] = [f"City {i}" for i in range(args.places)]
    rng = random.Random(31)
    root = temp_dir("alert-bench-")
    server = EmbeddedRedis(root)
    server.ensure()
    try:
        r = connect(server.url)
        r.flushall()
        before = int(r.info("memory")["used_memory"])
        started = time.perf_counter()
        fill(r, args.subscriptions, rng)
        print(f"{args.subscriptions} confirmed subscriptions written in {time.perf_counter() - started:.1f} s")
        per_sub = (int(r.info("memory")["used_memory"]) - before) / args.subscriptions
        print(f"Redis memory per subscription: {per_sub:.0f} bytes (record, state, address, anchor)")
        walls, cpus, found, read = [], [], [], []
        for n in range(args.postings):
            p = posting(rng, n)
            read.append(sum(r.hlen(k) for k in subs._posting_keys(r, p, board.Offer(p))))
            wall, cpu = time.perf_counter(), time.process_time()
            ids = list(subs.matching(r, p))
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
            found.append(len(ids))
        print(
            f"matching one new posting ({args.postings} postings): median {statistics.median(walls) * 1000:.1f} ms "
            f"wall, {statistics.median(cpus) * 1000:.1f} ms worker CPU; max {max(walls) * 1000:.1f} ms wall"
        )
        print(
            f"  candidates read: median {statistics.median(read):.0f} of {args.subscriptions}; "
            f"matched: median {statistics.median(found):.0f}, max {max(found)}"
        )
        p = posting(rng, 999)
        wall = time.perf_counter()
        scanned = scan(r, p)
        scan_s = time.perf_counter() - wall
        wall = time.perf_counter()
        indexed = list(subs.matching(r, p))
        index_s = time.perf_counter() - wall
        by_address = len({f"person{int(i, 16)}" for i in scanned})
        assert len(indexed) == by_address, (len(indexed), by_address)
        print(
            f"scan of every subscription: {scan_s * 1000:.0f} ms; indexed: {index_s * 1000:.1f} ms "
            f"({scan_s / index_s:.0f}x); same {len(indexed)} subscriptions"
        )
    finally:
        server.stop()


if __name__ == "__main__":
    main()

"""The talent community's address index backfill (issue 29): members who joined before the index existed are
indexed once by the workers' upkeep (sourcing/people.ensure_email_index); every later upkeep pays one EXISTS.

An embedded redis-server holds N talent members written through sourcing/people (then their index keys removed, as
a release before the index left them); the bench times the one-off backfill and an upkeep's call once it is done, and
prints the ratio (the backfill runs for at most EMAIL_INDEX_BUDGET_S per upkeep).

Run: .venv/bin/python bench/email_index_bench.py [--members 20000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import temp_dir
from jobsite.redisdb.redis_server import EmbeddedRedis, connect
from jobsite.sourcing import people


def member(i: int) -> people.Person:
    return people.Person(
        id=people.new_id(),
        kind=people.Kind.TALENT,
        created_at=time.time() - i,
        name=f"Member {i}",
        email=f"member{i}@example.com",
        teams=["Robotics"],
        consent=True,
        sends=[people.Send()],
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=20_000)
    n = parser.parse_args().members
    root = temp_dir("email-index-bench-")
    server = EmbeddedRedis(root)
    server.ensure()
    try:
        r = connect(server.url)
        everyone = [member(i) for i in range(n)]
        for start in range(0, n, 500):
            with r.pipeline() as pipe:
                for p in everyone[start : start + 500]:
                    people.add(pipe, p)
                    pipe.delete(people.email_key(p.email))  # as before the index
                pipe.execute()
        calls, added, longest, backfill = 0, 0, 0.0, 0.0
        while not r.exists(people.EMAIL_INDEX_BUILT):  # one call per upkeep, each within its budget
            started = time.perf_counter()
            added += people.ensure_email_index(r)
            took = time.perf_counter() - started
            calls, longest, backfill = calls + 1, max(longest, took), backfill + took
        runs = []
        for _ in range(200):
            started = time.perf_counter()
            assert people.ensure_email_index(r) == 0
            runs.append(time.perf_counter() - started)
        done = statistics.median(runs)
        print(
            f"{n} members from before the index: backfill {backfill * 1000:.0f} ms over {calls} upkeeps "
            f"(longest {longest * 1000:.0f} ms, {added} indexed), then {done * 1e6:.0f} µs an upkeep "
            f"(ratio {backfill / done:.0f}:1)"
        )
    finally:
        server.stop()


if __name__ == "__main__":
    main()

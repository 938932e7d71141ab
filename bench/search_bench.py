"""The console's search at scale: the index (records/search) against a scan of every record, as a search box
without an index would do (issue 29, item 1).

An embedded redis-server holds N application records written through records/store (which indexes them in the same
transaction); the bench times a search by reference, by email and by two name words through the index, and the same
answers by loading every record and comparing, and prints the ratio. It also times the one-off build of the index for
records stored before it existed.

Run: .venv/bin/python bench/search_bench.py [--records 20000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import temp_dir
from jobsite.records import search, store
from jobsite.records.application import Application
from jobsite.redisdb.redis_server import EmbeddedRedis, connect

FIRST = ["Ada", "Grace", "Lena", "Jean", "Marie", "Paul", "Anna", "Lukas", "Chloé", "Hugo"]
LAST = ["Lovelace", "Hopper", "Fischer", "Dupont", "Curie", "Müller", "Schmidt", "Martin", "Bernard", "Weber"]


def record(i: int) -> store.Record:
    name = f"{FIRST[i % 10]} {LAST[i // 10 % 10]} {i}"
    app = Application(
        posting_id="p",
        personal={"fullName": name, "email": f"person{i}@example.com"},
        urls={},
        custom={},
        eeo={},
        consent={},
    )
    return store.Record(
        receipt=store.new_receipt(),
        posting_id="p",
        state=store.State.QUEUED,
        created_at=time.time() - i,
        application=app,
    )


def timed(fn, repeat: int = 5) -> float:
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def scan(r, text: str) -> list[str]:
    """What a search without an index does: every record loaded and compared."""
    words = set(search.words(text))
    out, start = [], 0
    while receipts := [x.decode() for x in r.zrange(store.ALL, start, start + 499)]:
        start += len(receipts)
        entries = [store.search_entry(rec) for rec in store.load_many(r, receipts)]
        out += [e.id for e in entries if text in (e.reference, e.email) or words <= set(search.words(e.name))]
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=20_000)
    args = parser.parse_args()
    root = temp_dir("search-bench-")
    server = EmbeddedRedis(root)
    server.ensure()
    try:
        r = connect(server.url)
        records = [record(i) for i in range(args.records)]
        for start in range(0, len(records), 500):
            with r.pipeline() as pipe:
                for rec in records[start : start + 500]:
                    store.add(pipe, rec)
                pipe.execute()
        r.set(search.BUILT.format(search.APPLICATION), "done")
        target = records[args.records // 2]
        queries = {
            "reference": store.reference(target.receipt),
            "email": target.application.personal["email"],
            "name words": " ".join(target.application.personal["fullName"].split()[:2]),
        }
        print(f"{args.records} applications")
        for what, q in queries.items():
            indexed = timed(lambda q=q: search.find(r, q))
            scanned = timed(lambda q=q: scan(r, q), repeat=1)
            hits = len(search.find(r, q))
            print(
                f"by {what:10}: index {indexed * 1000:7.2f} ms ({hits} hits, at most {search.LIMIT}), "
                f"scan {scanned * 1000:8.1f} ms: {scanned / indexed:,.0f}x"
            )
        r.delete(*r.keys("search:*"))
        build = timed(
            lambda: search.ensure_built(r, search.APPLICATION, lambda at: store.search_batches(r, at), None), repeat=1
        )
        print(
            f"building the index for records stored before it: {build:.2f} s, once "
            f"({search.BUILD_BUDGET_S:g} s of it in each search until done)"
        )
        keys = sum(1 for _ in r.scan_iter("search:*", count=1000))
        print(f"index keys: {keys} ({keys / args.records:.1f} per record)")
    finally:
        server.stop()


if __name__ == "__main__":
    main()

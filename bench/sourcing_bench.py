"""Event capture on this machine, with the production processes (gunicorn web, one worker, embedded redis-server),
the sandbox and Debian's Chromium.

Prints:
- offline then online: captures saved per second on the capture page with the network off (IndexedDB), then, once
  the network is back, captures accepted by the console per second as the page sends its outbox (one at a time, as
  a phone would), and that every one arrived once;
- several phones at once over HTTP: captures accepted per second and p50/p99 latency;
- the Lever calls a capture of N postings costs (with a note, the recruiter's Lever user already cached, then the
  List users of a recruiter's first capture), by endpoint.

Run: .venv/bin/python bench/sourcing_bench.py [--captures 60] [--phones 4]
"""

from __future__ import annotations

import argparse
import logging
import re
import statistics
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import start_site, stop, wait_http
from jobsite.console import accounts
from jobsite.redisdb.redis_server import EmbeddedRedis, connect
from jobsite.sandbox import SandboxServer
from jobsite.sourcing import events, people

RECRUITER = ("sam@acme.example", "a long enough password")  # a Lever user of the sandbox: captures are created as them
SAVE = """(n) => { const f = document.getElementById('capture');
  f.elements.name.value = 'Person ' + n; f.elements.email.value = 'person' + n + '@example.com';
  f.requestSubmit(); }"""


def signed_in(site: str) -> tuple[requests.Session, str]:
    s = requests.Session()
    token = re.search(r'name="csrf_token" value="([^"]+)"', s.get(f"{site}/admin/login", timeout=10).text)
    s.post(
        f"{site}/admin/login",
        data={"email": RECRUITER[0], "password": RECRUITER[1], "csrf_token": token.group(1) if token else ""},
        timeout=10,
    )
    token = re.search(r'name="csrf_token" value="([^"]+)"', s.get(f"{site}/admin/events", timeout=10).text)
    return s, token.group(1) if token else ""


def offline_then_online(site: str, r, event: events.Event, count: int) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--headless", "--no-sandbox"])
        context = browser.new_context(viewport={"width": 390, "height": 844})
        page = context.new_page()
        page.goto(f"{site}/admin/login?next=/admin/events/{event.id}/capture")
        page.fill("#email", RECRUITER[0])
        page.fill("#password", RECRUITER[1])
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_selector("body[data-offline-ready=true]")
        context.set_offline(True)
        started = time.perf_counter()
        for n in range(count):
            page.evaluate(SAVE, n)
            page.wait_for_selector(f'#outbox[data-waiting="{n + 1}"]', state="attached")
        saved_s = time.perf_counter() - started
        page.reload()
        page.wait_for_selector(f'#outbox[data-waiting="{count}"]', state="attached")
        before = r.zcard(people.EVENT.format(event.id))
        context.set_offline(False)
        started = time.perf_counter()
        page.wait_for_selector('#outbox[data-waiting="0"]', state="attached", timeout=300_000)
        sent_s = time.perf_counter() - started
        arrived = r.zcard(people.EVENT.format(event.id)) - before
        browser.close()
    print(
        f"offline: {count} captures saved in {saved_s:.2f} s ({count / saved_s:.0f}/s, IndexedDB, page and "
        "driver included); survived a reload"
    )
    print(
        f"online again: {arrived} of {count} accepted in {sent_s:.2f} s ({count / sent_s:.0f} captures/s, one "
        f"phone sending its outbox one at a time); each arrived once: {arrived == count}"
    )


def phones(site: str, event: events.Event, count: int, clients: int) -> None:
    sessions = [signed_in(site) for _ in range(clients)]
    latencies: list[float] = []

    def send(n: int) -> int:
        s, token = sessions[n % clients]
        body = {
            "name": f"P {n}",
            "email": f"p{n}@example.com",
            "postings": event.postings[:1],
            "note": "x",
            "rating": 3,
            "client_id": f"bench-phones-{n:06d}",
        }
        t = time.perf_counter()
        status = s.post(
            f"{site}/admin/api/events/{event.id}/people", json=body, headers={"X-CSRF-Token": token}, timeout=30
        ).status_code
        latencies.append(time.perf_counter() - t)
        return status

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        statuses = Counter(pool.map(send, range(count)))
    took = time.perf_counter() - started
    q = statistics.quantiles(latencies, n=100)
    print(
        f"{clients} phones over HTTP: {count} captures in {took:.2f} s ({count / took:.0f}/s), p50 "
        f"{q[49] * 1000:.0f} ms, p99 {q[98] * 1000:.0f} ms, statuses {dict(statuses)}"
    )


def lever_calls(site: str, r, sandbox: SandboxServer, posting_ids: list[str]) -> None:
    s, token = signed_in(site)
    print("Lever calls per capture (with a note; the recruiter's Lever user cached after their first capture):")
    for i, n in enumerate((0, 1, 3, len(posting_ids))):
        event = events.add(r, f"Calls {n}", "", posting_ids[:n])
        before = len(sandbox.state.requests)
        body = {
            "name": "Grace",
            "email": f"grace{i}@example.com",
            "postings": posting_ids[:n],
            "note": "met",
            "rating": 4,
            "client_id": f"bench-calls-{i:06d}",
        }
        person_id = s.post(
            f"{site}/admin/api/events/{event.id}/people", json=body, headers={"X-CSRF-Token": token}, timeout=30
        ).json()["id"]
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            person = people.load(r, person_id)
            if person and person.standing == people.Standing.DELIVERED:
                break
            time.sleep(0.1)
        calls = Counter(q["endpoint"] for q in sandbox.state.requests[before:])
        print(f"  {n} posting(s): {sum(calls.values())} calls {dict(sorted(calls.items()))}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--captures", type=int, default=60)
    parser.add_argument("--phones", type=int, default=4)
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    sandbox = SandboxServer().start()
    sandbox.state.switches.per_s = sandbox.state.switches.burst = 1000  # the console's intake is measured, not Lever
    data, site, web, worker = start_site(sandbox.url, "jss")
    try:
        wait_http(site + "/healthz")
        r = connect(EmbeddedRedis(data).url)
        accounts.add_user(r, *RECRUITER, accounts.Role.ADMIN)
        posting_ids = [
            p["id"]
            for p in sandbox.state.postings.values()
            if p["state"] == "published" and "public" in (p["distributionChannels"] or [])
        ][:5]
        lever_calls(site, r, sandbox, posting_ids)
        sandbox.state.switches.maintenance = True  # the captures wait for Lever: intake alone is measured
        offline_then_online(site, r, events.add(r, "Booth", "", posting_ids[:2]), args.captures)
        phones(site, events.add(r, "Fair", "", posting_ids[:2]), args.captures * 5, args.phones)
    finally:
        stop(web)
        stop(worker)
        sandbox.stop()


if __name__ == "__main__":
    main()

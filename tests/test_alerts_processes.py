"""Job alerts with real processes (issue 31, "done when"): two `jobsite web` processes refreshing the catalog as two
machines would, two `jobsite worker` processes, a real SMTP server (aiosmtpd), the Lever sandbox and a Redis of the
test's own. A person subscribes on one web and confirms from the email on the other; the sandbox publishes a
matching posting; the worker matching it is killed in the middle (its horse and itself, as a crash), Redis is killed
and restarted while the rest waits, and still each confirmed subscriber gets the posting exactly once (the instant
ones by email, the daily ones in their next digest), none goes to the unconfirmed, the stopped or the non-matching,
a 5xx makes its address undeliverable, and the one-click POST of List-Unsubscribe stops the alert."""

from __future__ import annotations

import contextlib
import email
import email.policy
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
from rq import Worker

from jobsite.alerts import fanout, subscriptions
from jobsite.alerts.subscriptions import State
from jobsite.postings import published
from jobsite.redisdb.redis_server import EmbeddedRedis, connect
from jobsite.settings import Settings, load_settings

from .helpers import Sandbox, Workers, free_port, smtp_server, wait_for, worker_env

pytestmark = [pytest.mark.slow]

PUBLIC_URL = "https://careers.acme.test"
TEAM = "Alert Crash Lab"
INSTANT = 40  # confirmed, instant: each must get exactly one email
DAILY = 30_000  # confirmed, daily: a long fan-out to kill in the middle; each must hold the posting once
GATHER_S = 25  # longer than the fan-out's stall (15 s): the restart of Redis comes while no email is being sent


class Inbox:
    """An aiosmtpd handler keeping every message; it refuses the addresses in `refuse` for good (550)."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.refuse = {"gone@example.com"}
        self.lock = threading.Lock()

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if address in self.refuse:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.messages.append(email.message_from_bytes(envelope.original_content, policy=email.policy.default))
        return "250 OK"

    def of_kind(self, kind: str) -> list[EmailMessage]:
        """The messages of one kind (messages.write's: the Message-ID's left part ends with it)."""
        with self.lock:
            return [m for m in self.messages if str(m["Message-ID"]).partition("@")[0].endswith(f".{kind}")]

    def to(self, address: str, kind: str) -> list[EmailMessage]:
        return [m for m in self.of_kind(kind) if str(m["To"]) == address]


@pytest.fixture
def own_redis() -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(Path(tempfile.mkdtemp(prefix="jsa")))
    server.ensure()
    yield server
    server.stop()


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, int]]:
    handler = Inbox()
    with smtp_server(handler) as port:
        yield handler, port


def _serves(url: str) -> bool:
    try:
        return requests.get(url + "/healthz", timeout=2).ok
    except requests.RequestException:
        return False


@pytest.fixture
def webs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[list[str]]:
    """Two web machines (own data dirs, one Redis), started by `start(env)`."""
    procs: list[subprocess.Popen[bytes]] = []
    urls: list[str] = []

    def start(env: dict[str, str]) -> list[str]:
        for name in ("web-a", "web-b"):
            port = free_port()
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "jobsite", "web", "--workers", "1", "--port", str(port)],
                    env={**env, "JOBSITE_DATA_DIR": str(tmp_path / name)},
                    start_new_session=True,
                )
            )
            urls.append(f"http://127.0.0.1:{port}")
        for url in urls:
            wait_for(lambda url=url: _serves(url), timeout=60, what=f"{url} to serve")
        return urls

    request.node.start_webs = start
    yield urls
    for proc in procs:
        proc.terminate()
    for proc in procs:
        proc.wait(20)


def fill(r: redis.Redis, prefix: str, n: int, frequency: str) -> list[str]:
    """`n` confirmed subscriptions to TEAM, written in batches as confirming writes one (subscribing 30,000 people
    one transaction at a time would take the test's minutes)."""
    now, ids = time.time(), []
    for start in range(0, n, 2000):
        with r.pipeline(transaction=False) as pipe:
            for i in range(start, min(n, start + 2000)):
                sub = subscriptions.Subscription(
                    id=f"{prefix}{i:08d}",
                    email=f"{prefix}{i}@example.com",
                    filters={"team": TEAM},
                    frequency=subscriptions.Frequency(frequency),
                    language="en",
                    state=State.CONFIRMED,
                    created_at=now,
                    confirmed_at=now,
                    stopped_at=None,
                )
                subscriptions._move(pipe, None, sub, now)
                pipe.sadd(subscriptions.ADDR.format(sub.address), sub.id)
                ids.append(sub.id)
            pipe.execute()
    return ids


def _ancestors(pid: int) -> list[int]:
    found = []
    while pid > 1:
        pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        found.append(pid)
    return found


def person(r: redis.Redis, address: str, state: State, team: str = TEAM) -> str:
    sub = subscriptions.subscribe(r, address, {"team": team}, "instant", "en").subscription
    if state != State.PENDING:
        subscriptions.confirm(r, sub.id)
    if state == State.STOPPED:
        subscriptions.stop(r, sub.id)
    return sub.id


def subscribe_and_confirm(webs: list[str], box: Inbox) -> str:
    """Ada asks for alerts on one web machine, and confirms from the email's link on the other."""
    s = requests.Session()
    form = s.get(f"{webs[0]}/alerts/new", params={"team": TEAM}, timeout=10).text
    token = re.search(r'name="form_token" value="([^"]+)"', form)
    assert token, "no form token on the alerts form"
    asked = s.post(
        f"{webs[0]}/alerts/new",
        data={"email": "ada@example.com", "frequency": "instant", "team": TEAM, "form_token": token.group(1)},
        timeout=10,
    )
    assert asked.status_code == 200, asked.text[:500]
    [mail] = wait_for(lambda: box.to("ada@example.com", "alertconfirm"), timeout=60, what="the confirmation email")
    text = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    link = next(line.strip() for line in text.splitlines() if "/alerts/confirm/" in line)
    path = link.removeprefix(PUBLIC_URL)
    assert requests.get(webs[1] + path, timeout=10).status_code == 200  # a scanner's GET confirms nothing
    assert requests.post(webs[1] + path, timeout=10).status_code == 200
    return path.split("/")[3]


def test_each_confirmed_subscriber_gets_a_new_posting_once_through_crashes(
    settings: Settings,
    own_redis: EmbeddedRedis,
    sandbox: Sandbox,
    workers: Workers,
    webs: list[str],
    inbox: tuple[Inbox, int],
    request: pytest.FixtureRequest,
    tmp_path: Path,
) -> None:
    box, smtp_port = inbox
    s = load_settings({}, **{**settings.__dict__, "redis_url": own_redis.url})
    env = worker_env(
        s,
        JOBSITE_SMTP_URL=f"smtp://127.0.0.1:{smtp_port}",
        JOBSITE_PUBLIC_URL=PUBLIC_URL,
        JOBSITE_MAIL_ON_UNFIXED_PYTHON="1",
        JOBSITE_ALERT_GATHER_S=str(GATHER_S),
        JOBSITE_CATALOG_FRESH_S="1",
        JOBSITE_MAIL_PER_SECOND="20",
        JOBSITE_SUBMISSIONS_PER_IP_PER_HOUR="100000",
        JOBSITE_SIGNUPS_PER_HOUR="100000",
    )
    r = connect(own_redis.url)
    urls = request.node.start_webs(env)
    procs = [workers.start({**env, "JOBSITE_DATA_DIR": str(tmp_path / f"worker-{i}")}) for i in range(2)]

    ada = subscribe_and_confirm(urls, box)
    instant = [person(r, f"p{i}@example.com", State.CONFIRMED) for i in range(INSTANT)]
    pending = [person(r, f"pending{i}@example.com", State.PENDING) for i in range(3)]
    stopped = [person(r, f"stopped{i}@example.com", State.STOPPED) for i in range(3)]
    other = [person(r, f"other{i}@example.com", State.CONFIRMED, team="Elsewhere") for i in range(3)]
    gone = person(r, "gone@example.com", State.CONFIRMED)
    daily = fill(r, "d", DAILY, "daily")

    refreshing = threading.Event()

    def refresh_both() -> None:
        """Both machines read the job list over and over: each read of a list older than a second refreshes it."""
        while not refreshing.is_set():
            for url in urls:
                with contextlib.suppress(requests.RequestException):  # Redis restarting: a page may fail
                    requests.get(url + "/", timeout=10)
            time.sleep(0.2)

    refresher = threading.Thread(target=refresh_both, daemon=True)
    refresher.start()
    try:
        wait_for(lambda: r.sismember(published.SEEN, published.STARTED), timeout=60, what="the first list")
        posting_id = sandbox.control("postings", team=TEAM, text="Crash Test Engineer")["id"]

        # Kill the worker that holds the matching job's lease once it has given some, not all.
        lease = fanout.LEASE.format(posting_id)
        holder = int(wait_for(lambda: r.get(lease), timeout=60, interval=0.002, what="the matching job"))
        wait_for(lambda: r.zcard(fanout.DUE) >= 200, timeout=60, interval=0.001, what="the fan-out under way")
        owner = next(p for p in procs if p.pid in (holder, *_ancestors(holder)))
        Workers.crash(owner)  # the worker (which runs its jobs in-process) and its scheduler, as a crash would
        given_before_kill = r.zcard(fanout.DUE)
        everyone = INSTANT + 1 + 1 + DAILY
        assert 0 < given_before_kill < everyone, f"not killed mid-fan-out: {given_before_kill} of {everyone}"

        # Redis killed and restarted while the survivor waits for the stalled matching to be free again.
        survivor = next(p for p in procs if p is not owner)
        wait_for(
            lambda: [w.get_state() for w in Worker.all(connection=r) if w.pid == survivor.pid] == ["idle"],
            what="the surviving worker between jobs",
        )
        own_redis.stop(signal.SIGKILL)
        own_redis.ensure()
        r = connect(own_redis.url)
        assert r.zcard(fanout.DUE) == given_before_kill  # the append-only file kept what was given

        wait_for(
            lambda: not published.waiting(r, time.time() + 3600) and not r.exists(lease),
            timeout=120,
            interval=0.2,
            what="the matching taken up by the surviving worker and finished",
        )
        expected = {"ada@example.com", "gone@example.com"} | {f"p{i}@example.com" for i in range(INSTANT)}
        wait_for(
            lambda: (
                {str(m["To"]) for m in box.of_kind("alert")} >= expected - {"gone@example.com"}
                and subscriptions.get(r, gone).state == State.UNDELIVERABLE
            ),  # type: ignore[union-attr]
            timeout=180,
            interval=0.5,
            what="every instant alert",
        )
        wait_for(
            lambda: not any(r.zscore(fanout.DUE, x) is not None for x in [ada, *instant]),
            timeout=60,
            what="nothing left to send to the instant subscribers",
        )
    finally:
        refreshing.set()
        refresher.join(15)

    alerts = box.of_kind("alert")
    sent = Counter(str(m["To"]) for m in alerts)
    assert sent == Counter(expected - {"gone@example.com"}), "each confirmed subscriber exactly once, nobody else"
    for m in alerts:
        assert "Crash Test Engineer" in m.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        assert m["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert subscriptions.get(r, gone).state == State.UNDELIVERABLE  # type: ignore[union-attr]
    for sub_id in pending + stopped + other:
        assert fanout.pending(r, sub_id) == []
    with r.pipeline(transaction=False) as pipe:
        for sub_id in daily:
            pipe.zrange(fanout.PENDING.format(sub_id), 0, -1)
        held = pipe.execute()
    assert all(x == [posting_id.encode()] for x in held), "each daily subscriber holds the posting once"
    assert published.notice(r, [posting_id]) == []  # still seen: never announced again
    print(
        f"killed mid-fan-out after {given_before_kill} of {everyone} given; {len(alerts)} alert emails, "
        f"{DAILY} daily digests pending once each"
    )

    # The one-click stop of List-Unsubscribe, by POST from a mail program (no cookie, no token).
    [ada_mail] = [m for m in alerts if str(m["To"]) == "ada@example.com"]
    stop = str(ada_mail["List-Unsubscribe"]).strip("<>")
    assert stop.startswith("https://")
    answer = requests.post(urls[0] + stop.removeprefix(PUBLIC_URL), data={"List-Unsubscribe": "One-Click"}, timeout=10)
    assert answer.status_code == 200
    assert subscriptions.get(r, ada).state == State.STOPPED  # type: ignore[union-attr]

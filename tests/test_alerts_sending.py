"""Job alerts, the sending side (alerts/fanout.py, alerts/digest.py, postings/published.py), against real Redis, the
Lever sandbox and a real SMTP server (aiosmtpd): a newly published posting is announced once however many machines
refresh, given to each matching confirmed subscription once, sent in the person's language with the one-click stop
in its headers, never to the unconfirmed, the stopped or the refused, and a posting unpublished before its digest
is left out."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

import pytest
import redis
import requests
from rq import Queue, SimpleWorker

from jobsite.alerts import digest, fanout, subscriptions
from jobsite.alerts.subscriptions import Frequency, State
from jobsite.console import accounts, audit
from jobsite.delivery import jobs
from jobsite.notify import pace, sending
from jobsite.postings import published
from jobsite.postings.catalog import Catalog
from jobsite.redisdb.clock import server_now
from jobsite.redisdb.redis_server import EmbeddedRedis
from jobsite.services import Services
from jobsite.settings import Settings, load_settings
from jobsite.worker import tasks

from .helpers import ADMIN, VIEWER, RedisProxy, Sandbox, csrf, sign_in, smtp_server, wait_for

PUBLIC_URL = "https://careers.acme.test"


class Inbox:
    """An aiosmtpd handler that keeps every message, and refuses the addresses in `refuse` for good (550)."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.refuse: set[str] = set()
        self.defer: set[str] = set()  # deferred (451) once each

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if address in self.refuse:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        if address in self.defer:
            self.defer.discard(address)
            return "451 4.7.1 Try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.original_content, policy=email.policy.default))
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if str(m["To"]) == address]


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, int]]:
    handler = Inbox()
    with smtp_server(handler) as port:
        yield handler, port


@pytest.fixture
def svc(settings: Settings, inbox: tuple[Inbox, int], r: redis.Redis) -> Services:
    s = load_settings(
        {
            "JOBSITE_SMTP_URL": f"smtp://127.0.0.1:{inbox[1]}",
            "JOBSITE_PUBLIC_URL": PUBLIC_URL,
            "JOBSITE_MAIL_ON_UNFIXED_PYTHON": "1",
            "JOBSITE_MAIL_PER_SECOND": "1000",
        },
        data_dir=settings.data_dir,
        redis_url=settings.redis_url,
        lever_base_url=settings.lever_base_url,
        secret_key=settings.secret_key,
        lever_read_timeout_s=5.0,
    )
    return tasks.use(Services(s))


def subscriber(
    r: redis.Redis,
    address: str,
    state: State = State.CONFIRMED,
    language: str = "en",
    frequency: str = "instant",
    **filters: str,
) -> str:
    sub = subscriptions.subscribe(r, address, filters, frequency, language).subscription
    if state != State.PENDING:
        subscriptions.confirm(r, sub.id)
    if state == State.STOPPED:
        subscriptions.stop(r, sub.id)
    return sub.id


def publish(svc: Services, sandbox: Sandbox, **fields: str) -> str:
    """Publish a posting in the sandbox and refresh the catalog: returns its id once the catalog announced it."""
    posting_id = sandbox.control("postings", **fields)["id"]
    svc.catalog.refresh_postings()
    wait_for(lambda: posting_id in published.waiting(svc.redis, server_now(svc.redis)), what="the announcement")
    return posting_id


def started(svc: Services) -> None:
    """The catalog's first list, taken as what was there already (announced in the background)."""
    svc.catalog.refresh_postings()
    wait_for(lambda: svc.redis.sismember(published.SEEN, published.STARTED), what="the first list")
    assert published.waiting(svc.redis, server_now(svc.redis)) == []  # nothing old is news


def run_due(svc: Services) -> None:
    """Everything due in the next day, sent as the workers would."""
    later = server_now(svc.redis) + 86400 * 8
    for group in digest.take_due(svc.redis, later):
        digest.send(svc.alerting, group, now=later)


def test_a_posting_is_announced_once_across_machines_and_refreshes(r: redis.Redis) -> None:
    assert published.notice(r, ["a", "b"]) == []  # the first list: what was there already
    assert published.notice(r, ["a", "b", "c"]) == ["c"]
    assert published.notice(r, ["a", "b", "c"]) == []  # a duplicate refresh, another machine
    assert published.notice(r, ["a", "c"]) == []
    assert published.notice(r, ["a", "b", "c", "d"]) == ["d"]  # b came back: not news; d is
    assert sorted(published.waiting(r, 1)) == ["c", "d"]
    r.delete(published.SEEN)
    assert published.notice(r, []) == []  # an empty first list starts the record too...
    assert published.notice(r, ["e"]) == ["e"]  # ...so the first posting after it is news


def test_two_catalogs_refreshing_announce_a_new_posting_once(svc: Services, sandbox: Sandbox, tmp_path) -> None:
    started(svc)
    other = Catalog(tmp_path / "other", lever=svc.catalog.lever, r=svc.redis, fresh_s=60, keep_s=600)
    posting_id = publish(svc, sandbox, team="Platform")
    other.refresh_postings()
    svc.catalog.refresh_postings()
    assert published.waiting(svc.redis, server_now(svc.redis)) == [posting_id]
    assert fanout.stalled(svc.redis) == [posting_id]
    assert fanout.stalled(svc.redis) == []  # handed: not again before STALL_S


def test_each_matching_confirmed_subscriber_gets_the_posting_once(
    svc: Services, sandbox: Sandbox, inbox: tuple[Inbox, int]
) -> None:
    box, _ = inbox
    r = svc.redis
    started(svc)
    ada = subscriber(r, "ada@example.com", team="Alerts Lab")
    subscriber(r, "bob@example.com", team="Somewhere Else")  # does not match
    subscriber(r, "cy@example.com", state=State.PENDING, team="Alerts Lab")  # never confirmed
    subscriber(r, "dee@example.com", state=State.STOPPED, team="Alerts Lab")  # stopped
    eva = subscriber(r, "eva@example.com", language="de", q="robot")
    gone = subscriber(r, "gone@example.com", team="Alerts Lab")
    box.refuse.add("gone@example.com")

    posting_id = publish(svc, sandbox, team="Alerts Lab", text="Robot Whisperer")
    assert fanout.stalled(r) == [posting_id]
    assert fanout.fan_out(svc.alerting, posting_id) == "3 given"
    assert fanout.fan_out(svc.alerting, posting_id) == "0 given"  # a duplicate job, a retry: nothing twice
    assert published.waiting(r, server_now(r)) == []
    assert digest.take_due(r) == []  # an instant alert gathers for JOBSITE_ALERT_GATHER_S first
    run_due(svc)
    run_due(svc)  # again: nothing twice

    assert sorted(str(m["To"]) for m in box.messages) == ["ada@example.com", "eva@example.com"]
    [message] = box.to("ada@example.com")
    assert message["Subject"] == "New jobs at Acme Robotics that match your alert"
    stop = subscriptions.unsubscribe_url(svc.settings, ada)
    assert stop.startswith("https://")
    assert message["List-Unsubscribe"] == f"<{stop}>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text = message.get_body(("plain",)).get_content().replace("\r\n", "\n")  # type: ignore[union-attr]
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    for part in (text, html):
        assert "Robot Whisperer" in part
        assert f"{PUBLIC_URL}/jobs/{posting_id}" in part
        assert subscriptions.manage_url(svc.settings, ada) in part
    assert f"\n{subscriptions.manage_url(svc.settings, ada)}\n" in text  # alone on its line
    [german] = box.to("eva@example.com")
    assert german["Subject"] == "Neue Stellen bei Acme Robotics, die zu Ihrem Suchauftrag passen"
    assert subscriptions.get(r, gone).state == State.UNDELIVERABLE  # type: ignore[union-attr]
    assert subscriptions.get(r, eva).state == State.CONFIRMED  # type: ignore[union-attr]
    assert digest.sent_per_day(r, 1)[0][1:] == (2, 2)


def test_a_posting_unpublished_before_the_digest_is_left_out(
    svc: Services, sandbox: Sandbox, inbox: tuple[Inbox, int]
) -> None:
    box, _ = inbox
    r = svc.redis
    started(svc)
    daily = subscriber(r, "dan@example.com", frequency="daily", team="Digest Lab")
    weekly = subscriber(r, "wes@example.com", frequency="weekly", team="Digest Lab")
    kept = publish(svc, sandbox, team="Digest Lab", text="Kept Role")
    dropped = publish(svc, sandbox, team="Digest Lab", text="Dropped Role")
    for posting_id in (kept, dropped):
        fanout.fan_out(svc.alerting, posting_id)
    for group in digest.take_due(r, server_now(r) + svc.settings.alert_gather_s + 1):
        digest.send(svc.alerting, group)  # looked at: both wait for their digest
    assert box.messages == []
    due = dict((k.decode(), v) for k, v in r.zrange(fanout.DUE, 0, -1, withscores=True))
    assert due[daily] == fanout.next_digest(Frequency.DAILY, server_now(r))
    assert due[weekly] == fanout.next_digest(Frequency.WEEKLY, server_now(r))
    sandbox.control(f"postings/{dropped}", state="closed")
    svc.catalog.refresh_postings()
    run_due(svc)
    assert sorted(str(m["To"]) for m in box.messages) == ["dan@example.com", "wes@example.com"]
    for message in box.messages:
        text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        assert "Kept Role" in text
        assert "Dropped Role" not in text


def test_paused_alerts_wait_and_go_once_resumed(svc: Services, sandbox: Sandbox, inbox: tuple[Inbox, int]) -> None:
    box, _ = inbox
    r = svc.redis
    started(svc)
    subscriber(r, "pat@example.com", team="Pause Lab")
    posting_id = publish(svc, sandbox, team="Pause Lab")
    digest.set_pause(r, True, by="admin")
    fanout.fan_out(svc.alerting, posting_id)  # matching goes on
    assert digest.take_due(r, server_now(r) + 3600) == []
    digest.set_pause(r, False, by="admin")
    run_due(svc)
    assert [str(m["To"]) for m in box.messages] == ["pat@example.com"]


def test_the_workers_match_and_send_on_the_alerts_queue(
    svc: Services, sandbox: Sandbox, inbox: tuple[Inbox, int]
) -> None:
    """The upkeep hands the announced posting to a job on the alerts queue (after applications and sign-ups), then
    the due subscription to a send job."""
    box, _ = inbox
    r = svc.redis
    assert [q.name for q in jobs.queues(r)].index(jobs.ALERTS_QUEUE) > [q.name for q in jobs.queues(r)].index(
        jobs.QUEUE
    )
    started(svc)
    subscriber(r, "wyn@example.com", team="Queue Lab")
    publish(svc, sandbox, team="Queue Lab")
    tasks.upkeep()
    assert Queue(jobs.ALERTS_QUEUE, connection=r).count == 1
    SimpleWorker(jobs.queues(r), connection=r).work(burst=True)
    r.zadd(fanout.DUE, {k.decode(): 0 for k in r.zrange(fanout.DUE, 0, -1)})  # the gathering is over
    r.delete(tasks.UPKEEP_LOCK)
    tasks.upkeep()
    SimpleWorker(jobs.queues(r), connection=r).work(burst=True)
    assert [str(m["To"]) for m in box.messages] == ["wyn@example.com"]


def test_the_console_shows_alerts_and_pauses_them_with_sign_in_csrf_and_audit(client, r: redis.Redis) -> None:
    accounts.add_user(r, *ADMIN, accounts.Role.ADMIN)
    accounts.add_user(r, *VIEWER, accounts.Role.VIEWER)
    subscriber(r, "ada@example.com", team="Platform")
    subscriber(r, "bo@example.com", state=State.PENDING)
    assert client.get("/admin/alerts").status_code == 302  # sign in first
    sign_in(client, *VIEWER)
    page = client.get("/admin/alerts").get_data(as_text=True)
    assert 'data-state="confirmed">1<' in page
    assert 'data-state="pending">1<' in page
    assert "ada@example.com" in page
    assert client.post("/admin/alerts/pause", data={"on": "1", "csrf_token": csrf(client)}).status_code == 403
    client.post("/admin/logout", data={"csrf_token": csrf(client)})
    sign_in(client, *ADMIN)
    assert client.post("/admin/alerts/pause", data={"on": "1"}).status_code == 400  # no CSRF token
    assert not digest.pause_state(r).on
    client.post("/admin/alerts/pause", data={"on": "1", "csrf_token": csrf(client)})
    assert digest.pause_state(r) == digest.Pause(True, ADMIN[0], digest.pause_state(r).at)
    assert "Resume job alerts" in client.get("/admin/alerts").get_data(as_text=True)
    client.post("/admin/alerts/pause", data={"on": "0", "csrf_token": csrf(client)})
    assert not digest.pause_state(r).on
    assert [e["action"] for e in audit.entries(r, 2)] == ["resume job alerts", "pause job alerts"]
    assert "/admin/alerts" in client.get("/admin/").get_data(as_text=True)  # linked from the dashboard


def test_the_workers_retention_removes_unconfirmed_subscriptions(svc: Services) -> None:
    r = svc.redis
    old = subscriptions.subscribe(
        r, "old@example.com", {}, "daily", "en", now=server_now(r) - 8 * 86400
    ).subscription.id
    new = subscriber(r, "new@example.com", state=State.PENDING)
    tasks.upkeep()
    assert subscriptions.get(r, old) is None
    assert subscriptions.get(r, new) is not None


def test_the_sandbox_publishes_a_new_posting_from_its_page(sandbox: Sandbox) -> None:
    page = requests.get(f"{sandbox.url}/_sandbox/", headers={"Accept": "text/html"}, timeout=5).text
    assert '<form method="post" action="/_sandbox/postings"><button>Publish a new posting</button></form>' in page
    before = len(sandbox.public_postings())
    pressed = requests.post(f"{sandbox.url}/_sandbox/postings", data={}, allow_redirects=False, timeout=5)
    assert pressed.status_code == 303
    assert len(sandbox.public_postings()) == before + 1
    made = sandbox.control("postings", team="Alerts Lab", location="Berlin, Germany", text="Robot <Tamer>")
    assert made["categories"]["team"] == "Alerts Lab"
    assert made["categories"]["allLocations"] == ["Berlin, Germany"]
    assert [p["text"] for p in sandbox.public_postings()].count("Robot <Tamer>") == 1


def test_a_failed_alerts_job_is_taken_up_at_the_next_upkeep(svc: Services) -> None:
    """A send or matching job that failed (an error, Redis gone under it) does not wait out its lease."""
    r = svc.redis
    sub = subscriber(r, "fay@example.com", team="Crash Lab")
    r.zadd(fanout.DUE, {sub: server_now(r) + digest.SEND_LEASE_S})  # handed to a job, which then failed
    queue = Queue(jobs.ALERTS_QUEUE, connection=r)
    sent = queue.enqueue(jobs.SEND_ALERTS, [sub])
    tasks.alerts_crashed(sent, r, RuntimeError, RuntimeError("boom"), None)
    assert [x.decode() for x in r.zrangebyscore(fanout.DUE, 0, server_now(r))] == [sub]
    assert published.notice(r, []) == []
    assert published.notice(r, ["p-crash"]) == ["p-crash"]
    assert fanout.stalled(r) == ["p-crash"]  # handed now
    assert fanout.stalled(r) == []
    matching = queue.enqueue(jobs.MATCH_ALERTS, "p-crash")
    tasks.alerts_crashed(matching, r, RuntimeError, RuntimeError("boom"), None)
    assert fanout.stalled(r) == ["p-crash"]  # at once, not after STALL_S


def test_an_alert_cut_off_by_redis_before_its_claim_is_sent_on_the_next_run(
    svc: Services,
    sandbox: Sandbox,
    redis_server: EmbeddedRedis,
    inbox: tuple[Inbox, int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Redis went away while a send job waited for its mail slot, before the email's claim (so nothing can have
    gone): the subscription's next send job sends the email. Counted as begun there, the batch was taken for "a
    worker died sending it" and never sent: the instant alerts lost in the crash test's Redis restart, under load."""
    box, _ = inbox
    r = svc.redis
    started(svc)
    sub = subscriber(r, "hal@example.com", team="Cut Lab")
    posting_id = publish(svc, sandbox, team="Cut Lab", text="Cut Off Engineer")
    assert fanout.fan_out(svc.alerting, posting_id) == "1 given"
    later = server_now(r) + 86400
    proxy = RedisProxy(str(redis_server.socket))
    try:
        cut = Services(load_settings({}, **{**svc.settings.__dict__, "redis_url": proxy.url}))
        real_take = pace.take

        def redis_gone_while_waiting(*args: Any, **kwargs: Any) -> int:
            proxy.set("refuse")  # a real outage, from here on: the slot is never taken
            return real_take(*args, **kwargs)

        monkeypatch.setattr(pace, "take", redis_gone_while_waiting)
        with pytest.raises(redis.ConnectionError):
            digest.send(cut.alerting, [sub], now=later)
    finally:
        proxy.stop()
        monkeypatch.setattr(pace, "take", real_take)
    assert box.to("hal@example.com") == []
    assert digest.send(svc.alerting, [sub], now=later) == {"sent": 1}
    [message] = box.to("hal@example.com")
    assert "Cut Off Engineer" in message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert digest.send(svc.alerting, [sub], now=later) == {"nothing pending": 1}  # and once only


def test_an_alert_whose_worker_died_after_its_claim_is_not_sent_again(
    svc: Services,
    sandbox: Sandbox,
    redis_server: EmbeddedRedis,
    inbox: tuple[Inbox, int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The email went, and Redis went away before its outcome was written: once the claim lapsed, the next run
    cannot tell whether it went, and sends nothing (at most once)."""
    box, _ = inbox
    r = svc.redis
    started(svc)
    sub = subscriber(r, "ivy@example.com", team="Gone Lab")
    posting_id = publish(svc, sandbox, team="Gone Lab", text="Lost Word Engineer")
    assert fanout.fan_out(svc.alerting, posting_id) == "1 given"
    later = server_now(r) + 86400
    proxy = RedisProxy(str(redis_server.socket))
    try:
        cut = Services(load_settings({}, **{**svc.settings.__dict__, "redis_url": proxy.url}))
        real_send = sending._send

        def sent_then_redis_gone(*args: Any, **kwargs: Any) -> Any:
            outcome = real_send(*args, **kwargs)
            proxy.set("refuse")
            return outcome

        monkeypatch.setattr(sending, "_send", sent_then_redis_gone)
        with pytest.raises(redis.ConnectionError):
            digest.send(cut.alerting, [sub], now=later)
    finally:
        proxy.stop()
        monkeypatch.setattr(sending, "_send", real_send)
    assert len(box.to("ivy@example.com")) == 1
    batch_id = r.hget(digest.BATCH.format(sub), "id").decode()  # type: ignore[union-attr]
    r.delete(sending.key(f"alert:{sub}:{batch_id}"))  # the claim lapsed
    assert digest.send(svc.alerting, [sub], now=later) == {"unknown (a worker died sending it)": 1}
    assert len(box.to("ivy@example.com")) == 1


def test_an_alert_deferred_by_the_mail_server_is_sent_on_its_retry(
    svc: Services, sandbox: Sandbox, inbox: tuple[Inbox, int]
) -> None:
    """A 4xx after the claim: the try began and ended, so the retry sends it (not taken for a worker that died)."""
    box, _ = inbox
    r = svc.redis
    started(svc)
    sub = subscriber(r, "jo@example.com", team="Slow Lab")
    posting_id = publish(svc, sandbox, team="Slow Lab", text="Patient Engineer")
    assert fanout.fan_out(svc.alerting, posting_id) == "1 given"
    later = server_now(r) + 86400
    box.defer.add("jo@example.com")
    assert digest.send(svc.alerting, [sub], now=later) == {"deferred": 1}
    assert box.to("jo@example.com") == []
    assert digest.send(svc.alerting, [sub], now=later) == {"sent": 1}
    assert len(box.to("jo@example.com")) == 1

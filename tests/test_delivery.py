"""Delivery as plain functions, against real Redis and the sandbox over HTTP."""

from __future__ import annotations

import importlib.util
import io
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
from redis.exceptions import LockError

from jobsite import logs, metrics
from jobsite.delivery import backoff, deliverer, gate, jobs
from jobsite.intake import accept
from jobsite.intake.forms import build_form, validate
from jobsite.lever import pacing
from jobsite.lever.client import LeverClient
from jobsite.records import store, uploads
from jobsite.records.store import State
from jobsite.services import Services
from jobsite.settings import Settings
from jobsite.worker import tasks

from .helpers import TIMING, Sandbox, lever_body, simple_posting, submit_one, wait_for

# Lever's strict 1-second window: a 429 expected (or not) depends on when calls arrive. On the timing worker.
pytestmark = [pytest.mark.usefixtures("strict_lever"), TIMING]


@pytest.fixture
def svc(settings: Settings, r: redis.Redis) -> Services:
    return tasks.use(Services(settings))


def test_delivers_and_records_levers_ids(svc: Services, sandbox: Sandbox) -> None:
    receipt = submit_one(svc, sandbox)
    assert store.load(svc.redis, receipt).state == State.QUEUED
    assert deliverer.deliver(svc.delivery, receipt).outcome == deliverer.Outcome.DELIVERED
    rec = store.load(svc.redis, receipt)
    got = sandbox.received()["applications"]
    assert len(got) == 1
    assert rec.state == State.DELIVERED
    assert rec.lever_application_id == got[0]["id"]
    assert rec.opportunity_id == got[0]["opportunityId"]
    assert rec.contact_id
    body = got[0]["body"]
    assert body["source"] == "Acme Robotics careers site"
    assert body["origin"] == "applied"
    assert {"name": "email", "value": "candidate0@example.com"} in body["personalInformation"]
    # delivering again is a no-op: it was delivered
    assert deliverer.deliver(svc.delivery, receipt).outcome == deliverer.Outcome.SKIPPED
    assert len(sandbox.received()["applications"]) == 1


def test_a_file_reaches_lever_intact_from_redis_and_leaves_redis_once_delivered(
    svc: Services, sandbox: Sandbox
) -> None:
    import hashlib
    import os

    from jobsite.intake.forms import answers_from_lever_body
    from jobsite.records.uploads import UploadedFile

    from .helpers import file_posting

    p = file_posting(sandbox)
    form = build_form(sandbox.state.questions[p["id"]])
    resume = b"%PDF-1.7\n" + os.urandom(100_000)
    upload = {"resume": UploadedFile("cv.pdf", resume)}
    app = validate(form, answers_from_lever_body(form, lever_body(sandbox, p["id"])), upload, 2**20)
    receipt = accept.submit(svc.intake, app, upload).receipt
    assert svc.redis.exists(uploads.KEY.format(receipt))
    sandbox.control("fail", path="/apply", status=500, count=1)  # uploaded, then the apply fails: the file stays
    assert deliverer.deliver(svc.delivery, receipt).outcome == deliverer.Outcome.RETRY
    assert svc.redis.exists(uploads.KEY.format(receipt))
    assert deliverer.deliver(svc.delivery, receipt).outcome == deliverer.Outcome.DELIVERED
    [sent] = sandbox.state.uploads.values()  # the second attempt reused Lever's copy
    assert sent["sha256"] == hashlib.sha256(resume).hexdigest()
    assert sent["filename"] == "cv.pdf"
    assert not svc.redis.exists(uploads.KEY.format(receipt))
    assert store.load(svc.redis, receipt).files[0]["size"] == len(resume)  # the record still says what was sent


def test_a_4xx_needs_attention_with_levers_message(svc: Services, sandbox: Sandbox) -> None:
    receipt = submit_one(svc, sandbox)
    sandbox.control("fail", path="/apply", status=400, count=1, message="Field 'phone' is not valid")
    result = deliverer.deliver(svc.delivery, receipt)
    assert result.outcome == deliverer.Outcome.NEEDS_ATTENTION
    rec = store.load(svc.redis, receipt)
    assert rec.state == State.NEEDS_ATTENTION
    assert "Field 'phone' is not valid" in rec.last_error
    assert "400" in rec.last_error
    assert [a["status"] for a in store.attempts(svc.redis, receipt)] == [400]
    assert sandbox.received()["applications"] == []
    assert deliverer.deliver(svc.delivery, receipt).outcome == deliverer.Outcome.SKIPPED  # stays for a human


def test_levers_error_text_never_reaches_the_log(svc: Services, sandbox: Sandbox) -> None:
    """Issue 13, item 8: a newline in Lever's message used to start a log line of its own; and a 400's message may
    repeat what the candidate wrote. The log names the application; the console shows Lever's words."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.OneLineFormatter("%(levelname)s %(name)s %(message)s"))
    logging.getLogger("jobsite").addHandler(handler)
    try:
        receipt = submit_one(svc, sandbox)
        sandbox.control(
            "fail",
            path="/apply",
            status=400,
            count=1,
            message="candidate0@example.com\nINFO jobsite.delivery application 00000000 delivered",
        )
        assert deliverer.deliver(svc.delivery, receipt).outcome == deliverer.Outcome.NEEDS_ATTENTION
    finally:
        logging.getLogger("jobsite").removeHandler(handler)
    logged = stream.getvalue()
    assert f"application {receipt[:8]} needs attention" in logged
    assert "candidate0@example.com" not in logged
    assert "00000000" not in logged
    assert "candidate0@example.com" in store.load(svc.redis, receipt).last_error


def test_control_characters_in_any_log_message_stay_on_one_line() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.OneLineFormatter("%(levelname)s %(message)s"))
    log = logging.getLogger("jobsite.test_logs")
    log.addHandler(handler)
    try:
        log.warning("file %s", "cv.pdf\nINFO forged\r\x1b[31m")
    finally:
        log.removeHandler(handler)
    assert stream.getvalue().splitlines() == ["WARNING file cv.pdf\\nINFO forged\\r\\x1b[31m"]


def test_a_dropped_connection_after_lever_processed_it_creates_no_duplicate(svc: Services, sandbox: Sandbox) -> None:
    receipt = submit_one(svc, sandbox)
    sandbox.control("drop", path="/apply", count=1)
    first = deliverer.deliver(svc.delivery, receipt)
    assert first.outcome == deliverer.Outcome.RETRY
    rec = store.load(svc.redis, receipt)
    assert rec.state == State.WAITING
    assert rec.inflight_at > 0
    assert len(sandbox.received()["applications"]) == 1  # Lever has it
    assert deliverer.deliver(svc.delivery, receipt).outcome == deliverer.Outcome.DELIVERED
    rec = store.load(svc.redis, receipt)
    got = sandbox.received()["applications"]
    assert len(got) == 1
    assert rec.lever_application_id == got[0]["id"]
    assert sandbox.count("postings.apply") == 1
    assert "Lever already had this application" in [a["message"] for a in store.attempts(svc.redis, receipt)]


def test_a_probe_that_finds_lever_already_has_it_opens_the_gate(svc: Services, sandbox: Sandbox) -> None:
    """A probe's answer is an answer even when it comes from reconciling: the waiting applications go at once."""
    receipt, other = submit_one(svc, sandbox), submit_one(svc, sandbox, 1)
    sandbox.control("drop", path="/apply", count=1)
    assert deliverer.deliver(svc.delivery, receipt).outcome == deliverer.Outcome.RETRY  # Lever has it; we do not know
    gate.close(svc.redis, gate.Cause.MAINTENANCE, "maintenance")
    assert deliverer.deliver(svc.delivery, other).outcome == deliverer.Outcome.PARKED
    result = deliverer.deliver(svc.delivery, receipt, probe=True)
    assert result.outcome == deliverer.Outcome.DELIVERED
    assert other in result.opened
    assert gate.status(svc.redis).is_open
    assert sandbox.count("postings.apply") == 1


def test_an_unknown_outcome_that_lever_lacks_is_sent_again(svc: Services, sandbox: Sandbox) -> None:
    receipt = submit_one(svc, sandbox)
    sandbox.control("fail", path="/apply", status=502, count=1, message="bad gateway")  # 5xx: outcome unknown
    assert deliverer.deliver(svc.delivery, receipt).outcome == deliverer.Outcome.RETRY
    assert deliverer.deliver(svc.delivery, receipt).outcome == deliverer.Outcome.DELIVERED
    assert len(sandbox.received()["applications"]) == 1
    assert sandbox.count("postings.apply") == 2


def test_without_permission_to_list_opportunities_it_falls_back_to_resending(svc: Services, sandbox: Sandbox) -> None:
    sandbox.control("forbid", endpoints=["opportunities"])
    tasks.on_worker_start(svc)
    assert svc.redis.get(deliverer.CAN_RECONCILE) == b"0"
    receipt = submit_one(svc, sandbox)
    sandbox.control("drop", path="/apply", count=1)
    assert deliverer.deliver(svc.delivery, receipt).outcome == deliverer.Outcome.RETRY
    assert deliverer.deliver(svc.delivery, receipt).outcome == deliverer.Outcome.DELIVERED
    messages = [a["message"] for a in store.attempts(svc.redis, receipt)]
    assert any("may not list opportunities" in m for m in messages)


def test_503_closes_the_gate_and_parks_everything(svc: Services, sandbox: Sandbox) -> None:
    sandbox.control("maintenance", on=True)
    first, second = submit_one(svc, sandbox, 1), submit_one(svc, sandbox, 2)
    result = deliverer.deliver(svc.delivery, first)
    assert result.outcome == deliverer.Outcome.PARKED
    assert result.gate_closed
    assert result.probe_delay_s <= 1.0
    assert gate.status(svc.redis).state == "closed"
    assert deliverer.deliver(svc.delivery, second).outcome == deliverer.Outcome.PARKED
    assert sandbox.count("postings.apply") == 1  # the second never reached Lever
    assert store.load(svc.redis, second).state == State.WAITING
    assert store.load(svc.redis, second).public()["status"] == "waiting"
    assert gate.oldest_parked(svc.redis) == first

    # a probe while Lever is still down backs off; one after it is back opens the gate and releases the rest
    assert deliverer.deliver(svc.delivery, first, probe=True).outcome == deliverer.Outcome.PARKED
    assert gate.status(svc.redis).failures == 1
    sandbox.control("maintenance", on=False)
    result = deliverer.deliver(svc.delivery, first, probe=True)
    assert result.outcome == deliverer.Outcome.DELIVERED
    assert second in result.opened
    status = gate.status(svc.redis)
    assert status.state == "open"
    assert status.parked == 0
    tasks._after(svc, first, result)  # the task layer queues what the probe released
    assert store.load(svc.redis, second).state == State.QUEUED


def test_probe_backoff_is_capped_and_jittered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backoff, "jitter", lambda d: d)
    assert [gate.probe_delay(n, 30) for n in range(7)] == [1, 2, 4, 8, 16, 30, 30]
    monkeypatch.undo()
    assert all(25.5 <= gate.probe_delay(50, 30) <= 30 for _ in range(100))


def test_a_429_slows_every_worker_until_the_rate_climbs_back(
    svc: Services, sandbox: Sandbox, settings: Settings, lever: LeverClient
) -> None:
    receipt = submit_one(svc, sandbox)
    posting = simple_posting(sandbox)
    for n in (101, 102):  # another client of the same key fills Lever's window: 2 applies in this second
        lever.apply(posting["id"], lever_body(sandbox, posting["id"], n))
    before = time.time()
    result = deliverer.deliver(svc.delivery, receipt)
    assert sandbox.count("postings.apply", 429) == 1
    assert result.outcome == deliverer.Outcome.RETRY
    assert result.retry_at >= before + 1.0

    other = Services(settings)  # another worker: its own connection, the state shared in Redis
    apply = other.limits.apply
    lowered = pacing.pace(other.redis, apply, clock=lambda: before)
    assert lowered.factor == pytest.approx(0.7)
    assert lowered.paused_s >= 0.99
    assert lowered.rate_per_s == pytest.approx(0.7 * 2 / (1 + pacing.margin_s(other.redis, apply)))
    first = pacing.reserve(other.redis, (apply,), 10, clock=lambda: before)
    second = pacing.reserve(other.redis, (apply,), 10, clock=lambda: before)
    assert first.wait_s >= 0.99  # nobody sends during the pause
    spacing = (1 + pacing.margin_s(other.redis, apply)) / apply.per_s  # at the margin in force
    assert (second.at_ms - first.at_ms) / 1000 == pytest.approx(spacing / 0.7, abs=0.002)  # slower
    later = [pacing.pace(other.redis, apply, clock=lambda m=m: before + 60 * m).factor for m in (0.2, 0.4, 0.6, 10)]
    # +50 % of the ceiling a minute, up to it; counted from the 429, a moment after `before` (up to 2 s on a loaded
    # machine: 0.017 of the climb)
    assert later == pytest.approx([0.8, 0.9, 1.0, 1.0], abs=0.02)


def test_a_call_that_would_leave_its_slot_late_takes_the_next_one(
    svc: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_sleep = time.sleep
    stalls = [0.2]  # the process is descheduled once, well past half the 100 ms margin

    def sleep(seconds: float) -> None:
        real_sleep(seconds + (stalls.pop() if stalls else 0))

    monkeypatch.setattr(deliverer.time, "sleep", sleep)
    pacer = pacing.Pacer(lambda: svc.redis, svc.limits, 10)
    taken = pacer.take(("lever",))
    slots = svc.redis.zrange(pacing.SLOTS.format("lever"), 0, -1, withscores=True)
    assert len(slots) == 1  # the slot given up is out of the schedule: the callers after it may move up into it
    assert taken.at_ms == slots[0][1]
    assert len(taken.wakes_s) == 2
    assert taken.wakes_s[0] >= 0.2
    assert taken.lag_s is not None
    assert taken.lag_s < 0.2


def test_a_call_late_for_every_slot_never_sends_late(svc: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    """A second, third late wake gave its slot up too (it sent late before: three applies within one second in the
    nemesis's 30-minute run, seed 1336120065); a process late for LATE_SLOTS slots in a row waits its turn again."""
    real_sleep = time.sleep
    stalls = [0.2, 0.2]  # descheduled twice in a row, well past half the margin

    def sleep(seconds: float) -> None:
        real_sleep(seconds + (stalls.pop() if stalls else 0))

    monkeypatch.setattr(deliverer.time, "sleep", sleep)
    pacer = pacing.Pacer(lambda: svc.redis, svc.limits, 10)
    taken = pacer.take(("lever",))
    slots = svc.redis.zrange(pacing.SLOTS.format("lever"), 0, -1, withscores=True)
    assert len(slots) == 1  # two slots given up (out of the schedule), the third on time
    assert taken.at_ms == slots[0][1]
    assert len(taken.wakes_s) == 3
    assert taken.lag_s is not None
    assert taken.lag_s < 0.2
    monkeypatch.setattr(deliverer.time, "sleep", lambda seconds: real_sleep(seconds + 0.2))  # late every time
    with pytest.raises(pacing.RateLimitWait):
        pacer.take(("lever",))
    assert len(svc.redis.zrange(pacing.SLOTS.format("lever"), 0, -1)) == 1
    given_up = json.dumps(["jobsite_pacing_given_up_seconds", {"limit": "lever"}, "+Inf"], separators=(",", ":"))
    assert int(svc.redis.hget(metrics.HISTOGRAMS, given_up) or 0) == pacing.LATE_SLOTS


def test_a_call_waiting_for_its_slot_moves_up_into_one_given_up_before_it(svc: Services) -> None:
    """Five workers hold the next applies; this one queues after them. The one just before it wakes too late and
    gives its slot up: the waiting call takes that slot instead of leaving a hole of one spacing at Lever. (Five, so
    that the slot given up is 2 s away: with three, a suite loading the machine once gave it up only after its time
    had passed, and the call rightly took the moment it looked instead.)"""
    both = (svc.limits.apply, svc.limits.lever)
    held = [pacing.reserve(svc.redis, both, 10) for _ in range(5)]
    pacer = pacing.Pacer(lambda: svc.redis, svc.limits, 10)
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(pacer.take, ("apply", "lever"))
        wait_for(lambda: svc.redis.zcard(pacing.SLOTS.format("apply")) == 6, what="the call's slot reserved")
        pacing.release(svc.redis, both, held[-1])  # its process woke too late: it sends nothing on it
        taken = waiting.result(timeout=30)
    assert taken.at_ms == held[-1].at_ms  # the slot given up, one spacing earlier than the one it had
    assert taken.wakes_s == (taken.lag_s,)


def test_a_retry_after_is_obeyed_by_every_worker(svc: Services, sandbox: Sandbox, lever: LeverClient) -> None:
    receipt = submit_one(svc, sandbox)
    posting = simple_posting(sandbox)
    sandbox.control("limits", mode="bucket", apply_per_s=0.01, apply_burst=1, retry_after=True)
    lever.apply(posting["id"], lever_body(sandbox, posting["id"], 9))  # another client takes the only token
    before = time.time()
    result = deliverer.deliver(svc.delivery, receipt)
    assert result.outcome == deliverer.Outcome.RETRY
    assert result.retry_at >= before + 90
    for limit in (svc.limits.apply, svc.limits.lever):  # every call waits, not only applies
        assert pacing.pace(svc.redis, limit, clock=lambda: before).paused_s >= 90


def test_retry_window_ends_in_needs_attention(svc: Services, sandbox: Sandbox) -> None:
    receipt = submit_one(svc, sandbox)
    rec = store.load(svc.redis, receipt)
    store.update(svc.redis, rec, created_at=time.time() - svc.settings.retry_window_s - 1)
    sandbox.control("fail", path="/apply", status=500, count=1, message="internal")
    assert deliverer.deliver(svc.delivery, receipt).outcome == deliverer.Outcome.NEEDS_ATTENTION
    assert "kept failing for 72 h" in store.load(svc.redis, receipt).last_error


def test_recover_takes_up_an_application_whose_worker_died(svc: Services, sandbox: Sandbox) -> None:
    receipt = submit_one(svc, sandbox)
    rec = store.load(svc.redis, receipt)
    store.update(svc.redis, rec, State.DELIVERING)  # as a worker killed mid-delivery leaves it: no lease
    assert tasks.recover(svc) == 1
    rec = store.load(svc.redis, receipt)
    assert rec.state == State.QUEUED
    assert rec.job_id
    assert jobs.delivery_queue(svc.redis).fetch_job(rec.job_id) is not None


def test_recover_takes_up_an_application_whose_job_a_worker_popped_before_a_failover(
    svc: Services, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker's BLPOP reached the replica, the job's "started" did not (the primary died between): after the
    failover the job says "queued" but is in no queue. Recovery sees through it once the application is idle."""
    receipt = submit_one(svc, sandbox)
    later = time.time() + svc.settings.delivery_lease_s + 1
    monkeypatch.setattr(time, "time", lambda: later)
    assert tasks.recover(svc) == 0  # queued and in its queue: a worker will run it
    queue = jobs.delivery_queue(svc.redis)
    assert svc.redis.lpop(queue.key) is not None  # popped by a worker that then lost its primary
    assert tasks.recover(svc) == 0  # seen once: a live worker may be between its BLPOP and "started"
    assert [a["action"] for a in store.attempts(svc.redis, receipt)].count("recover") == 0
    assert tasks.recover(svc) == 1  # still queued in no queue at the next upkeep: lost
    assert svc.redis.lrange(queue.key, 0, -1) == [store.load(svc.redis, receipt).job_id.encode()]


def test_recover_costs_the_same_round_trips_for_a_backlog_of_any_length(
    svc: Services, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An upkeep's recovery reads each queue once, not once per waiting application (LPOS over a long queue for each
    of a long backlog was quadratic on Redis): neither its round trips nor its reads of a queue grow with the
    backlog."""
    sent = count_round_trips(monkeypatch, svc.redis)
    scans = ("lpos", "lrange", "lindex")  # the commands that walk a list

    def recover_later() -> tuple[int, dict[str, int]]:
        later = time.time() + svc.settings.delivery_lease_s + 1
        with monkeypatch.context() as m:
            m.setattr(time, "time", lambda: later)
            before, stats = sent[0], svc.redis.info("commandstats")
            assert tasks.recover(svc) == 0  # every job is in its queue: nothing is lost
            after = svc.redis.info("commandstats")
            calls = {
                c: after.get(f"cmdstat_{c}", {}).get("calls", 0) - stats.get(f"cmdstat_{c}", {}).get("calls", 0)
                for c in scans
            }
            return sent[0] - before - 2, calls  # (less the two INFO)

    for n in range(3):
        submit_one(svc, sandbox, n)
    recover_later()  # (once first: a connection's opening handshake is no part of it)
    small = recover_later()
    for n in range(3, 40):
        submit_one(svc, sandbox, n)
    assert len(store.receipts(svc.redis, State.QUEUED)) == 40
    assert recover_later() == small


def count_round_trips(monkeypatch: pytest.MonkeyPatch, r: redis.Redis) -> list[int]:
    """A counter of the requests `r`'s connections send (a pipeline is one), from now to the end of the test."""
    cls = next(c for c in r.connection_pool.connection_class.__mro__ if "send_packed_command" in vars(c))
    original = cls.send_packed_command
    sent = [0]

    def counting(self: object, *args: object, **kwargs: object) -> object:
        sent[0] += 1
        return original(self, *args, **kwargs)

    monkeypatch.setattr(cls, "send_packed_command", counting)
    return sent


def test_recover_takes_up_an_application_whose_job_a_lost_pop_left_queued_in_no_queue(
    svc: Services, sandbox: Sandbox
) -> None:
    """A worker serving several queues pops with BLPOP: a pop whose answer is lost (the connection cut, Redis killed
    before replying) or a worker that dies between the pop and starting the job leaves the job "queued" in no queue.
    It was taken for alive, so the application waited forever (the nemesis's 30-minute run); a lease after its last
    change it is queued again. One still in its queue is left alone."""
    r = svc.redis
    lost, waiting = submit_one(svc, sandbox, 1), submit_one(svc, sandbox, 2)
    lost_job = store.load(r, lost).job_id
    queue = jobs.delivery_queue(r)
    assert r.lrem(queue.key, 1, lost_job) == 1  # what the lost BLPOP took, and nobody received
    for receipt in (lost, waiting):
        r.hset(store.record_key(receipt), "updated_at", time.time() - svc.settings.delivery_lease_s - 1)
    assert tasks.recover(svc) == 0  # seen once: a live worker may be between its BLPOP and "started"
    assert tasks.recover(svc) == 1  # still in no queue at the next upkeep: lost
    rec = store.load(r, lost)
    assert (rec.state, rec.job_id != lost_job) == (State.QUEUED, True)
    assert r.lpos(queue.key, rec.job_id) is not None
    assert store.load(r, waiting).job_id in queue.job_ids
    assert tasks.recover(svc) == 0


def test_recover_takes_up_an_application_whose_job_started_over_a_lease_ago_without_its_lease(
    svc: Services, sandbox: Sandbox
) -> None:
    """A worker killed (or cut off from Redis) after RQ marked its job started and before the delivery took the lease
    leaves the job "started" until RQ's timeout (10 minutes) calls it abandoned: the nemesis's 30-minute run (seed
    515944940) waited that long for 2 applications, past its drain's bound. A started job that holds no lease a lease
    after it started is taken up; one started a moment ago is left alone."""
    from datetime import UTC, datetime, timedelta

    from rq.job import Job, JobStatus

    r, lease_s = svc.redis, svc.settings.delivery_lease_s
    dead, starting = submit_one(svc, sandbox, 1), submit_one(svc, sandbox, 2)
    queue = jobs.delivery_queue(r)
    for receipt, ago in ((dead, lease_s + 1), (starting, 0)):
        job = Job.fetch(store.load(r, receipt).job_id, connection=r)
        assert r.lrem(queue.key, 1, job.id) == 1  # popped by a worker, which marked it started
        job.set_status(JobStatus.STARTED)
        started = datetime.now(UTC) - timedelta(seconds=ago)
        r.hset(job.key, "started_at", started.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
        r.hset(store.record_key(receipt), "updated_at", time.time() - lease_s - 1)
    assert tasks.recover(svc) == 1
    assert store.load(r, dead).job_id in queue.job_ids
    assert store.load(r, starting).job_id not in queue.job_ids
    assert tasks.recover(svc) == 0


def test_cli_lists_and_retries_applications_that_need_attention(
    svc: Services, sandbox: Sandbox, settings: Settings
) -> None:
    from click.testing import CliRunner

    from jobsite.cli import main

    from .helpers import worker_env

    receipt = submit_one(svc, sandbox)
    sandbox.control("fail", path="/apply", status=400, count=1, message="Posting requires a phone number")
    deliverer.deliver(svc.delivery, receipt)
    env = worker_env(settings)
    listed = CliRunner().invoke(main, ["applications", "list"], env=env)
    assert listed.exit_code == 0
    assert receipt in listed.output
    assert "requires a phone number" in listed.output
    retried = CliRunner().invoke(main, ["applications", "retry", "--all"], env=env)
    assert retried.exit_code == 0
    assert "queued 1 application" in retried.output
    rec = store.load(svc.redis, receipt)
    assert rec.state == State.QUEUED
    assert deliverer.deliver(svc.delivery, receipt).outcome == deliverer.Outcome.DELIVERED


def test_a_refused_api_key_parks_everything_instead_of_failing_each(svc: Services, sandbox: Sandbox) -> None:
    receipt = submit_one(svc, sandbox)
    sandbox.control("forbid", endpoints=["postings.apply"])
    result = deliverer.deliver(svc.delivery, receipt)
    assert result.outcome == deliverer.Outcome.PARKED
    assert result.gate_closed
    status = gate.status(svc.redis)
    assert status.state == "closed"
    assert "refused the API key (403)" in status.reason
    assert store.load(svc.redis, receipt).state == State.WAITING
    sandbox.control("forbid", endpoints=[])
    assert deliverer.deliver(svc.delivery, receipt, probe=True).outcome == deliverer.Outcome.DELIVERED
    assert gate.status(svc.redis).state == "open"


def test_an_unknown_outcome_survives_maintenance_until_it_is_reconciled(svc: Services, sandbox: Sandbox) -> None:
    receipt = submit_one(svc, sandbox)
    sandbox.control("drop", path="/apply", count=1)
    assert deliverer.deliver(svc.delivery, receipt).outcome == deliverer.Outcome.RETRY  # Lever has it; we do not know
    sandbox.control("maintenance", on=True)
    assert deliverer.deliver(svc.delivery, receipt, probe=True).outcome == deliverer.Outcome.PARKED  # reconcile got 503
    assert store.load(svc.redis, receipt).inflight_at > 0  # still unknown: must be checked, not re-sent
    sandbox.control("maintenance", on=False)
    assert deliverer.deliver(svc.delivery, receipt, probe=True).outcome == deliverer.Outcome.DELIVERED
    assert len(sandbox.received()["applications"]) == 1
    assert sandbox.count("postings.apply") == 1


def test_the_probe_job_keeps_one_successor_until_lever_is_back(
    svc: Services, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rq.registry import ScheduledJobRegistry

    monkeypatch.setattr(deliverer, "PROBE_READS_FOR_S", 0)  # one read a job: the successor is what is tested

    sandbox.control("maintenance", on=True)
    first, second = submit_one(svc, sandbox, 1), submit_one(svc, sandbox, 2)
    tasks.deliver(first)  # closes the gate and schedules the probe
    tasks.deliver(second)
    scheduled = ScheduledJobRegistry(jobs.QUEUE, connection=svc.redis)
    assert [j for j in scheduled.get_job_ids() if j.startswith("probe-")] == [svc.redis.get(gate.PROBE).decode()]
    assert jobs.schedule_probe(svc.redis, 0, svc.settings.delivery_lease_s) is False  # one probe at a time
    assert tasks.probe() == "closed"  # still in maintenance: the read got 503; it scheduled its successor
    assert (sandbox.count("stages.list", 503), sandbox.count("postings.apply")) == (1, 1)  # read, not re-sent
    probes = [j for j in scheduled.get_job_ids() if j.startswith("probe-")]
    assert len(probes) == 2
    assert svc.redis.get(gate.PROBE).decode() in probes
    sandbox.control("maintenance", on=False)
    assert tasks.probe() == "delivered"  # the read passed: the oldest application went at once
    assert not svc.redis.exists(gate.PROBE)
    assert gate.status(svc.redis).state == "open"
    assert store.load(svc.redis, second).state == State.QUEUED
    assert [a["body"]["personalInformation"][1]["value"] for a in sandbox.received()["applications"]] == [
        "candidate1@example.com"
    ]


def test_one_probe_job_reads_until_maintenance_ends_and_delivers_at_once(svc: Services, sandbox: Sandbox) -> None:
    """The reads of one probe job follow each other in its process (RQ's whole-second scheduler between jobs added one
    to two seconds to the first delivery after a window): it reads until Lever answers, then delivers."""
    sandbox.control("maintenance", on=True)
    receipt = submit_one(svc, sandbox, 1)
    tasks.deliver(receipt)  # closes the gate and schedules the probe
    with ThreadPoolExecutor(1) as pool:
        probing = pool.submit(tasks.probe)
        wait_for(lambda: sandbox.count("stages.list", 503) >= 2, what="two reads in one job")
        sandbox.control("maintenance", on=False)
        assert probing.result(timeout=30) == "delivered"
    assert gate.status(svc.redis).state == "open"
    assert store.load(svc.redis, receipt).state == State.DELIVERED


def test_a_file_missing_from_redis_needs_attention_and_says_so(svc: Services, sandbox: Sandbox) -> None:
    from jobsite.intake.forms import answers_from_lever_body
    from jobsite.records.uploads import UploadedFile

    from .helpers import file_posting

    p = file_posting(sandbox)
    form = build_form(sandbox.state.questions[p["id"]])
    upload = {"resume": UploadedFile("cv.pdf", b"%PDF-1.4 cv")}
    app = validate(form, answers_from_lever_body(form, lever_body(sandbox, p["id"])), upload, 2**20)
    receipt = accept.submit(svc.intake, app, upload).receipt
    uploads.remove(svc.redis, receipt)
    assert deliverer.deliver(svc.delivery, receipt).outcome == deliverer.Outcome.NEEDS_ATTENTION
    assert store.load(svc.redis, receipt).last_error.startswith("the uploaded file cv.pdf is no longer in Redis")


def test_a_probe_that_fails_before_reaching_lever_leaves_the_gate_closed(svc: Services, sandbox: Sandbox) -> None:
    from jobsite.intake.forms import answers_from_lever_body
    from jobsite.records.uploads import UploadedFile

    from .helpers import file_posting

    sandbox.control("maintenance", on=True)
    p = file_posting(sandbox)
    form = build_form(sandbox.state.questions[p["id"]])
    upload = {"resume": UploadedFile("cv.pdf", b"%PDF-1.4 cv")}
    app = validate(form, answers_from_lever_body(form, lever_body(sandbox, p["id"])), upload, 2**20)
    broken = accept.submit(svc.intake, app, upload).receipt
    waiting = submit_one(svc, sandbox, 2)
    for receipt in (broken, waiting):
        deliverer.deliver(svc.delivery, receipt)
    uploads.remove(svc.redis, broken)
    assert deliverer.deliver(svc.delivery, broken, probe=True).outcome == deliverer.Outcome.NEEDS_ATTENTION
    status = gate.status(svc.redis)
    assert status.state == "closed"  # a missing file says nothing about Lever: still in maintenance
    assert gate.oldest_parked(svc.redis) == waiting  # the next probe takes the next application
    assert store.load(svc.redis, waiting).state == State.WAITING


def test_a_worker_whose_lease_ran_out_cannot_end_the_lease_another_worker_took(r: redis.Redis) -> None:
    first = deliverer._lease(r, "rcpt", 1)
    assert first.acquire()
    r.delete(deliverer.LEASE.format("rcpt"))  # as if it expired while the first worker stalled
    second = deliverer._lease(r, "rcpt", 60)
    assert second.acquire()
    with pytest.raises(LockError):
        first.reacquire()  # extending checks ownership
    with pytest.raises(LockError):
        first.release()  # and so does releasing
    assert r.exists(deliverer.LEASE.format("rcpt"))
    assert second.owned()


def test_a_delivery_whose_lease_ran_out_stops_before_applying(
    svc: Services, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    receipt = submit_one(svc, sandbox)
    real = deliverer._lease

    def stolen(r: redis.Redis, receipt_: str, ttl_s: int):
        lease = real(r, receipt_, ttl_s)
        original = lease.acquire

        def acquire() -> bool:
            got = original()
            r.set(deliverer.LEASE.format(receipt_), "another worker's token")  # ours ran out; another took it
            return got

        lease.acquire = acquire
        return lease

    monkeypatch.setattr(deliverer, "_lease", stolen)
    assert deliverer.deliver(svc.delivery, receipt).outcome == deliverer.Outcome.SKIPPED
    assert sandbox.count("postings.apply") == 0  # nothing was sent by the worker that lost its lease
    assert svc.redis.get(deliverer.LEASE.format(receipt)) == b"another worker's token"  # nor ended the other's lease


def test_the_maintenance_check_is_a_light_read_paced_with_every_call(svc: Services, sandbox: Sandbox) -> None:
    sandbox.control("maintenance", on=True)
    check = deliverer.check_maintenance(svc.delivery)
    assert check == deliverer.MaintenanceCheck(deliverer.Check.ONGOING, svc.settings.probe_interval_s)
    assert svc.redis.zcard(pacing.SLOTS.format("lever")) == 1  # the read took a slot every Lever call shares
    sandbox.control("maintenance", on=False)
    assert deliverer.check_maintenance(svc.delivery).check == deliverer.Check.ENDED
    sandbox.control("fail", path="/stages", status=429, count=1, message="slow down")
    assert (
        deliverer.check_maintenance(svc.delivery).check == deliverer.Check.ENDED
    )  # Lever answered: not in maintenance
    assert pacing.pace(svc.redis, svc.limits.lever).factor < 1  # and its 429 slowed every worker's calls
    assert [q["status"] for q in sandbox.received()["requests"]] == [503, 200, 429]
    assert sandbox.count("stages.list") == 3
    assert sandbox.count("postings.apply") == 0


def test_a_refused_read_is_remembered_and_tried_again_later(
    svc: Services, sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    sandbox.control("forbid", endpoints=["stages"])
    sandbox.control("maintenance", on=True)
    assert deliverer.check_maintenance(svc.delivery).check == deliverer.Check.UNREADABLE
    assert deliverer.check_maintenance(svc.delivery).check == deliverer.Check.UNREADABLE
    assert sandbox.count("stages.list") == 1  # not asked again every few seconds
    assert gate.read_refused(svc.redis) == "the API key may not read stages (403)"
    assert "re-sending the oldest application" in caplog.text
    assert "API key may not read stages" in caplog.text
    svc.redis.delete(gate.READ_REFUSED)  # as when JOBSITE_PROBE_READ_RETRY_S has passed
    sandbox.control("forbid", endpoints=[])  # an admin granted the read meanwhile
    assert deliverer.check_maintenance(svc.delivery).check == deliverer.Check.ONGOING
    assert sandbox.count("stages.list") == 2


def test_a_probe_with_nothing_parked_opens_the_gate_once_the_read_passes(
    svc: Services, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(deliverer, "PROBE_READS_FOR_S", 0)
    gate.close(svc.redis, gate.Cause.MAINTENANCE, "Lever is in maintenance mode (503)")
    jobs.schedule_probe(svc.redis, 0, svc.settings.delivery_lease_s)
    sandbox.control("maintenance", on=True)
    assert tasks.probe() == "closed"
    assert gate.probe_scheduled(svc.redis)
    sandbox.control("maintenance", on=False)
    assert tasks.probe() == "open"
    assert gate.status(svc.redis).state == "open"
    assert not gate.probe_scheduled(svc.redis)
    assert [q["endpoint"] for q in sandbox.received()["requests"]] == ["stages.list", "stages.list"]


def test_a_probe_whose_job_failed_or_vanished_is_replaced_at_the_next_upkeep(
    svc: Services, caplog: pytest.LogCaptureFixture
) -> None:
    """A probe job that failed (an error, or Redis back before RQ recorded it) or vanished left the gate closed with
    nothing checking Lever until its claim expired, a minute and more: the next upkeep schedules another. A probe
    that is still due is left alone."""
    from rq.job import Job, JobStatus

    r = svc.redis
    gate.close(r, gate.Cause.MAINTENANCE, "Lever is in maintenance mode (503)")
    assert jobs.schedule_probe(r, 30, svc.settings.delivery_lease_s)
    due = gate.probe_claim(r)
    assert due is not None
    assert Job.fetch(due, connection=r).get_status() == JobStatus.SCHEDULED  # claimed with its job, in one step
    tasks.upkeep()
    assert gate.probe_claim(r) == due
    for end in ("failed", "vanished"):
        job = Job.fetch(gate.probe_claim(r) or "", connection=r)
        if end == "failed":
            job.set_status(JobStatus.FAILED)
        else:
            job.delete()
        r.delete(tasks.UPKEEP_LOCK)  # the next upkeep interval
        with caplog.at_level(logging.WARNING):
            tasks.upkeep()
        successor = gate.probe_claim(r)
        assert successor not in (None, job.id), end
        assert Job.fetch(successor or "", connection=r).get_status() == JobStatus.SCHEDULED, end
    assert caplog.text.count("the probe of the closed gate ended without a successor") == 2


def test_a_refused_key_is_probed_by_delivering_not_by_reading(svc: Services, sandbox: Sandbox) -> None:
    from jobsite.console import dashboard

    receipt = submit_one(svc, sandbox)
    sandbox.control("forbid", endpoints=["postings.apply"])
    tasks.deliver(receipt)  # 403: the gate closes for the key, and a probe is scheduled
    assert gate.status(svc.redis).cause == gate.Cause.KEY_REFUSED
    assert "re-sending the oldest application" in dashboard.status(svc.board)["gate"]["check"]
    sandbox.control("forbid", endpoints=[])
    assert tasks.probe() == "delivered"
    assert sandbox.count("stages.list") == 0  # a read says nothing about the key's right to apply
    assert dashboard.status(svc.board)["gate"]["check"] == ""


def test_a_job_queued_under_the_old_task_path_still_runs(svc: Services, sandbox: Sandbox) -> None:
    """RQ keeps each job's function as a dotted path in Redis: a job queued by a version before the tasks moved to
    jobsite.worker.tasks (here a delivery named `jobsite.tasks.deliver`, with its failure callback under the old path
    too) is still run by today's worker, though no module `jobsite.tasks` exists any more."""
    from rq import Callback, SimpleWorker

    assert importlib.util.find_spec("jobsite.tasks") is None
    receipt = submit_one(svc, sandbox)
    queue = jobs.delivery_queue(svc.redis)
    queue.empty()  # what today's intake queued; the old version queued this instead:
    old = queue.enqueue("jobsite.tasks.deliver", receipt, on_failure=Callback("jobsite.tasks.delivery_crashed"))
    assert old.func_name == "jobsite.tasks.deliver"
    assert jobs.TaskJob.fetch(old.id, connection=svc.redis).failure_callback is tasks.delivery_crashed
    SimpleWorker(jobs.queues(svc.redis), connection=svc.redis, job_class=jobs.TaskJob).work(burst=True)
    assert store.load(svc.redis, receipt).state == State.DELIVERED
    assert sandbox.count("postings.apply") == 1

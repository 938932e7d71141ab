"""Following site-sourced candidates through Lever's Opportunities model (issue 9): tags after delivery, through
maintenance and failures; one person with several opportunities."""

from __future__ import annotations

import re
import time

import pytest
import redis
import requests
from rq import Queue

from jobsite import audit, delivery, opportunities, queue, store, tasks, users
from jobsite.services import Services
from jobsite.settings import Settings
from jobsite.store import State

from .conftest import TIMING, LiveServer, Sandbox, Workers, wait_for, worker_env
from .helpers import lever_body, simple_posting
from .test_admin import ADMIN, sign_in
from .test_delivery import accept

SITE, SOURCE = "Acme Robotics careers site", "Acme Robotics source: linkedin"
CAMPAIGN = "Acme Robotics campaign: spring"
MAINTENANCE = "Acme Robotics applied during Lever maintenance"


@pytest.fixture
def svc(settings: Settings, r: redis.Redis) -> Services:
    return tasks.use(Services(settings))


def lever_tags(sandbox: Sandbox) -> list[list[str]]:
    return [o["tags"] for o in requests.get(f"{sandbox.url}/_sandbox/opportunities", timeout=5).json()["data"]]


def post(live: LiveServer, sandbox: Sandbox, n: int, query: str = "") -> str:
    posting = simple_posting(sandbox)
    answer = requests.post(f"{live.url}/api/v1/postings/{posting['id']}/applications{query}",
                           json=lever_body(sandbox, posting["id"], n), timeout=30)
    assert answer.status_code == 202, answer.text
    return str(answer.json()["receipt"])


@pytest.mark.slow
def test_a_delivered_application_gets_its_prefixed_tags_and_the_console_shows_them(
        settings: Settings, r: redis.Redis, live: LiveServer, sandbox: Sandbox, workers: Workers, client) -> None:
    workers.start(worker_env(settings))
    receipt = post(live, sandbox, 0, "?utm_source=linkedin&utm_campaign=spring")
    wait_for(lambda: lever_tags(sandbox) == [[SITE, SOURCE, CAMPAIGN]], what="the tags in Lever")
    assert sandbox.received()["applications"][0]["body"]["source"] == "linkedin"
    rec = wait_for(lambda: (x := store.load(r, receipt)) and x.tagging == "done" and x, what="tagging recorded")
    assert rec.state == State.DELIVERED and rec.tags_confirmed == rec.tags_requested == [SITE, SOURCE, CAMPAIGN]
    users.add_user(r, *ADMIN, users.Role.ADMIN)
    sign_in(client, *ADMIN)
    page = client.get(f"/admin/applications/{receipt}").get_data(as_text=True)
    assert "Acme Robotics campaign: spring" in page and 'id="tags-confirmed"' in page


@pytest.mark.slow
@TIMING  # no 429
def test_during_maintenance_tags_come_after_the_window_with_no_429_and_say_so(
        settings: Settings, r: redis.Redis, live: LiveServer, sandbox: Sandbox, workers: Workers) -> None:
    sandbox.control("maintenance", on=True)
    workers.start(worker_env(settings))
    receipts = [post(live, sandbox, n, "?utm_source=linkedin&utm_campaign=spring") for n in range(3)]
    wait_for(lambda: store.counts(r)["waiting"] == 3, what="all three to wait for Lever")
    wait_for(lambda: sandbox.count("stages.list", 503) >= 2, what="the probe's reads")
    assert sandbox.count("opportunities.tags") == 0
    ended = time.time()
    sandbox.control("maintenance", on=False)
    wait_for(lambda: len(lever_tags(sandbox)) == 3 and all(len(t) == 4 for t in lever_tags(sandbox)), timeout=60,
             interval=0.1, what="every opportunity tagged")
    assert all(t == [SITE, SOURCE, CAMPAIGN, MAINTENANCE] for t in lever_tags(sandbox))
    requests_ = sandbox.received()["requests"]
    assert [q for q in requests_ if q["status"] == 429] == []
    assert all(q["t"] >= ended and q["status"] == 200 for q in requests_ if q["endpoint"] == "opportunities.tags")
    assert all(rec.state == State.DELIVERED for rec in store.load_many(r, receipts))


def test_tagging_failing_twice_never_undoes_delivery_and_the_tags_arrive(svc: Services, sandbox: Sandbox) -> None:
    receipt = accept(svc, sandbox)
    assert delivery.deliver(svc, receipt).outcome == delivery.Outcome.DELIVERED
    sandbox.control("fail", path="/addTags", status=500, count=2)
    first = opportunities.tag(svc, receipt, 0)
    assert first.step == opportunities.Step.RETRY and first.attempt == 1 and first.retry_at > time.time()
    assert store.load(svc.redis, receipt).state == State.DELIVERED
    second = opportunities.tag(svc, receipt, first.attempt)
    assert second.step == opportunities.Step.RETRY and second.retry_at - time.time() > first.retry_at - time.time() - 1
    rec = store.load(svc.redis, receipt)
    assert rec.state == State.DELIVERED and rec.tags_confirmed == [] and rec.tagging.startswith("retrying")
    assert opportunities.tag(svc, receipt, second.attempt).step == opportunities.Step.DONE
    rec = store.load(svc.redis, receipt)
    assert rec.state == State.DELIVERED and rec.tags_confirmed == [SITE] and lever_tags(sandbox) == [[SITE]]
    assert opportunities.tag(svc, receipt, 0).step == opportunities.Step.SKIPPED  # done once
    assert sandbox.count("opportunities.tags") == 3


def test_tagging_that_gave_up_is_retried_by_an_admin(svc: Services, sandbox: Sandbox, client) -> None:
    receipt = accept(svc, sandbox)
    assert delivery.deliver(svc, receipt).outcome == delivery.Outcome.DELIVERED
    sandbox.control("fail", path="/addTags", status=500, count=1)
    last = opportunities.tag(svc, receipt, opportunities.TAG_TRIES - 1)
    assert last.step != opportunities.Step.DONE and store.load(svc.redis, receipt).tagging.startswith("gave up")
    users.add_user(svc.redis, *ADMIN, users.Role.ADMIN)
    sign_in(client, *ADMIN)
    page = client.get(f"/admin/applications/{receipt}").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    assert "Retry tagging" in page
    assert client.post(f"/admin/applications/{receipt}/retry-tagging", data={"csrf_token": token}).status_code == 302
    [job] = Queue(queue.FOLLOWUP_QUEUE, connection=svc.redis).jobs
    assert job.args == (receipt, 0) and audit.entries(svc.redis, 1)[0]["action"] == "retry tagging"
    assert opportunities.tag(svc, *job.args).step == opportunities.Step.DONE
    assert lever_tags(sandbox) == [[SITE]]
    assert "Retry tagging" not in client.get(f"/admin/applications/{receipt}").get_data(as_text=True)


def test_an_opportunity_not_found_at_delivery_is_looked_up_again(svc: Services, sandbox: Sandbox) -> None:
    receipt = accept(svc, sandbox)
    sandbox.control("fail", path="/opportunities", status=503, count=1)  # delivery's lookup fails
    assert delivery.deliver(svc, receipt).outcome == delivery.Outcome.DELIVERED
    assert store.load(svc.redis, receipt).opportunity_id == ""
    assert opportunities.tag(svc, receipt, 0).step == opportunities.Step.DONE
    rec = store.load(svc.redis, receipt)
    assert rec.opportunity_id == sandbox.received()["applications"][0]["opportunityId"] and rec.contact_id


def test_every_opportunity_of_the_contact_is_tagged_when_asked(svc: Services, sandbox: Sandbox) -> None:
    from dataclasses import replace

    svc = tasks.use(Services(replace(svc.settings, tag_every_opportunity=True)))
    first = accept(svc, sandbox, 0)
    assert delivery.deliver(svc, first).outcome == delivery.Outcome.DELIVERED
    second = accept(svc, sandbox, 0, posting=other_posting(sandbox))
    assert delivery.deliver(svc, second).outcome == delivery.Outcome.DELIVERED
    assert opportunities.tag(svc, second, 0).step == opportunities.Step.DONE
    assert lever_tags(sandbox) == [[SITE], [SITE]]


def other_posting(sandbox: Sandbox) -> dict:
    first = simple_posting(sandbox)
    return next(p for i, (pid, p) in enumerate(sandbox.state.postings.items())
                if i % 2 == 1 and p in sandbox.public_postings() and pid != first["id"]
                and len(p["categories"]["allLocations"]) == 1)


def test_one_email_two_postings_is_one_person_grouped_in_the_console(svc: Services, sandbox: Sandbox, client,
                                                                     r: redis.Redis) -> None:
    sandbox.control("limits", apply_per_s=100, apply_burst=100)
    receipts = [accept(svc, sandbox, 0), accept(svc, sandbox, 0, posting=other_posting(sandbox))]
    for receipt in receipts:
        assert delivery.deliver(svc, receipt).outcome == delivery.Outcome.DELIVERED
    a, b = store.load_many(r, receipts)
    assert a.contact_id == b.contact_id and a.opportunity_id != b.opportunity_id
    assert store.of_contact(r, a.contact_id) == sorted(receipts)
    users.add_user(r, *ADMIN, users.Role.ADMIN)
    sign_in(client, *ADMIN)
    page = client.get(f"/admin/people/{a.contact_id}").get_data(as_text=True)
    assert "2 application(s)" in page and a.opportunity_id in page and b.opportunity_id in page
    assert page.count("New applicant") == 2  # both listed from Lever with their stage
    assert f"/admin/people/{a.contact_id}" in client.get(f"/admin/applications/{a.receipt}").get_data(as_text=True)

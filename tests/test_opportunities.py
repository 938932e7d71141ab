"""Following site-sourced candidates through Lever's Opportunities model (issue 9): tags after delivery, through
maintenance and failures; one person with several opportunities."""

from __future__ import annotations

import time

import pytest
import redis
import requests
from rq import Queue

from jobsite.console import accounts, audit
from jobsite.delivery import deliverer, jobs
from jobsite.followup import tagging
from jobsite.records import store
from jobsite.records.store import State
from jobsite.services import Services
from jobsite.settings import Settings
from jobsite.worker import tasks

from .helpers import (
    ADMIN,
    TIMING,
    LiveServer,
    Sandbox,
    Workers,
    csrf_in,
    lever_body,
    other_posting,
    sign_in,
    simple_posting,
    submit_one,
    wait_for,
    worker_env,
)

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
    answer = requests.post(
        f"{live.url}/api/v1/postings/{posting['id']}/applications{query}",
        json=lever_body(sandbox, posting["id"], n),
        timeout=30,
    )
    assert answer.status_code == 202, answer.text
    return str(answer.json()["receipt"])


@pytest.mark.slow
def test_a_delivered_application_gets_its_prefixed_tags_and_the_console_shows_them(
    settings: Settings, r: redis.Redis, live: LiveServer, sandbox: Sandbox, workers: Workers, client
) -> None:
    workers.start(worker_env(settings))
    receipt = post(live, sandbox, 0, "?utm_source=linkedin&utm_campaign=spring")
    wait_for(lambda: lever_tags(sandbox) == [[SITE, SOURCE, CAMPAIGN]], what="the tags in Lever")
    assert sandbox.received()["applications"][0]["body"]["source"] == "linkedin"
    rec = wait_for(lambda: (x := store.load(r, receipt)) and x.tagging == "done" and x, what="tagging recorded")
    assert rec.state == State.DELIVERED
    assert rec.tags_confirmed == rec.tags_requested == [SITE, SOURCE, CAMPAIGN]
    accounts.add_user(r, *ADMIN, accounts.Role.ADMIN)
    sign_in(client, *ADMIN)
    page = client.get(f"/admin/applications/{receipt}").get_data(as_text=True)
    assert "Acme Robotics campaign: spring" in page
    assert 'id="tags-confirmed"' in page


@pytest.mark.slow
@TIMING  # no 429
def test_during_maintenance_tags_come_after_the_window_with_no_429_and_say_so(
    settings: Settings, r: redis.Redis, live: LiveServer, sandbox: Sandbox, workers: Workers
) -> None:
    sandbox.control("maintenance", on=True)
    workers.start(worker_env(settings))
    receipts = [post(live, sandbox, n, "?utm_source=linkedin&utm_campaign=spring") for n in range(3)]
    wait_for(lambda: store.counts(r)["waiting"] == 3, what="all three to wait for Lever")
    wait_for(lambda: sandbox.count("stages.list", 503) >= 2, what="the probe's reads")
    assert sandbox.count("opportunities.tags") == 0
    ended = time.time()
    sandbox.control("maintenance", on=False)
    wait_for(
        lambda: len(lever_tags(sandbox)) == 3 and all(len(t) == 4 for t in lever_tags(sandbox)),
        timeout=60,
        interval=0.1,
        what="every opportunity tagged",
    )
    assert all(t == [SITE, SOURCE, CAMPAIGN, MAINTENANCE] for t in lever_tags(sandbox))
    requests_ = sandbox.received()["requests"]
    assert [q for q in requests_ if q["status"] == 429] == []
    assert all(q["t"] >= ended and q["status"] == 200 for q in requests_ if q["endpoint"] == "opportunities.tags")
    assert all(rec.state == State.DELIVERED for rec in store.load_many(r, receipts))


def test_tagging_failing_twice_never_undoes_delivery_and_the_tags_arrive(svc: Services, sandbox: Sandbox) -> None:
    receipt = submit_one(svc, sandbox)
    assert deliverer.deliver(svc.delivery, receipt).outcome == deliverer.Outcome.DELIVERED
    sandbox.control("fail", path="/addTags", status=500, count=2)
    first = tagging.tag(svc.delivery, receipt, 0)
    assert first.step == tagging.Step.RETRY
    assert first.attempt == 1
    assert first.retry_at > time.time()
    assert store.load(svc.redis, receipt).state == State.DELIVERED
    second = tagging.tag(svc.delivery, receipt, first.attempt)
    assert second.step == tagging.Step.RETRY
    assert second.retry_at - time.time() > first.retry_at - time.time() - 1
    rec = store.load(svc.redis, receipt)
    assert rec.state == State.DELIVERED
    assert rec.tags_confirmed == []
    assert rec.tagging.startswith("retrying")
    assert tagging.tag(svc.delivery, receipt, second.attempt).step == tagging.Step.DONE
    rec = store.load(svc.redis, receipt)
    assert rec.state == State.DELIVERED
    assert rec.tags_confirmed == [SITE]
    assert lever_tags(sandbox) == [[SITE]]
    assert tagging.tag(svc.delivery, receipt, 0).step == tagging.Step.SKIPPED  # done once
    assert sandbox.count("opportunities.tags") == 3


def test_tagging_that_gave_up_is_retried_by_an_admin(svc: Services, sandbox: Sandbox, client) -> None:
    receipt = submit_one(svc, sandbox)
    assert deliverer.deliver(svc.delivery, receipt).outcome == deliverer.Outcome.DELIVERED
    sandbox.control("fail", path="/addTags", status=500, count=1)
    last = tagging.tag(svc.delivery, receipt, tagging.TAG_TRIES - 1)
    assert last.step != tagging.Step.DONE
    assert store.load(svc.redis, receipt).tagging.startswith("gave up")
    accounts.add_user(svc.redis, *ADMIN, accounts.Role.ADMIN)
    sign_in(client, *ADMIN)
    page = client.get(f"/admin/applications/{receipt}").get_data(as_text=True)
    token = csrf_in(page)
    assert "Retry tagging" in page
    assert client.post(f"/admin/applications/{receipt}/retry-tagging", data={"csrf_token": token}).status_code == 302
    [job] = Queue(jobs.FOLLOWUP_QUEUE, connection=svc.redis).jobs
    assert job.args == (receipt, 0)
    assert audit.entries(svc.redis, 1)[0]["action"] == "retry tagging"
    assert tagging.tag(svc.delivery, *job.args).step == tagging.Step.DONE
    assert lever_tags(sandbox) == [[SITE]]
    assert "Retry tagging" not in client.get(f"/admin/applications/{receipt}").get_data(as_text=True)


def test_an_opportunity_not_found_at_delivery_is_looked_up_again(svc: Services, sandbox: Sandbox) -> None:
    receipt = submit_one(svc, sandbox)
    sandbox.control("fail", path="/opportunities", status=503, count=1)  # delivery's lookup fails
    assert deliverer.deliver(svc.delivery, receipt).outcome == deliverer.Outcome.DELIVERED
    assert store.load(svc.redis, receipt).opportunity_id == ""
    assert tagging.tag(svc.delivery, receipt, 0).step == tagging.Step.DONE
    rec = store.load(svc.redis, receipt)
    assert rec.opportunity_id == sandbox.received()["applications"][0]["opportunityId"]
    assert rec.contact_id


def test_every_opportunity_of_the_contact_is_tagged_when_asked(svc: Services, sandbox: Sandbox) -> None:
    from dataclasses import replace

    svc = tasks.use(Services(replace(svc.settings, tag_every_opportunity=True)))
    first = submit_one(svc, sandbox, 0)
    assert deliverer.deliver(svc.delivery, first).outcome == deliverer.Outcome.DELIVERED
    second = submit_one(svc, sandbox, 0, posting=other_posting(sandbox))
    assert deliverer.deliver(svc.delivery, second).outcome == deliverer.Outcome.DELIVERED
    assert tagging.tag(svc.delivery, second, 0).step == tagging.Step.DONE
    assert lever_tags(sandbox) == [[SITE], [SITE]]


def test_one_email_two_postings_is_one_person_grouped_in_the_console(
    svc: Services, sandbox: Sandbox, client, r: redis.Redis
) -> None:
    sandbox.control("limits", apply_per_s=100, apply_burst=100)
    receipts = [submit_one(svc, sandbox, 0), submit_one(svc, sandbox, 0, posting=other_posting(sandbox))]
    for receipt in receipts:
        assert deliverer.deliver(svc.delivery, receipt).outcome == deliverer.Outcome.DELIVERED
    a, b = store.load_many(r, receipts)
    assert a.contact_id == b.contact_id
    assert a.opportunity_id != b.opportunity_id
    assert store.of_contact(r, a.contact_id) == sorted(receipts)
    accounts.add_user(r, *ADMIN, accounts.Role.ADMIN)
    sign_in(client, *ADMIN)
    page = client.get(f"/admin/people/{a.contact_id}").get_data(as_text=True)
    assert "2 applications through the site" in page
    assert a.opportunity_id in page
    assert b.opportunity_id in page
    assert f'/candidates/{a.opportunity_id}" target="_blank"' in page  # Open in Lever
    assert page.count("New applicant") == 2  # both listed from Lever with their stage
    assert f"/admin/people/{a.contact_id}" in client.get(f"/admin/applications/{a.receipt}").get_data(as_text=True)

"""After a sourced person's delivery: the pipeline report counts their opportunities by source, Lever's webhooks
keep them fresh, and their personal data goes on the retention schedule or when Lever deletes the person."""

from __future__ import annotations

from dataclasses import replace

import redis

from jobsite.followup import report
from jobsite.privacy import sourced as retention
from jobsite.records.uploads import UploadedFile
from jobsite.services import Services
from jobsite.settings import Settings
from jobsite.sourcing import enrol, events, people
from jobsite.web.app import create_app
from jobsite.worker import tasks

from .helpers import LiveServer, Sandbox

TOKEN = "webhook-signing-token"
HIRED = "63dd55b2-a99f-4e7b-985f-22c7bf80ab42"


def captured(svc: Services, event: events.Event, postings: list[str]) -> people.Person:
    person = enrol.event_capture(
        {"name": "Grace", "email": "grace@example.com", "postings": postings, "client_id": "abcdef0123456789"},
        event,
        "sam@acme.example",
    )
    return enrol.submit(svc.enrolment, person).person


def test_the_report_counts_sourced_opportunities_by_event_and_a_deletion_forgets_the_person(
    settings: Settings, r: redis.Redis, sandbox: Sandbox
) -> None:
    hooked = replace(settings, lever_webhook_token=TOKEN)
    svc = tasks.use(Services(hooked))
    two = [p["id"] for p in sandbox.public_postings()[:2]]
    fair = events.add(r, "Fair", "", two)
    grace = captured(svc, fair, two)
    assert tasks.deliver_sourced(grace.id) == "delivered"
    grace = people.load(r, grace.id)  # type: ignore[assignment]
    rows = [row for row in report.rows(r) if row.source == "event: Fair"]
    assert sorted(row.opportunity_id for row in rows) == sorted(s.opportunity_id for s in grace.sends)
    live = LiveServer(create_app(hooked))
    try:
        sandbox.control("webhooks", url=f"{live.url}/webhooks/lever", token=TOKEN)
        sandbox.control(f"opportunities/{grace.sends[0].opportunity_id}/archive", reason=HIRED)
        report.refresh_names(svc.delivery)
        [by_event] = [f for f in report.report(r)["by_source"] if f["group"] == "event: Fair"]
        assert (by_event["applied"], by_event["hired"]) == (2, 1)
        assert sandbox.control(f"contacts/{grace.contact_id}/delete")["webhooks"][0] == 200
    finally:
        live.stop()
    gone = people.load(r, grace.id)
    assert gone is not None
    assert gone.purged
    assert gone.name == gone.email == ""
    assert gone.event_id == fair.id
    assert report.report(r)["opportunities"] == 2  # the counts stay


def test_personal_data_of_a_delivered_signup_goes_on_the_applications_schedule(
    settings: Settings, r: redis.Redis, sandbox: Sandbox
) -> None:
    svc = tasks.use(Services(settings))
    person = enrol.talent_signup(
        {"name": "Ada", "email": "ada@example.com", "consent": True},
        UploadedFile("ada.pdf", b"%PDF-1.4"),
        teams=[],
        locations=[],
        max_file_bytes=2**20,
    )
    ada = enrol.submit(svc.enrolment, person, UploadedFile("ada.pdf", b"%PDF-1.4")).person
    waiting = enrol.submit(
        svc.enrolment,
        enrol.talent_signup(
            {"name": "Bo", "email": "bo@example.com", "consent": True}, None, teams=[], locations=[], max_file_bytes=1
        ),
    ).person
    assert tasks.deliver_sourced(ada.id) == "delivered"
    assert retention.purge(svc.delivery) == 0  # delivered just now
    later = people.load(r, ada.id).delivered_at + settings.retention_days * 86400 + 1  # type: ignore[union-attr]
    assert retention.purge(svc.delivery, now=later) == 1
    assert retention.purge(svc.delivery, now=later) == 0
    assert people.load(r, ada.id).purged
    assert people.load(r, ada.id).email == ""
    assert people.load(r, waiting.id).email == "bo@example.com"  # type: ignore[union-attr]  # not delivered: kept

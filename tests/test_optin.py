"""Issue 29, item 2 (and issue 28 item 3): the talent community's double opt-in. A sign-up costs Lever nothing until
its address is confirmed: a confirmation email in the person's language, with no text of theirs, carries a signed
link alone on a line of its text part; the link opens a page with one button (mail scanners open links), whose POST
confirms and queues the one opportunity; a sign-up left unconfirmed for 7 days is removed with every trace."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
import redis
from rq import Queue

from jobsite.console import accounts
from jobsite.delivery import jobs
from jobsite.privacy import sourced as sourced_retention
from jobsite.records import search
from jobsite.sandbox import SandboxServer
from jobsite.services import Services
from jobsite.settings import Settings
from jobsite.sourcing import opportunities, optin, people
from jobsite.web.app import create_app

from .helpers import ADMIN, Sandbox, Workers, outbox_mails, sign_in, wait_for, worker_env
from .test_mail import PUBLIC_URL, UNFIXED_PYTHON_ALLOWED, mail_settings


def _smtp(outbox: SandboxServer) -> int:
    assert outbox.smtp is not None
    return outbox.smtp.port


def _join(client: Any, sandbox: Sandbox, name: str, email: str, lang: str = "en") -> Any:
    page = client.get(f"/talent?lang={lang}").get_data(as_text=True)
    token = re.search(r'name="form_token" value="([^"]+)"', page).group(1)
    team = sandbox.public_postings()[0]["categories"]["team"]
    return client.post(
        f"/talent?lang={lang}",
        data={"form_token": token, "name": name, "email": email, "teams": [team], "consent": "true"},
    )


def test_join_confirm_by_email_then_one_opportunity(
    r: redis.Redis, settings: Settings, sandbox: Sandbox, workers: Workers, outbox: SandboxServer, tmp_path: Path
) -> None:
    s = mail_settings(settings, _smtp(outbox))
    client = create_app(s).test_client()
    done = _join(client, sandbox, "Lena Fischer", "lena@example.com", lang="de")
    assert done.status_code == 303
    summary = client.get("/talent/joined?lang=de").get_data(as_text=True)
    assert "lena@example.com" in summary
    assert "Lena Fischer" in summary
    [lena] = people.everyone(r)
    assert lena.unconfirmed
    assert lena.language == "de"
    assert not r.zcard(people.PENDING)
    assert Queue(jobs.SOURCING_QUEUE, connection=r).count == 0

    workers.start(
        worker_env(
            s,
            JOBSITE_SMTP_URL=f"smtp://127.0.0.1:{_smtp(outbox)}",
            JOBSITE_PUBLIC_URL=PUBLIC_URL,
            **UNFIXED_PYTHON_ALLOWED,
        ),
        log=tmp_path / "worker.log",
    )
    wait_for(lambda: outbox_mails(outbox, "lena@example.com"), what="the opt-in email in the outbox")
    [mail] = outbox_mails(outbox, "lena@example.com")
    link = f"{PUBLIC_URL}/talent/confirm/{lena.id}/{optin.token(s, lena.id)}"
    assert link in mail["text"].splitlines()  # alone on its line
    manage = optin.manage_url(s, lena.id)
    assert mail["links"] == [link, manage]  # and the manage link in every email
    assert "Lena" not in mail["text"] + mail["html"] + mail["subject"]  # anyone may sign up any address
    assert mail["subject"].startswith("Bestätigen")  # in German
    path = link.removeprefix(PUBLIC_URL)

    page = client.get(path)  # what a mail scanner does: nothing changes
    assert page.status_code == 200
    assert f'<form method="post" action="{path}">' in page.get_data(as_text=True)
    assert people.load(r, lena.id).unconfirmed
    assert sandbox.count("opportunities.create") == 0

    confirmed = client.post(path)
    assert confirmed.status_code == 200
    wait_for(lambda: people.load(r, lena.id).standing == people.Standing.DELIVERED, what="the delivery")
    assert client.post(path).status_code == 200  # a second press: already confirmed
    assert sandbox.count("opportunities.create", 201) == 1

    # Joining again with the same address: the one record (a confirmed member's stays as they made it).
    assert _join(client, sandbox, "Mallory", "LENA@example.com ").status_code == 303
    again = client.get("/talent/joined").get_data(as_text=True)
    assert "already in our talent community" in again
    assert "Lena" not in again
    assert [p.id for p in people.everyone(r)] == [lena.id]
    assert people.load(r, lena.id).name == "Lena Fischer"

    # Manage: interests, unsubscribe, leave; nothing more sent, one opportunity ever.
    manage_path = manage.removeprefix(PUBLIC_URL)
    assert client.get(manage_path).status_code == 200
    assert people.load(r, lena.id).teams  # a GET changes nothing
    client.post(manage_path, data={"action": "save"})  # no team, no location: any
    assert people.load(r, lena.id).teams == []
    assert "unsubscribed" in client.post(manage_path, data={"action": "unsubscribe"}).get_data(as_text=True)
    left = client.post(manage_path, data={"action": "leave"}).get_data(as_text=True)
    assert "deleted your details" in left
    wait_for(lambda: people.load(r, lena.id).purged, what="the site's copy removed (by the worker, if it held it)")
    gone = people.load(r, lena.id)
    assert not gone.email
    assert not search.find(r, "lena@example.com")
    assert client.get(manage_path).status_code == 200  # says the link is not valid any more
    assert len(outbox_mails(outbox, "lena@example.com")) == 1
    assert sandbox.count("opportunities.create", 201) == 1


def test_joining_twice_before_confirming_updates_the_one_record(
    r: redis.Redis, settings: Settings, sandbox: Sandbox, outbox: SandboxServer
) -> None:
    s = mail_settings(settings, _smtp(outbox))
    client = create_app(s).test_client()
    _join(client, sandbox, "Lena Fischer", "lena@example.com")
    _join(client, sandbox, "Lena Maria Fischer", "Lena@Example.com")
    [lena] = people.everyone(r)
    assert lena.name == "Lena Maria Fischer"
    assert [h.id for h in search.find(r, "Maria")] == [lena.id]
    assert Queue(jobs.MAIL_QUEUE, connection=r).count == 1  # one opt-in email for the one record
    summary = client.get("/talent/joined").get_data(as_text=True)
    assert "Lena Maria Fischer" in summary


def test_a_forged_link_is_404_and_changes_nothing(
    r: redis.Redis, settings: Settings, sandbox: Sandbox, outbox: SandboxServer
) -> None:
    s = mail_settings(settings, _smtp(outbox))
    client = create_app(s).test_client()
    _join(client, sandbox, "Eve", "eve@example.com")
    [eve] = people.everyone(r)
    assert client.post(f"/talent/confirm/{eve.id}/{'0' * 32}").status_code == 404
    assert client.get(f"/talent/confirm/{eve.id}/{optin.token(s, eve.id)}").status_code == 200
    assert people.load(r, eve.id).unconfirmed
    assert not r.zcard(people.PENDING)


def test_an_api_sign_up_waits_for_its_confirmation_too(
    r: redis.Redis, settings: Settings, sandbox: Sandbox, outbox: SandboxServer
) -> None:
    s = mail_settings(settings, _smtp(outbox))
    client = create_app(s).test_client()
    body = {"name": "Grace", "email": "grace@example.com", "consent": {"store": True}}
    answer = client.post("/api/v1/talent", json=body)
    assert answer.status_code == 202, answer.get_data(as_text=True)
    assert answer.get_json()["status"] == "unconfirmed"
    assert client.get(answer.get_json()["status_url"].removeprefix(PUBLIC_URL)).get_json()["status"] == "unconfirmed"
    assert Queue(jobs.MAIL_QUEUE, connection=r).count == 1
    assert Queue(jobs.SOURCING_QUEUE, connection=r).count == 0
    accounts.add_user(r, *ADMIN, accounts.Role.ADMIN)
    console = create_app(s).test_client()
    sign_in(console, *ADMIN)
    assert "address not confirmed yet" in console.get("/admin/talent").get_data(as_text=True)


def test_unconfirmed_sign_ups_are_removed_after_7_days(
    r: redis.Redis, settings: Settings, sandbox: Sandbox, outbox: SandboxServer
) -> None:
    s = mail_settings(settings, _smtp(outbox))
    client = create_app(s).test_client()
    _join(client, sandbox, "Nora Late", "nora@example.com")
    [nora] = people.everyone(r)
    svc = Services(s)
    sourced_retention.purge(svc.delivery, now=time.time() + 6.9 * 86400)
    assert people.load(r, nora.id) is not None
    sourced_retention.purge(svc.delivery, now=time.time() + 7.1 * 86400)
    assert people.load(r, nora.id) is None
    for index in (people.ALL, people.TALENT, people.UNCONFIRMED):
        assert not r.zcard(index)
    for text in ("nora@example.com", "Nora"):
        assert not search.find(r, text)
    assert client.post(f"/talent/confirm/{nora.id}/{optin.token(s, nora.id)}").status_code == 404
    assert sandbox.count("opportunities.create") == 0


def test_a_confirm_between_a_record_s_load_and_its_wish_being_written_in_is_kept(
    r: redis.Redis, settings: Settings, sandbox: Sandbox, outbox: SandboxServer
) -> None:
    """Review 4: take_wish watched a record loaded before its WATCH: a confirm in between was written over by the
    older copy, leaving the person unconfirmed in neither UNCONFIRMED nor PENDING (never delivered, never expired)."""
    s = mail_settings(settings, _smtp(outbox))
    svc = Services(s)
    _join(create_app(s).test_client(), sandbox, "Lena Fischer", "lena@example.com")
    [lena] = people.everyone(r)  # the holder's copy, loaded before its watch
    people.wish(r, lena.id, locations=[])
    assert optin.confirm(svc.delivery, lena.id, optin.token(s, lena.id)) is not None  # the click, in between
    lease = opportunities._lease(r, lena.id, s.delivery_lease_s)  # the holder's
    assert lease.acquire()
    assert opportunities.take_wish(svc.delivery, lena, lease)
    now = people.load(r, lena.id)
    assert now is not None
    assert not now.unconfirmed
    assert r.zscore(people.PENDING, lena.id) is not None
    assert not lena.unconfirmed  # the caller's object is the record as it now is


def test_joining_again_while_the_first_sign_up_is_confirmed_keeps_it_confirmed(
    r: redis.Redis, settings: Settings, sandbox: Sandbox, outbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review 4: a re-join watched the member's record after reading it: a confirm in between was written over by
    the re-join's older copy (unconfirmed again, in no index)."""
    s = mail_settings(settings, _smtp(outbox))
    svc = Services(s)
    client = create_app(s).test_client()
    _join(client, sandbox, "Lena Fischer", "lena@example.com")
    [lena] = people.everyone(r)
    real, clicked = people.load, []

    def load(conn: Any, person_id: str) -> people.Person | None:
        found = real(conn, person_id)
        if person_id == lena.id and not clicked:  # the re-join has read the member: the click comes now
            clicked.append(True)
            assert optin.confirm(svc.delivery, lena.id, optin.token(s, lena.id)) is not None
        return found

    monkeypatch.setattr(people, "load", load)
    assert _join(client, sandbox, "Someone Else", "LENA@example.com").status_code == 303
    monkeypatch.undo()
    assert clicked
    [now] = people.everyone(r)
    assert not now.unconfirmed
    assert now.name == "Lena Fischer"  # a confirmed member's record is left as its owner made it
    assert r.zscore(people.PENDING, lena.id) is not None


def test_leaving_while_the_sign_up_is_being_confirmed_withdraws_the_confirmed_member(
    r: redis.Redis, settings: Settings, sandbox: Sandbox, outbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review 8: leaving removed an unconfirmed sign-up from a copy read earlier, with no watch: confirmed meanwhile
    (its delivery queued), the record went, and a worker's save could bring it back to Lever. Now the record is
    read again, watched, and a confirmed member withdraws as any member does: nothing reaches Lever."""
    s = mail_settings(settings, _smtp(outbox))
    svc = Services(s)
    _join(create_app(s).test_client(), sandbox, "Lena Fischer", "lena@example.com")
    [lena] = people.everyone(r)  # what the manage page read: unconfirmed
    real, clicked = people.load, []

    def load(conn: Any, person_id: str) -> people.Person | None:
        found = real(conn, person_id)
        if person_id == lena.id and not clicked:  # leaving has read the record: the confirm comes now
            clicked.append(True)
            assert optin.confirm(svc.delivery, lena.id, optin.token(s, lena.id)) is not None
        return found

    monkeypatch.setattr(people, "load", load)
    optin.leave(svc.delivery, lena)
    monkeypatch.undo()
    left = people.load(r, lena.id)
    assert left is not None  # a confirmed member: withdrawn through the lease, not removed under a queued job
    assert left.withdrawn
    assert left.purged
    assert opportunities.deliver(svc.delivery, lena.id).outcome == opportunities.Outcome.SKIPPED
    assert sandbox.count("opportunities.create") == 0
    assert not r.zscore(people.PENDING, lena.id)


def test_leaving_before_confirming_removes_every_trace(
    r: redis.Redis, settings: Settings, sandbox: Sandbox, outbox: SandboxServer
) -> None:
    s = mail_settings(settings, _smtp(outbox))
    _join(create_app(s).test_client(), sandbox, "Lena Fischer", "lena@example.com")
    [lena] = people.everyone(r)
    optin.leave(Services(s).delivery, lena)
    assert people.load(r, lena.id) is None
    assert not r.zcard(people.ALL)
    assert not r.zcard(people.UNCONFIRMED)
    assert r.get(people.email_key("lena@example.com")) is None

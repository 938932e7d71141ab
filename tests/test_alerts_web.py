"""Issue 31, item 1 and 3 (the person side): asking for job alerts from the job list's filters, the double opt-in
(a confirmation email with no text of the asker's, its signed link alone on a line, a page whose button's POST
confirms), the manage page (filters, rhythm, stop) and the one-click stop of RFC 8058; the caps a stranger meets."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import redis
from rq import Queue

from jobsite.alerts import subscriptions as subs
from jobsite.alerts.subscriptions import Frequency, State
from jobsite.delivery import jobs
from jobsite.postings.posting import public_posting
from jobsite.sandbox import SandboxServer
from jobsite.settings import Settings
from jobsite.sourcing import optin, people
from jobsite.web.app import create_app

from .helpers import Sandbox, Workers, free_port, outbox_mails, required_cards, simple_posting, wait_for, worker_env
from .test_mail import PUBLIC_URL, UNFIXED_PYTHON_ALLOWED, mail_settings


def smtp_port(outbox: SandboxServer) -> int:
    assert outbox.smtp is not None
    return outbox.smtp.port


def ask(client: Any, email: str, query: str = "", lang: str = "en", **fields: str) -> Any:
    page = client.get(f"/alerts/new?lang={lang}&{query}").get_data(as_text=True)
    token = re.search(r'name="form_token" value="([^"]+)"', page).group(1)
    form = {"form_token": token, "email": email, "frequency": "daily", "q": _value(page, "a-q"), **fields}
    for name in ("team", "department", "location", "commitment", "workplace"):
        select = re.search(rf'<select id="a-{name}" name="{name}">(.*?)</select>', page, re.S).group(1)
        picked = re.search(r'<option value="([^"]*)" selected>', select)
        form.setdefault(name, picked.group(1) if picked else "")
    return client.post(f"/alerts/new?lang={lang}", data=form)


def _value(page: str, field_id: str) -> str:
    return re.search(rf'id="{field_id}"[^>]*value="([^"]*)"', page).group(1)


def test_from_the_job_list_to_confirmed_then_changed_and_stopped(
    r: redis.Redis, settings: Settings, sandbox: Sandbox, workers: Workers, outbox: SandboxServer, tmp_path: Path
) -> None:
    s = mail_settings(settings, smtp_port(outbox))
    client = create_app(s).test_client()
    team = sandbox.public_postings()[0]["categories"]["team"]
    jobs_page = client.get("/", query_string={"team": team, "q": "engineer", "lang": "de"}).get_data(as_text=True)
    link = re.search(r'<p class="alert-link"><a href="([^"]+)">', jobs_page).group(1).replace("&amp;", "&")
    asked_for = parse_qs(urlparse(link).query)
    assert asked_for["team"] == [team]
    assert asked_for["q"] == ["engineer"]

    done = ask(client, "ada@example.com", urlparse(link).query, lang="de")
    assert done.status_code == 303
    assert done.headers["Location"].endswith("/alerts/asked?lang=de")
    assert "ada@example.com" not in client.get("/alerts/asked?lang=de").get_data(as_text=True)
    [ada] = subs.of_address(r, "ada@example.com")
    assert (ada.state, ada.filters, ada.frequency, ada.language) == (
        State.PENDING,
        {"team": team, "q": "engineer"},
        Frequency.DAILY,
        "de",
    )

    workers.start(
        worker_env(
            s,
            JOBSITE_SMTP_URL=f"smtp://127.0.0.1:{smtp_port(outbox)}",
            JOBSITE_PUBLIC_URL=PUBLIC_URL,
            **UNFIXED_PYTHON_ALLOWED,
        ),
        log=tmp_path / "worker.log",
    )
    wait_for(lambda: outbox_mails(outbox, "ada@example.com"), what="the confirmation email in the outbox")
    [mail] = outbox_mails(outbox, "ada@example.com")
    confirm = subs.confirm_url(s, ada.id)
    assert confirm in mail["text"].splitlines()  # alone on its line
    assert mail["links"] == [confirm]
    assert "engineer" not in (mail["text"] + mail["html"] + mail["subject"]).casefold()  # no text of the asker's
    assert team not in mail["text"] + mail["html"]
    assert mail["subject"].startswith("Bestätigen")  # in the language the page was in

    path = confirm.removeprefix(PUBLIC_URL)
    page = client.get(path)  # a mail scanner opening the link changes nothing
    assert page.status_code == 200
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert f'<form method="post" action="{path}">' in page.get_data(as_text=True)
    assert subs.get(r, ada.id).state == State.PENDING
    assert client.post(path).status_code == 200
    assert subs.get(r, ada.id).state == State.CONFIRMED
    assert client.post(path).status_code == 200  # a second press: already on

    manage = subs.manage_url(s, ada.id).removeprefix(PUBLIC_URL)
    assert client.get(manage).status_code == 200
    saved = client.post(
        manage,
        data={
            "action": "save",
            "frequency": "weekly",
            "team": team,
            "q": "",
            "location": "",
            "department": "",
            "commitment": "",
            "workplace": "",
        },
    )
    assert "saved" in saved.get_data(as_text=True)
    assert (subs.get(r, ada.id).frequency, subs.get(r, ada.id).filters) == (Frequency.WEEKLY, {"team": team})

    # RFC 8058: the mail program's POST, no cookies, no token.
    stop = subs.unsubscribe_url(s, ada.id).removeprefix(PUBLIC_URL)
    assert client.get(stop).status_code == 200
    assert subs.get(r, ada.id).state == State.CONFIRMED
    fresh = create_app(s).test_client()
    answer = fresh.post(stop, data="List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded")
    assert answer.status_code == 200
    assert subs.get(r, ada.id).state == State.STOPPED
    assert "Start these alerts again" in client.get(manage).get_data(as_text=True)
    assert len(outbox_mails(outbox, "ada@example.com")) == 1


def test_forged_or_crossed_links_are_404(r: redis.Redis, settings: Settings, outbox: SandboxServer) -> None:
    s = mail_settings(settings, smtp_port(outbox))
    client = create_app(s).test_client()
    sub = subs.subscribe(r, "ada@example.com", {}, "instant", "en").subscription
    confirm = subs.confirm_url(s, sub.id).removeprefix(PUBLIC_URL)
    assert client.post(confirm.replace(sub.id, "0" * 24)).status_code == 404
    assert client.post(confirm[:-1] + ("0" if confirm[-1] != "0" else "1")).status_code == 404
    stop_signature = subs.unsubscribe_url(s, sub.id).rsplit("/", 1)[1]
    assert client.post(f"/alerts/confirm/{sub.id}/{stop_signature}").status_code == 404  # one purpose each
    assert client.post(f"/alerts/manage/{sub.id}/{stop_signature}", data={"action": "stop"}).status_code == 404
    assert subs.get(r, sub.id).state == State.PENDING


def test_a_stranger_cannot_flood_an_address_or_the_site(
    r: redis.Redis, settings: Settings, outbox: SandboxServer
) -> None:
    s = mail_settings(settings, smtp_port(outbox), JOBSITE_SIGNUPS_PER_HOUR="6")
    client = create_app(s).test_client()
    answers = [ask(client, "victim@example.com", f"q=word{i}").status_code for i in range(5)]
    assert answers == [303] * 5  # the same answer whatever the address holds
    assert Queue(jobs.MAIL_QUEUE, connection=r).count == subs.MAX_PENDING_PER_ADDRESS
    assert ask(client, "other@example.com").status_code == 303
    refused = ask(client, "third@example.com")
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 0
    assert subs.of_address(r, "third@example.com") == []


def test_bad_input_is_said_and_kept(r: redis.Redis, settings: Settings, outbox: SandboxServer) -> None:
    s = mail_settings(settings, smtp_port(outbox))
    client = create_app(s).test_client()
    answer = ask(client, "not-an-address", "q=python", lang="fr")
    page = answer.get_data(as_text=True)
    assert answer.status_code == 422
    assert 'aria-invalid="true"' in page
    assert 'value="not-an-address"' in page
    assert 'value="python"' in page
    assert subs.counts(r)[State.PENDING] == 0


def test_no_mail_server_no_alerts(settings: Settings, client: Any) -> None:
    assert settings.smtp is None
    assert "alert-link" not in client.get("/").get_data(as_text=True)
    assert client.get("/alerts/new").status_code == 404


def test_the_api_asks_as_the_page_does(r: redis.Redis, settings: Settings, outbox: SandboxServer) -> None:
    s = mail_settings(settings, smtp_port(outbox))
    client = create_app(s).test_client()
    body = {
        "email": "ada@example.com",
        "filters": {"team": "Engineering", "q": "python", "location": None},
        "frequency": "weekly",
        "language": "fr",
    }
    first = client.post("/api/v1/alerts", json=body)
    assert first.status_code == 202
    assert first.get_json() == {"status": "confirmation_sent"}
    assert client.post("/api/v1/alerts", json=body).get_json() == first.get_json()  # the same answer, no 2nd email
    [sub] = subs.of_address(r, "ada@example.com")
    assert (sub.state, sub.filters, sub.frequency, sub.language) == (
        State.PENDING,
        {"team": "Engineering", "q": "python"},
        Frequency.WEEKLY,
        "fr",
    )
    assert Queue(jobs.MAIL_QUEUE, connection=r).count == 1
    bad = client.post(
        "/api/v1/alerts", json={"email": "nope", "filters": {"colour": "red"}, "frequency": "hourly", "language": "es"}
    )
    assert bad.status_code == 422
    assert set(bad.get_json()["errors"]) == {"email", "filters", "frequency", "language"}
    assert client.post("/api/v1/alerts", data="email=x").status_code == 415
    assert client.post("/api/v1/alerts", json=[1]).status_code == 400
    assert len(subs.of_address(r, "nope")) == 0


def test_the_application_forms_unticked_choice_asks_for_similar_jobs(
    r: redis.Redis, settings: Settings, sandbox: Sandbox, outbox: SandboxServer
) -> None:
    s = mail_settings(settings, smtp_port(outbox))
    client = create_app(s).test_client()
    posting = simple_posting(sandbox)
    for email, ticked in (("grace@example.com", False), ("ada@example.com", True)):
        page = client.get(f"/jobs/{posting['id']}/apply").get_data(as_text=True)
        assert '<input id="a-alerts" type="checkbox" name="alerts" value="1">' in page  # offered, not ticked
        token = re.search(r'name="form_token" value="([^"]+)"', page).group(1)
        form = {
            "form_token": token,
            "fullName": "Ada Lovelace",
            "email": email,
            "consent[store]": "true",
            **required_cards(sandbox, posting["id"]),
            **({"alerts": "1"} if ticked else {}),
        }
        answer = client.post(f"/jobs/{posting['id']}/apply", data=form, content_type="multipart/form-data")
        assert answer.status_code == 303
    assert subs.of_address(r, "grace@example.com") == []
    [ada] = subs.of_address(r, "ada@example.com")
    assert ada.state == State.PENDING
    assert ada.filters == {"team": posting["categories"]["team"], "location": posting["categories"]["allLocations"][0]}
    assert posting["id"] in [p["id"] for p in sandbox.public_postings() if subs.matches(ada.filters, public_posting(p))]
    assert [j.args[0] for j in Queue(jobs.MAIL_QUEUE, connection=r).get_jobs()].count(ada.id) == 1


def test_talent_interests_become_alerts_confirmed_with_the_sign_up(
    r: redis.Redis, settings: Settings, sandbox: Sandbox, outbox: SandboxServer
) -> None:
    s = mail_settings(settings, smtp_port(outbox))
    client = create_app(s).test_client()
    page = client.get("/talent").get_data(as_text=True)
    assert 'name="alerts" value="1" >' in page  # offered, not ticked
    token = re.search(r'name="form_token" value="([^"]+)"', page).group(1)
    team = sandbox.public_postings()[0]["categories"]["team"]
    done = client.post(
        "/talent",
        data={
            "form_token": token,
            "name": "Lena Fischer",
            "email": "lena@example.com",
            "teams": [team],
            "consent": "true",
            "alerts": "1",
        },
    )
    assert done.status_code == 303
    [alert] = subs.of_address(r, "lena@example.com")
    assert (alert.state, alert.filters, alert.frequency) == (State.PENDING, {"team": team}, Frequency.WEEKLY)
    queued = [j.func_name for j in Queue(jobs.MAIL_QUEUE, connection=r).get_jobs()]
    assert queued == [jobs.OPTIN_EMAIL]  # one email confirms both
    [lena] = people.everyone(r)
    confirmed = client.post(f"/talent/confirm/{lena.id}/{optin.token(s, lena.id)}")
    assert confirmed.status_code == 200
    assert subs.get(r, alert.id).state == State.CONFIRMED
    page = confirmed.get_data(as_text=True)
    assert "Your job alert is on too" in page
    assert subs.manage_url(s, alert.id).removeprefix(PUBLIC_URL) in page  # its own manage page, linked


def test_alerts_are_managed_and_stopped_while_lever_is_unreachable(
    r: redis.Redis, settings: Settings, outbox: SandboxServer
) -> None:
    s = dataclasses.replace(
        mail_settings(settings, smtp_port(outbox)),
        lever_base_url=f"http://127.0.0.1:{free_port()}/v1",
        lever_read_timeout_s=1.0,
    )
    client = create_app(s).test_client()
    sub = subs.subscribe(r, "ada@example.com", {"team": "Design"}, "daily", "en").subscription
    subs.confirm(r, sub.id)
    manage = subs.manage_url(s, sub.id).removeprefix(PUBLIC_URL)
    page = client.get(manage)
    assert page.status_code == 200
    assert '<option value="Design" selected>' in page.get_data(as_text=True)  # its own filter, with no postings read
    assert client.post(manage, data={"action": "stop"}).status_code == 200
    assert subs.get(r, sub.id).state == State.STOPPED


def test_an_undeliverable_address_is_said_on_its_pages(
    r: redis.Redis, settings: Settings, outbox: SandboxServer
) -> None:
    s = mail_settings(settings, smtp_port(outbox))
    client = create_app(s).test_client()
    sub = subs.subscribe(r, "gone@example.com", {"q": "python"}, "instant", "de").subscription
    subs.confirm(r, sub.id)
    subs.mark_undeliverable(r, sub.id)
    page = client.get(subs.manage_url(s, sub.id).removeprefix(PUBLIC_URL) + "?lang=de").get_data(as_text=True)
    assert "Ihr Mailserver hat unsere E-Mails abgelehnt" in page
    assert "Änderungen speichern" not in page  # nothing to change on an ended alert: only asking again
    assert client.post(subs.unsubscribe_url(s, sub.id).removeprefix(PUBLIC_URL)).status_code == 200
    assert subs.get(r, sub.id).state == State.UNDELIVERABLE  # a stop does not hide why it ended


def test_the_talent_api_asks_for_alerts_with_the_sign_up(
    r: redis.Redis, settings: Settings, sandbox: Sandbox, outbox: SandboxServer
) -> None:
    s = mail_settings(settings, smtp_port(outbox))
    client = create_app(s).test_client()
    places = [p["categories"]["allLocations"][0] for p in sandbox.public_postings()[:2]]
    body = {
        "name": "Jean Dupont",
        "email": "jean@example.com",
        "consent": True,
        "interests": {"locations": places},
        "alerts": True,
    }
    assert client.post("/api/v1/talent", json=body).status_code == 202
    found = subs.of_address(r, "jean@example.com")
    assert sorted(a.filters["location"] for a in found) == sorted(set(places))
    assert {a.state for a in found} == {State.PENDING}
    assert [j.func_name for j in Queue(jobs.MAIL_QUEUE, connection=r).get_jobs()] == [jobs.OPTIN_EMAIL]
    assert client.post("/api/v1/talent", json={**body, "email": "other@example.com", "alerts": None}).status_code == 202
    assert subs.of_address(r, "other@example.com") == []


def test_leaving_the_talent_community_stops_the_addresss_alerts(
    r: redis.Redis, settings: Settings, sandbox: Sandbox, outbox: SandboxServer
) -> None:
    """Its page promises no more email: job alerts of that address stop too (those of other addresses go on)."""
    s = mail_settings(settings, smtp_port(outbox))
    client = create_app(s).test_client()
    body = {"name": "Jean Dupont", "email": "jean@example.com", "consent": True, "alerts": True}
    assert client.post("/api/v1/talent", json=body).status_code == 202
    [jean] = people.everyone(r)
    client.post(f"/talent/confirm/{jean.id}/{optin.token(s, jean.id)}")
    other = subs.subscribe(r, "Jean@Example.com", {"q": "robot"}, "daily", "en").subscription
    subs.confirm(r, other.id)
    bob = subs.subscribe(r, "bob@example.com", {}, "daily", "en").subscription
    subs.confirm(r, bob.id)
    assert {a.state for a in subs.of_address(r, "jean@example.com")} == {State.CONFIRMED}
    manage = optin.manage_url(s, jean.id).removeprefix(PUBLIC_URL)
    assert client.post(manage, data={"action": "leave"}).status_code == 200
    assert {a.state for a in subs.of_address(r, "jean@example.com")} == {State.STOPPED}
    assert subs.get(r, bob.id).state == State.CONFIRMED

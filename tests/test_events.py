"""Event capture in the console: events from the console and the command line, the capture endpoint's guards."""

from __future__ import annotations

import re

import pytest
import redis
from click.testing import CliRunner

from jobsite import cli
from jobsite.console import accounts
from jobsite.services import Services
from jobsite.settings import Settings
from jobsite.sourcing import events, opportunities, people

from .helpers import ADMIN, VIEWER, Sandbox, csrf, sign_in


@pytest.fixture
def accounts_(r: redis.Redis) -> None:
    accounts.add_user(r, *ADMIN, accounts.Role.ADMIN)
    accounts.add_user(r, *VIEWER, accounts.Role.VIEWER)


def signed_in(client, who: tuple[str, str]) -> str:
    """Sign in; returns the session's CSRF token, as the capture page carries it."""
    sign_in(client, *who)
    return csrf(client, "/admin/events")


def test_add_event_on_the_command_line_prints_the_id_last(settings: Settings, r: redis.Redis, monkeypatch) -> None:
    monkeypatch.setenv("REDIS_URL", settings.redis_url or "")
    monkeypatch.setenv("JOBSITE_DATA_DIR", str(settings.data_dir))
    answer = CliRunner().invoke(cli.main, ["admin", "add-event", "Berlin Meetup", "--date", "2026-12-03"])
    assert answer.exit_code == 0, answer.output
    event = events.load(r, answer.output.strip().splitlines()[-1])
    assert event is not None
    assert event.name == "Berlin Meetup"
    assert event.day == "2026-12-03"
    bad = CliRunner().invoke(cli.main, ["admin", "add-event", "X", "--date", "3 Dec"])
    assert bad.exit_code != 0
    assert "YYYY-MM-DD" in bad.output


def test_an_admin_creates_an_event_and_captures_once_per_client_id(
    client, r: redis.Redis, sandbox: Sandbox, settings: Settings, accounts_
) -> None:
    token = signed_in(client, ADMIN)
    posting = sandbox.public_postings()[0]
    made = client.post(
        "/admin/events",
        data={"csrf_token": token, "name": "Fair", "date": "2026-12-04", "postings": [posting["id"], "not-a-posting"]},
    )
    assert made.status_code == 303
    [event] = events.all_(r)
    assert event.postings == [posting["id"]]
    url = f"/admin/api/events/{event.id}/people"
    body = {
        "name": "Grace",
        "email": "grace@example.com",
        "postings": [posting["id"]],
        "note": "hi",
        "rating": 5,
        "client_id": "abcdef0123456789",
    }
    first = client.post(url, json=body, headers={"X-CSRF-Token": token})
    assert first.status_code == 202
    assert first.get_json()["status"] == "queued"
    assert client.post(url, json=body, headers={"X-CSRF-Token": token}).status_code == 200
    bad = client.post(url, json={**body, "client_id": "x", "rating": 9}, headers={"X-CSRF-Token": token})
    assert bad.status_code == 422
    assert set(bad.get_json()["errors"]) == {"client_id", "rating"}
    assert (
        client.post(url, data="[", content_type="application/json", headers={"X-CSRF-Token": token}).status_code == 400
    )
    [grace] = people.of_event(r, event.id)
    assert grace.recruiter == ADMIN[0]
    assert [s.posting for s in grace.sends] == [posting["id"]]
    opportunities.deliver(Services(settings).delivery, grace.id)
    page = client.get(f"/admin/events/{event.id}").get_data(as_text=True)
    grace = people.load(r, grace.id)  # type: ignore[assignment]
    assert "Grace" in page
    assert "delivered" in page
    assert '<td data-label="Note" class="note-text">hi</td>' in page  # what the recruiter noted at the booth
    assert "5 of 5" in page
    assert grace.contact_id not in re.sub(r"<[^>]+>", "", page)  # Lever's ids only in links, never as text
    audit_page = client.get("/admin/audit").get_data(as_text=True)
    assert f'<a href="/admin/events/{event.id}">Event: Fair</a>' in audit_page  # named and linked, not a 404
    assert f"/admin/applications/{event.id}" not in audit_page
    form = client.get("/admin/events").get_data(as_text=True)
    cats = posting["categories"]
    where = f"{cats['team']} · {', '.join(cats.get('allLocations') or [cats['location']])}"
    assert f'{posting["text"]} <span class="muted">{where}' in form
    labels = re.findall(r'name="postings" value="[^"]+"> <span>(.*?)</span></label>', form)
    assert len(labels) == len(sandbox.public_postings())
    assert len(set(labels)) == len(labels)  # postings with the same title told apart
    assert '<input id="event-name" name="name" type="text"' in form  # styled as every text field
    assert f"/admin/people/{grace.contact_id}" in page
    assert "Grace" in client.get(f"/admin/people/{grace.contact_id}").get_data(as_text=True)
    capture = client.get(f"/admin/events/{event.id}/capture")
    assert capture.status_code == 200
    assert token in capture.get_data(as_text=True)
    manifest = client.get(f"/admin/events/{event.id}/manifest.webmanifest").get_json()
    assert manifest["display"] == "standalone"
    assert manifest["short_name"] == event.name  # installed under the event's name, not "Capture" for every event

    def fetched(path: str) -> bytes:
        answer = client.get(path)
        try:
            return answer.get_data()
        finally:
            answer.close()  # a static file's handle

    sizes = {}
    for icon in manifest["icons"]:  # PNGs: iOS and some launchers show no SVG
        png = fetched(icon["src"])
        assert png.startswith(b"\x89PNG\r\n\x1a\n")
        assert "maskable" in icon["purpose"]
        sizes[icon["sizes"]] = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert sizes == {"192x192": (192, 192), "512x512": (512, 512)}
    touch = re.search(r'<link rel="apple-touch-icon" href="([^"]+)">', capture.get_data(as_text=True))
    assert touch
    assert fetched(touch.group(1)).startswith(b"\x89PNG")
    assert client.get(f"/admin/events/{event.id}/capture-sw.js").status_code == 200


def test_a_viewer_and_a_request_without_the_csrf_token_may_not_capture(
    client, r: redis.Redis, sandbox: Sandbox, accounts_
) -> None:
    event = events.add(r, "Fair")
    url = f"/admin/api/events/{event.id}/people"
    body = {"name": "Grace", "email": "grace@example.com", "client_id": "abcdef0123456789"}
    assert client.post(url, json=body).status_code in (400, 401)  # not signed in
    token = signed_in(client, ADMIN)
    assert client.post(url, json=body).status_code == 400  # signed in, but no token: another site's request
    assert client.post(url, json=body, headers={"X-CSRF-Token": token + "x"}).status_code == 400
    client.post("/admin/logout", data={"csrf_token": token})
    token = signed_in(client, VIEWER)
    assert client.post(url, json=body, headers={"X-CSRF-Token": token}).status_code == 403
    assert client.post("/admin/events", data={"csrf_token": token, "name": "Mine"}).status_code == 403
    assert not r.zcard(people.ALL)
    assert len(events.all_(r)) == 1

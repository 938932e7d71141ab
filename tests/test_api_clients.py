"""Integrator keys: a company's backend posts applications server-to-server with its own key and its own limit."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace

import pytest
import redis

from jobsite.console import api_keys, audit
from jobsite.records import store
from jobsite.settings import Settings
from jobsite.web.app import create_app

from .helpers import Sandbox, csrf_in, lever_body, simple_posting


def cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JOBSITE_", "LEVER_", "REDIS_"))}
    env.update(
        JOBSITE_DATA_DIR=str(settings.data_dir),
        REDIS_URL=settings.redis_url or "",
        JOBSITE_SECRET_KEY=settings.secret_key,
    )
    return subprocess.run(
        [sys.executable, "-m", "jobsite", "admin", *args], env=env, capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def strict_app(settings: Settings, r: redis.Redis):
    """Two applications per address per hour, as a site under attack might set it."""
    app = create_app(replace(settings, submissions_per_ip_per_hour=2))
    app.config["TESTING"] = True
    return app


def test_a_key_from_the_command_line_is_stored_hashed(settings: Settings, r: redis.Redis) -> None:
    made = cli(settings, "add-api-client", "acme-backend")
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip().splitlines()[-1]
    assert made.stdout.strip() == key
    assert key.startswith("jsk_")
    assert len(key) > 40
    assert "shown only now" in made.stderr
    dump = b"".join(r.dump(k) or b"" for k in r.keys("*"))
    assert key.encode() not in dump
    assert key[4:].encode() not in dump
    assert api_keys.authenticate(r, key).name == "acme-backend"
    again = cli(settings, "add-api-client", "acme-backend")
    assert again.returncode != 0
    assert "already has a key" in again.stderr
    listed = cli(settings, "api-clients")
    assert "acme-backend  active" in listed.stdout
    assert "1 request(s)" in listed.stdout
    assert cli(settings, "revoke-api-client", "acme-backend").returncode == 0
    assert "revoked" in cli(settings, "api-clients").stdout
    assert cli(settings, "revoke-api-client", "acme-backend").returncode != 0  # nothing active to revoke
    assert [e["action"] for e in audit.entries(r)][:2] == ["revoke API client", "add API client"]


def test_a_backend_with_a_key_skips_the_address_limit_but_has_its_own(
    strict_app, r: redis.Redis, sandbox: Sandbox
) -> None:
    client = strict_app.test_client()
    posting = simple_posting(sandbox)
    url = f"/api/v1/postings/{posting['id']}/applications"
    key = api_keys.add(r, "acme-backend")
    bearer = {"Authorization": f"Bearer {key}"}
    codes = [
        client.post(url, json=lever_body(sandbox, posting["id"], n), headers=bearer).status_code for n in range(100)
    ]
    assert codes == [202] * 100
    anonymous = [client.post(url, json=lever_body(sandbox, posting["id"], n)).status_code for n in range(3)]
    assert anonymous == [202, 202, 429]  # the same address without the key: the per-address limit applies

    records = store.load_many(r, store.receipts(r, store.State.QUEUED))
    assert sum(1 for rec in records if rec.client == "acme-backend") == 100
    assert sum(1 for rec in records if rec.client == "") == 2
    uses = [e for e in audit.entries(r, 1000, api=True) if e["who"] == "API client acme-backend"]
    assert len(uses) == 100
    assert all(e["detail"] == "202" and e["target"] for e in uses)
    assert {e["target"] for e in uses} == {rec.receipt for rec in records if rec.client}

    limited = create_app(replace(strict_app.extensions["jobsite"].settings, api_client_per_hour=100)).test_client()
    over = limited.post(url, json=lever_body(sandbox, posting["id"], 101), headers=bearer)
    assert over.status_code == 429
    assert 0 < int(over.headers["Retry-After"]) <= 3601
    assert "more than 100 applications this hour" in over.get_json()["message"]


def test_a_wrong_or_revoked_key_is_refused_never_anonymous(client, r: redis.Redis, sandbox: Sandbox) -> None:
    posting = simple_posting(sandbox)
    url = f"/api/v1/postings/{posting['id']}/applications"
    key = api_keys.add(r, "acme-backend")
    for header in (f"Bearer {key}x", "Bearer jsk_nope", f"Basic {key}", "Bearer", key):
        answer = client.post(url, json=lever_body(sandbox, posting["id"]), headers={"Authorization": header})
        assert answer.status_code == 401, header
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/api/v1/postings", headers={"Authorization": "Bearer jsk_nope"}).status_code == 401
    api_keys.revoke(r, "acme-backend")
    revoked = client.post(url, json=lever_body(sandbox, posting["id"]), headers={"Authorization": f"Bearer {key}"})
    assert revoked.status_code == 401
    assert "revoked" in revoked.get_json()["message"]
    assert r.zcard(store.ALL) == 0
    assert audit.entries(r, api=True)[0]["who"] == "API client acme-backend"
    assert audit.entries(r, api=True)[0]["action"] == "refused: revoked key"


def test_the_console_shows_which_client_sent_an_application(client, app, r: redis.Redis, sandbox: Sandbox) -> None:
    from jobsite.console import accounts

    posting = simple_posting(sandbox)
    key = api_keys.add(r, "acme-backend")
    receipt = client.post(
        f"/api/v1/postings/{posting['id']}/applications",
        json=lever_body(sandbox, posting["id"]),
        headers={"Authorization": f"Bearer {key}"},
    ).get_json()["receipt"]
    accounts.add_user(r, "ada@acme.test", "correct horse battery", accounts.Role.VIEWER)
    console = app.test_client()
    login = console.get("/admin/login").get_data(as_text=True)

    token = csrf_in(login)
    console.post(
        "/admin/login", data={"email": "ada@acme.test", "password": "correct horse battery", "csrf_token": token}
    )
    page = console.get(f"/admin/applications/{receipt}").get_data(as_text=True)
    assert "API client acme-backend" in page


def test_idempotency_keys_of_two_integrators_never_meet(client, r: redis.Redis, sandbox: Sandbox) -> None:
    """Issue 13, item 4: the same Idempotency-Key from two backends (or a backend and anyone) is two keys."""
    posting = simple_posting(sandbox)
    url = f"/api/v1/postings/{posting['id']}/applications"
    body = lever_body(sandbox, posting["id"])
    receipts = []
    for key in (api_keys.add(r, "acme-backend"), api_keys.add(r, "agency-backend"), None):
        headers = {"Idempotency-Key": "order-1"} | ({"Authorization": f"Bearer {key}"} if key else {})
        answer = client.post(url, json=body, headers=headers)
        assert answer.status_code == 202, answer.get_json()
        receipts.append(answer.get_json()["receipt"])
    assert len(set(receipts)) == 3
    assert r.zcard(store.ALL) == 3

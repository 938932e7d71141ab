"""The talent community: the /talent page and POST /api/v1/talent, in front of sourcing's intake."""

from __future__ import annotations

import io
import re

import redis

from jobsite.sourcing import people

from .helpers import Sandbox


def team(sandbox: Sandbox) -> str:
    return sandbox.public_postings()[0]["categories"]["team"]


def test_the_job_list_its_empty_search_and_a_posting_link_to_the_talent_community(client, sandbox: Sandbox) -> None:
    for url in ("/", "/?q=zzzznothing", f"/jobs/{sandbox.public_postings()[0]['id']}"):
        assert 'href="/talent"' in client.get(url).get_data(as_text=True), url
    page = client.get("/talent?lang=de").get_data(as_text=True)
    assert 'lang="de"' in page
    assert team(sandbox) in page
    assert 'name="consent"' in page


def test_the_page_keeps_answers_on_errors_then_joins_once(client, r: redis.Redis, sandbox: Sandbox) -> None:
    token = re.search(r'name="form_token" value="([^"]+)"', client.get("/talent").get_data(as_text=True)).group(1)
    form = {"form_token": token, "name": "Ada", "email": "not-an-email", "teams": [team(sandbox)]}
    bad = client.post("/talent", data=form)
    text = bad.get_data(as_text=True)
    assert bad.status_code == 422
    assert "name@example.com" in text
    assert "consent" in text
    assert 'value="Ada"' in text
    assert not r.zcard(people.ALL)
    form.update(email="ada@example.com", consent="true", links="https://github.com/ada\nhttps://ada.example")
    for _ in range(2):  # the back button and a second submit: one person
        done = client.post("/talent", data={**form, "resume": (io.BytesIO(b"%PDF-1.4"), "ada.pdf")})
        assert done.status_code == 303
        assert done.headers["Location"].endswith("/talent/joined")
    [ada] = people.everyone(r)
    assert ada.teams == [team(sandbox)]
    assert ada.links == ["https://github.com/ada", "https://ada.example"]
    assert ada.resume
    assert ada.resume["filename"] == "ada.pdf"
    assert ada.kind == people.Kind.TALENT
    assert client.get("/talent/joined").status_code == 200


def test_the_api_answers_202_with_a_receipt_and_422_per_field(client, r: redis.Redis, sandbox: Sandbox) -> None:
    body = {
        "name": "Grace",
        "email": "grace@example.com",
        "phone": "+1 555",
        "links": ["https://grace.example"],
        "interests": {"teams": [team(sandbox)], "locations": []},
        "consent": {"store": True},
        "source": "newsletter",
    }
    first = client.post("/api/v1/talent", json=body, headers={"Idempotency-Key": "k1"})
    assert first.status_code == 202, first.get_data(as_text=True)
    data = first.get_json()
    assert data["status"] == "queued"
    assert data["status_url"].endswith(f"/api/v1/talent/{data['receipt']}")
    again = client.post("/api/v1/talent", json=body, headers={"Idempotency-Key": "k1"})
    assert again.get_json()["receipt"] == data["receipt"]
    assert (
        client.post("/api/v1/talent", json={**body, "name": "Other"}, headers={"Idempotency-Key": "k1"}).status_code
        == 422
    )
    assert client.get(data["status_url"]).get_json() == {"receipt": data["receipt"], "status": "queued"}
    assert people.load(r, data["receipt"]).source == "newsletter"  # type: ignore[union-attr]
    wrong = client.post(
        "/api/v1/talent", json={**body, "email": "x", "interests": {"teams": ["Nope"]}, "consent": {"store": False}}
    )
    assert wrong.status_code == 422
    assert set(wrong.get_json()["errors"]) == {"email", "teams", "consent"}
    multipart = client.post(
        "/api/v1/talent",
        data={
            "name": "Hedy",
            "email": "hedy@example.com",
            "consent": "true",
            "resume": (io.BytesIO(b"%PDF-1.4 h"), "hedy.pdf"),
        },
    )
    assert multipart.status_code == 202
    assert client.post("/api/v1/talent", data="x", content_type="text/plain").status_code == 415
    assert len(people.everyone(r)) == 2

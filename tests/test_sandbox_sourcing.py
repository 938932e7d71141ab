"""The sandbox's sourcing endpoints over HTTP: Create an opportunity, Create a note, List users."""

from __future__ import annotations

from typing import Any

import requests

from jobsite.sandbox import API_KEY

from .helpers import Sandbox

AUTH = (API_KEY, "")


def v1(sandbox: Sandbox, method: str, path: str, **kw: Any) -> requests.Response:
    return requests.request(method, f"{sandbox.url}/v1{path}", auth=AUTH, timeout=5, **kw)


def users(sandbox: Sandbox, **params: Any) -> list[dict[str, Any]]:
    answer = v1(sandbox, "GET", "/users", params=params)
    assert answer.status_code == 200, answer.text
    return list(answer.json()["data"])


def test_users_are_listed_with_emails_and_filtered_by_email(sandbox: Sandbox) -> None:
    everyone = users(sandbox)
    assert all(u["email"] and u["id"] for u in everyone)
    assert len(everyone) == 3
    assert len(users(sandbox, includeDeactivated="true")) == 4
    [sam] = users(sandbox, email=" SAM@acme.example")
    assert sam["name"] == "Sam Sourcer"
    assert not users(sandbox, email="nobody@acme.example")


def test_create_an_opportunity_json_and_multipart_links_one_contact(sandbox: Sandbox) -> None:
    rita = users(sandbox, email="rita@acme.example")[0]["id"]
    a, b = [p["id"] for p in sandbox.public_postings()[:2]]
    body = {
        "name": "Ada",
        "emails": ["ada@example.com"],
        "phones": [{"value": "+49 30 1234"}],
        "origin": "sourced",
        "tags": ["Acme event: Meetup"],
        "sources": ["Meetup"],
        "postings": [a],
    }
    first = v1(sandbox, "POST", "/opportunities", params={"perform_as": rita}, json=body)
    assert first.status_code == 201, first.text
    made = first.json()["data"]
    assert made["origin"] == "sourced"
    assert made["owner"] == rita
    assert made["tags"] == ["Acme event: Meetup"]
    form = {
        "name": "Ada",
        "emails[]": ["ADA@example.com"],
        "phones[0][value]": "+49 30 1234",
        "origin": "sourced",
        "tags[]": ["Acme talent community"],
        "postings[]": [b],
    }
    second = v1(
        sandbox,
        "POST",
        "/opportunities",
        params={"perform_as": rita},
        data=form,
        files={"resumeFile": ("cv.pdf", b"%PDF-1.4 ada", "application/pdf")},
    )
    assert second.status_code == 201, second.text
    assert second.json()["data"]["contact"] == made["contact"]
    assert second.json()["data"]["id"] != made["id"]
    held = requests.get(f"{sandbox.url}/_sandbox/opportunities", timeout=5).json()["data"]
    assert [o["posting"] for o in held] == [a, b]
    assert held[1]["resume"]["name"] == "cv.pdf"
    assert held[1]["phones"] == [{"value": "+49 30 1234"}]
    assert held[1]["performAs"] == rita
    listed = v1(
        sandbox,
        "GET",
        "/opportunities",
        params={"email": "ada@example.com", "posting_id": b, "tag": "Acme talent community"},
    ).json()["data"]
    assert [o["id"] for o in listed] == [second.json()["data"]["id"]]


def test_create_an_opportunity_refuses_two_postings_and_an_unknown_or_deactivated_user(sandbox: Sandbox) -> None:
    a, b = [p["id"] for p in sandbox.public_postings()[:2]]
    rita = users(sandbox)[0]["id"]
    olga = users(sandbox, email="olga@acme.example", includeDeactivated="true")[0]["id"]
    body = {"name": "Ada", "emails": ["ada@example.com"], "postings": [a, b]}
    assert v1(sandbox, "POST", "/opportunities", params={"perform_as": rita}, json=body).status_code == 400
    body["postings"] = [a]
    for who in ({}, {"perform_as": olga}, {"perform_as": "no-such-user"}):
        assert v1(sandbox, "POST", "/opportunities", params=who, json=body).status_code == 400
    assert (
        v1(sandbox, "POST", "/opportunities", params={"perform_as": rita}, json={**body, "origin": "magic"}).status_code
        == 400
    )
    assert not sandbox.state.opportunities


def test_notes_as_a_user_and_maintenance_and_limits(sandbox: Sandbox) -> None:
    rita = users(sandbox)[0]["id"]
    made = v1(
        sandbox,
        "POST",
        "/opportunities",
        params={"perform_as": rita},
        json={"name": "Ada", "emails": ["ada@example.com"]},
    ).json()["data"]
    path = f"/opportunities/{made['id']}/notes"
    assert v1(sandbox, "POST", path, params={"perform_as": rita}, json={}).status_code == 400
    assert v1(sandbox, "POST", path, json={"value": "met at the booth"}).status_code == 400  # no perform_as
    added = v1(sandbox, "POST", path, params={"perform_as": rita}, json={"value": "met at the booth"})
    assert added.status_code == 201
    assert added.json()["data"]["noteId"]
    [note] = v1(sandbox, "GET", path).json()["data"]
    assert note["text"] == "met at the booth"
    assert note["user"] == rita
    sandbox.control("maintenance", on=True)
    assert v1(sandbox, "GET", "/users").status_code == 503
    assert v1(sandbox, "POST", "/opportunities", params={"perform_as": rita}, json={"name": "B"}).status_code == 503
    assert v1(sandbox, "POST", path, params={"perform_as": rita}, json={"value": "x"}).status_code == 503
    assert sandbox.count("opportunities.create", 503) == 1
    assert sandbox.count("opportunities.notes", 503) == 1
    sandbox.control("maintenance", on=False)
    sandbox.control("limits", mode="window", per_s=2)
    statuses = [v1(sandbox, "GET", "/users").status_code for _ in range(3)]
    assert statuses.count(429) >= 1
    assert sandbox.count("users.list", 429) >= 1

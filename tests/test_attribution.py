"""Where a candidate came from (issue 9, item 1): first touch on any candidate page or the API, carried through
browsing on links and the form's action (no cookie), sent to Lever as the application's source, kept and shown."""

from __future__ import annotations

import re

import redis

from jobsite.console import accounts
from jobsite.delivery import deliverer
from jobsite.records import store
from jobsite.records.application import Attribution
from jobsite.services import Services
from jobsite.settings import Settings
from jobsite.worker import tasks

from .helpers import ADMIN, Sandbox, lever_body, required_cards, sign_in, simple_posting


def unescape(url: str) -> str:
    return url.replace("&amp;", "&")


def test_utm_and_referrer_survive_two_pages_and_reach_lever(
    client, r: redis.Redis, settings: Settings, sandbox: Sandbox
) -> None:
    posting = simple_posting(sandbox)
    home = client.get(
        "/?utm_source=linkedin&utm_medium=social&utm_campaign=spring",
        headers={"Referer": "https://www.linkedin.com/feed/"},
    ).get_data(as_text=True)
    link = unescape(re.search(rf'href="([^"]*/jobs/{posting["id"]}[^"]*)"', home).group(1))
    assert "utm_source=linkedin" in link
    assert "ref=www.linkedin.com" in link
    # the next pages are reached from our own site: the first touch is what is kept
    page = client.get(link, headers={"Referer": "http://localhost/"}).get_data(as_text=True)
    apply_link = unescape(re.search(r'href="([^"]+/apply[^"]*)"', page).group(1))
    form = client.get(apply_link, headers={"Referer": "http://localhost" + link}).get_data(as_text=True)
    action = unescape(re.search(r'form class="apply"[^>]*action="([^"]+)"', form.replace("\n", " ")).group(1))
    assert "utm_campaign=spring" in action
    assert "ref=www.linkedin.com" in action
    data = {
        "form_token": re.search(r'name="form_token" value="([^"]+)"', form).group(1),
        "fullName": "Ada Lovelace",
        "email": "ada@example.com",
    }
    data.update(required_cards(sandbox, posting["id"]))
    assert client.post(action, data=data).status_code == 303
    [rec] = store.load_many(r, store.receipts(r, store.State.QUEUED))
    assert rec.attribution == Attribution("linkedin", "social", "spring", "www.linkedin.com")
    svc = tasks.use(Services(settings))
    assert deliverer.deliver(svc.delivery, rec.receipt).outcome == deliverer.Outcome.DELIVERED
    assert sandbox.received()["applications"][0]["body"]["source"] == "linkedin"


def test_the_api_takes_the_query_string_or_the_body_and_hostile_values_are_bounded_and_escaped(
    client, r: redis.Redis, sandbox: Sandbox
) -> None:
    posting = simple_posting(sandbox)
    url = f"/api/v1/postings/{posting['id']}/applications"
    by_query = client.post(url + "?lever-source=indeed&utm_campaign=autumn", json=lever_body(sandbox, posting["id"], 1))
    hostile = "<script>alert(1)</script>\u0000\n" + "x" * 500
    by_body = client.post(url, json={**lever_body(sandbox, posting["id"], 2), "source": hostile})
    first, second = (store.load(r, a.get_json()["receipt"]) for a in (by_query, by_body))
    assert (first.source, first.campaign) == ("indeed", "autumn")
    assert second.source.startswith("<script>alert(1)</script>xx")
    assert len(second.source) == 100
    accounts.add_user(r, *ADMIN, accounts.Role.ADMIN)
    sign_in(client, *ADMIN)
    page = client.get(f"/admin/applications/{second.receipt}").get_data(as_text=True)
    assert "<script>alert(1)" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "autumn" in client.get(f"/admin/applications/{first.receipt}").get_data(as_text=True)


def test_one_visitors_referrer_never_reaches_the_next_visitors_links(client, sandbox: Sandbox) -> None:
    """The job list is cached; a page whose links carry a referrer from the Referer header is that visitor's own."""
    first = client.get("/", headers={"Referer": "https://evil.example/"})
    assert "ref=evil.example" in first.get_data(as_text=True)
    assert first.headers["Cache-Control"].startswith("private")
    second = client.get("/")
    assert "evil.example" not in second.get_data(as_text=True)
    assert second.headers["Cache-Control"].startswith("public")
    posting = simple_posting(sandbox)
    client.get(f"/jobs/{posting['id']}", headers={"Referer": "https://evil.example/"})
    assert "evil.example" not in client.get(f"/jobs/{posting['id']}").get_data(as_text=True)

"""/jobs.atom: the open postings as an Atom feed (RFC 4287), honouring the job list's filters, read with feedparser
as feed readers read it, and checked against the rules of the W3C feed validator that apply offline."""

from __future__ import annotations

import re

import feedparser
from defusedxml import ElementTree as ET

from jobsite.postings import feed

from .helpers import Sandbox

ATOM = "{http://www.w3.org/2005/Atom}"


def test_the_feed_lists_every_open_posting_with_a_link_to_it(client, sandbox: Sandbox) -> None:
    answer = client.get("/jobs.atom")
    assert answer.status_code == 200
    assert answer.mimetype == "application/atom+xml"
    parsed = feedparser.parse(answer.data)
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.version == "atom10"
    public = sandbox.public_postings()
    assert len(parsed.entries) == len(public)
    assert parsed.feed.title == "Jobs at Acme Robotics"
    assert parsed.feed.links[0].rel == "self"
    by_title = {p["text"] for p in public}
    for entry in parsed.entries:
        assert entry.title in by_title
        assert entry.link == entry.id
        assert entry.link.startswith("http://localhost/jobs/")
        assert client.get(entry.link.removeprefix("http://localhost")).status_code == 200  # the posting's page
        assert entry.updated_parsed is not None
        assert entry.summary


def test_the_feed_honours_the_job_lists_filters(client, sandbox: Sandbox) -> None:
    public = sandbox.public_postings()
    team = public[0]["categories"]["team"]
    parsed = feedparser.parse(client.get("/jobs.atom", query_string={"team": team}).data)
    assert {e.title for e in parsed.entries} == {p["text"] for p in public if p["categories"]["team"] == team}
    assert parsed.feed.id == f"http://localhost/jobs.atom?team={team.replace(' ', '+')}"  # its own feed
    none = feedparser.parse(client.get("/jobs.atom", query_string={"q": "nosuchwordanywhere"}).data)
    assert none.entries == []
    assert not none.bozo


def test_the_feed_keeps_to_the_validators_rules_whatever_lever_sends() -> None:
    """The W3C validator's rules that can be checked offline: one id, title and updated per feed and entry, ids
    that are absolute IRIs, RFC 3339 dates, an author for entries without one, a self link; and the XML stays
    well-formed with markup and control characters in Lever's text."""
    nasty = {
        "id": "p1",
        "text": 'R&D <Lead> \x0b"Robots"',
        "createdAt": 1_763_000_000_000,
        "updatedAt": 1_763_000_100_000,
        "team": "A&B",
        "department": None,
        "locations": ["Köln <DE>"],
        "commitment": "Full-time",
        "descriptionPlain": "x" * 2000,
    }
    xml = feed.atom(
        [nasty],
        title="Jobs at <Smith & Sons>",
        company="Smith & Sons",  # type: ignore[list-item]
        feed_url="https://careers.example/jobs.atom?team=A%26B",
        site_url="https://careers.example/",
        posting_url="https://careers.example/jobs/{id}",
        language="de",
    )
    root = ET.fromstring(xml)
    assert root.tag == f"{ATOM}feed"
    for element in (root, *root.findall(f"{ATOM}entry")):
        for tag in ("id", "title", "updated"):
            assert len(element.findall(f"{ATOM}{tag}")) == 1, tag
        assert element.findtext(f"{ATOM}id", "").startswith("https://")
        assert element.findtext(f"{ATOM}updated", "").endswith("Z")
    assert root.find(f"{ATOM}author/{ATOM}name").text == "Smith & Sons"  # type: ignore[union-attr]
    assert root.find(f"{ATOM}link[@rel='self']") is not None
    [entry] = root.findall(f"{ATOM}entry")
    assert entry.findtext(f"{ATOM}title") == 'R&D <Lead> "Robots"'  # escaped, the control character gone
    assert len(entry.findtext(f"{ATOM}summary", "")) < 600
    parsed = feedparser.parse(xml)
    assert not parsed.bozo
    assert parsed.entries[0].title == 'R&D <Lead> "Robots"'
    assert parsed.entries[0].published == "2025-11-13T02:13:20Z"


def test_the_job_list_names_its_feed_with_its_filters(client, sandbox: Sandbox) -> None:
    team = sandbox.public_postings()[0]["categories"]["team"]
    page = client.get("/", query_string={"team": team}).get_data(as_text=True)
    link = re.search(r'<link rel="alternate" type="application/atom\+xml" title="[^"]+" href="([^"]+)">', page)
    assert link, "no feed link in the job list's head"
    assert link.group(1) == "/jobs.atom?team=" + team.replace(" ", "+")

"""What feed readers read: an Atom feed (RFC 4287) of open postings, as the job list shows them.

Written with ElementTree, which escapes every value; Lever's text is stripped of the characters XML 1.0 cannot hold
(a control character in a title would make the whole feed unreadable). Each entry's id is the posting's address on
the site, which never changes; the feed's id is its own address with its filters, so two filtered feeds are two
feeds.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from xml.etree import ElementTree as ET

from .posting import Posting

NS = "http://www.w3.org/2005/Atom"
MAX_ENTRIES = 100  # the newest; a reader polls, it does not page
SUMMARY_CHARS = 500
_NOT_XML = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _text(value: str) -> str:
    return _NOT_XML.sub("", value)


def _when(ms: int | None, default: datetime) -> str:
    moment = datetime.fromtimestamp(ms / 1000, UTC) if ms else default
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def atom(
    postings: list[Posting],
    *,
    title: str,
    company: str,
    feed_url: str,
    site_url: str,
    posting_url: str,
    language: str,
    now: datetime | None = None,
) -> bytes:
    """The feed of `postings` (the newest MAX_ENTRIES); `posting_url` has `{id}` where a posting's id goes."""
    now = now or datetime.now(UTC)
    shown = sorted(postings, key=lambda p: p.get("createdAt") or 0, reverse=True)[:MAX_ENTRIES]
    ET.register_namespace("", NS)
    feed = ET.Element(f"{{{NS}}}feed", {"{http://www.w3.org/XML/1998/namespace}lang": language})

    def add(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
        element = ET.SubElement(parent, f"{{{NS}}}{tag}", attrs)
        if text is not None:
            element.text = _text(text)
        return element

    add(feed, "id", feed_url)
    add(feed, "title", title)
    newest = max((p.get("updatedAt") or p.get("createdAt") or 0 for p in shown), default=0)
    add(feed, "updated", _when(newest or None, now))
    add(feed, "link", rel="self", type="application/atom+xml", href=feed_url)
    add(feed, "link", rel="alternate", type="text/html", href=site_url)
    author = add(feed, "author")
    add(author, "name", company)
    add(feed, "generator", "jobsite")
    for p in shown:
        url = posting_url.replace("{id}", p["id"])
        entry = add(feed, "entry")
        add(entry, "id", url)
        add(entry, "title", p["text"] or p["id"])
        add(entry, "updated", _when(p.get("updatedAt") or p.get("createdAt"), now))
        if p.get("createdAt"):
            add(entry, "published", _when(p.get("createdAt"), now))
        add(entry, "link", rel="alternate", type="text/html", href=url)
        for name in ("team", "department", "commitment"):
            if p.get(name):
                add(entry, "category", term=_text(str(p[name])), label=_text(str(p[name])))
        for location in p.get("locations") or []:
            add(entry, "category", term=_text(location), label=_text(location))
        summary = " ".join((p.get("descriptionPlain") or "").split())
        if len(summary) > SUMMARY_CHARS:
            summary = summary[:SUMMARY_CHARS].rsplit(" ", 1)[0] + "…"
        where = ", ".join(p.get("locations") or [])
        add(
            entry,
            "summary",
            f"{where} — {summary}" if where and summary else where or summary or p["text"],
            type="text",
        )
    return ET.tostring(feed, encoding="utf-8", xml_declaration=True)

"""What the site shows of a Lever posting: the shape the catalog stores, and that pages, the API, search and search
engines read. Lever's HTML is sanitised once, here, rather than on every render."""

from __future__ import annotations

from typing import Any, TypedDict

from .sanitize import clean_html


class PostingList(TypedDict):
    text: str
    content: str  # sanitised HTML


class Posting(TypedDict):
    id: str
    text: str
    createdAt: int | None
    updatedAt: int | None
    team: str | None
    department: str | None
    locations: list[str]  # every location (Lever's allLocations), so a multi-location posting matches each
    commitment: str | None
    level: str | None
    workplaceType: str  # unspecified | onsite | remote | hybrid
    country: str | None
    descriptionHtml: str
    descriptionPlain: str
    lists: list[PostingList]
    closingHtml: str
    salaryRange: dict[str, Any] | None
    salaryDescriptionHtml: str


def public_posting(p: dict[str, Any]) -> Posting:
    """What the site shows of a posting, its HTML sanitised once here rather than on every render."""
    content = p.get("content") or {}
    cats = p.get("categories") or {}
    locations = cats.get("allLocations") or ([cats["location"]] if cats.get("location") else [])
    return Posting(
        id=p["id"],
        text=p.get("text") or "",
        createdAt=p.get("createdAt"),
        updatedAt=p.get("updatedAt") or p.get("createdAt"),
        team=cats.get("team"),
        department=cats.get("department"),
        locations=locations,
        commitment=cats.get("commitment"),
        level=cats.get("level"),
        workplaceType=p.get("workplaceType") or "unspecified",
        country=p.get("country"),
        descriptionHtml=clean_html(content.get("descriptionHtml")),
        descriptionPlain=content.get("description") or "",
        lists=[
            PostingList(text=lst.get("text", ""), content=clean_html(f"<ul>{lst.get('content', '')}</ul>"))
            for lst in content.get("lists") or []
        ],
        closingHtml=clean_html(content.get("closingHtml")),
        salaryRange=p.get("salaryRange"),
        salaryDescriptionHtml=clean_html(p.get("salaryDescriptionHtml")),
    )

"""What search engines read: schema.org JobPosting JSON-LD for a posting."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from .posting import Posting

EMPLOYMENT_TYPES = {
    "full-time": "FULL_TIME",
    "part-time": "PART_TIME",
    "contract": "CONTRACTOR",
    "contractor": "CONTRACTOR",
    "internship": "INTERN",
    "intern": "INTERN",
    "temporary": "TEMPORARY",
    "seasonal": "TEMPORARY",
    "volunteer": "VOLUNTEER",
    "per diem": "PER_DIEM",
}
SALARY_UNITS = {
    "per-year-salary": "YEAR",
    "per-month-salary": "MONTH",
    "semi-month-salary": "MONTH",
    "bi-month-salary": "MONTH",
    "per-week-salary": "WEEK",
    "bi-week-salary": "WEEK",
    "per-day-wage": "DAY",
    "per-hour-wage": "HOUR",
}


def iso_date(ms: int | None) -> str | None:
    return datetime.fromtimestamp(ms / 1000, UTC).date().isoformat() if ms else None


def _place(location: str, country: str | None) -> dict[str, Any]:
    locality, _, region = (part.strip() for part in location.partition(","))
    address: dict[str, Any] = {"@type": "PostalAddress", "addressLocality": locality}
    if region and len(region) <= 3:
        address["addressRegion"] = region
    if country:
        address["addressCountry"] = country
    return {"@type": "Place", "address": address}


def job_posting(posting: Posting, *, company: str, url: str, site_url: str) -> dict[str, Any]:
    """schema.org JobPosting for Google's job search."""
    data: dict[str, Any] = {
        "@context": "https://schema.org/",
        "@type": "JobPosting",
        "title": posting["text"],
        "description": posting["descriptionHtml"]
        + "".join(f"<p>{lst['text']}</p>{lst['content']}" for lst in posting["lists"]),
        "datePosted": iso_date(posting["createdAt"]),
        "hiringOrganization": {"@type": "Organization", "name": company, "sameAs": site_url},
        "identifier": {"@type": "PropertyValue", "name": company, "value": posting["id"]},
        "url": url,
        "directApply": True,
    }
    commitment = (posting.get("commitment") or "").strip().lower()
    data["employmentType"] = EMPLOYMENT_TYPES.get(commitment, "OTHER") if commitment else "OTHER"
    onsite = [loc for loc in posting["locations"] if not loc.lower().startswith("remote")]
    if posting["workplaceType"] == "remote":
        data["jobLocationType"] = "TELECOMMUTE"
        data["applicantLocationRequirements"] = {"@type": "Country", "name": posting.get("country") or "US"}
    if onsite and posting["workplaceType"] != "remote":
        data["jobLocation"] = [_place(loc, posting.get("country")) for loc in onsite]
    elif posting["workplaceType"] != "remote":
        data["jobLocation"] = [_place(loc, posting.get("country")) for loc in posting["locations"]]
    salary = posting.get("salaryRange")
    if salary and salary.get("currency") and (salary.get("min") or salary.get("max")):
        value: dict[str, Any] = {
            "@type": "QuantitativeValue",
            "unitText": SALARY_UNITS.get(salary.get("interval", ""), "YEAR"),
        }
        if salary.get("min") is not None:
            value["minValue"] = salary["min"]
        if salary.get("max") is not None:
            value["maxValue"] = salary["max"]
        data["baseSalary"] = {"@type": "MonetaryAmount", "currency": salary["currency"], "value": value}
    return data

"""Realistic, deterministic seed data for the Lever sandbox: postings and their application questions."""

from __future__ import annotations

import random
import uuid
from typing import Any

TEAMS = {  # department -> teams -> titles
    "Engineering": {
        "Platform": ["Platform Engineer", "Site Reliability Engineer", "Staff Infrastructure Engineer"],
        "Robotics Software": ["Robotics Software Engineer", "Motion Planning Engineer", "Perception Engineer"],
        "Data": ["Data Engineer", "Machine Learning Engineer", "Analytics Engineer"],
        "Security": ["Security Engineer", "Application Security Lead"],
    },
    "Product": {
        "Design": ["Product Designer", "UX Researcher"],
        "Product Management": ["Product Manager, Fleet", "Technical Product Manager"],
    },
    "Operations": {
        "Manufacturing": ["Manufacturing Technician", "Quality Engineer", "Production Planner"],
        "Supply Chain": ["Supply Chain Analyst", "Procurement Specialist"],
    },
    "Go To Market": {
        "Sales": ["Account Executive", "Sales Engineer"],
        "Customer Success": ["Customer Success Manager", "Field Service Technician"],
    },
    "People & Finance": {
        "People": ["Recruiter", "People Partner"],
        "Finance": ["Financial Analyst", "Accounting Intern"],
    },
}
LOCATIONS = {
    "San Francisco, CA": "US",
    "New York, NY": "US",
    "Austin, TX": "US",
    "Remote - US": "US",
    "London, UK": "GB",
    "Berlin, Germany": "DE",
    "Toronto, Canada": "CA",
}
COMMITMENTS = ["Full-time", "Full-time", "Full-time", "Part-time", "Contract", "Internship"]
WORKPLACES = ["onsite", "remote", "hybrid", "unspecified"]
LEVELS = ["Junior", "Mid", "Senior", "Staff", None]
HIDDEN_STATES = ["internal", "closed", "draft", "pending"]


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _description(title: str, team: str, evil: bool) -> tuple[str, str]:
    html = (
        f"<div><p>We are looking for a <b>{title}</b> to join the {team} team at Acme Robotics, where we build "
        "autonomous machines for warehouses and farms.</p>"
        "<p>You will work with a small, senior team and ship to real customers every week.</p></div>"
    )
    if evil:  # Lever's HTML is not ours: the site must sanitise it
        html += (
            '<p onclick="alert(1)">Apply today!</p><script>alert("xss")</script>'
            '<img src="x" onerror="alert(2)"><a href="javascript:alert(3)">details</a>'
        )
    return html, f"We are looking for a {title} to join the {team} team at Acme Robotics."


def _lists(rng: random.Random, title: str) -> list[dict[str, str]]:
    duties = [
        "Design and ship features end to end",
        "Work closely with operators in the field",
        "Write clear documentation",
        "Review code and mentor teammates",
        "Own systems in production",
    ]
    needs = [
        "3+ years of relevant experience",
        "Clear written communication",
        "Curiosity about robots",
        "Experience with Python or C++",
        "Comfort with ambiguity",
    ]
    return [
        {"text": "What you will do", "content": "".join(f"<li>{d}</li>" for d in rng.sample(duties, 3))},
        {"text": "What you bring", "content": "".join(f"<li>{n}</li>" for n in rng.sample(needs, 3))},
    ]


def make_postings(seed: int = 7) -> list[dict[str, Any]]:
    """36 postings: 30 published on the public site, the rest internal, closed, draft, pending or internal-only."""
    rng = random.Random(seed)
    roles = [(d, t, title) for d, teams in TEAMS.items() for t, titles in teams.items() for title in titles]
    rng.shuffle(roles)
    now = 1_763_000_000_000
    postings = []
    for i in range(36):
        dept, team, title = roles[i % len(roles)]
        locs = rng.sample(sorted(LOCATIONS), rng.choice([1, 1, 1, 2, 3]))
        workplace = WORKPLACES[i % 4]
        if "Remote - US" in locs:
            workplace = "remote"
        pid = _uuid(rng)
        html, plain = _description(title, team, evil=(i == 3))
        salary = None
        if LOCATIONS[locs[0]] == "US" and i % 3 != 2:
            low = rng.randrange(70, 180) * 1000
            salary = {
                "min": low,
                "max": low + rng.randrange(20, 60) * 1000,
                "currency": "USD",
                "interval": "per-year-salary",
            }
        if COMMITMENTS[i % 6] == "Contract" and salary:
            salary = {"min": 60, "max": 95, "currency": "USD", "interval": "per-hour-wage"}
        state = "published" if i < 30 else HIDDEN_STATES[i % 4]
        channels: list[str] | None = ["internal", "public"]
        if i == 35:
            state, channels = "published", ["internal"]  # published, but only on the internal job site
        elif state == "internal":
            channels = None
        level = rng.choice(LEVELS)
        created = now - rng.randrange(1, 90) * 86_400_000
        postings.append(
            {
                "id": pid,
                "text": title,
                "createdAt": created,
                "updatedAt": created + 3_600_000,
                "user": _uuid(rng),
                "owner": _uuid(rng),
                "hiringManager": _uuid(rng),
                "confidentiality": "non-confidential",
                "categories": {
                    "team": team,
                    "department": dept,
                    "location": locs[0],
                    "allLocations": locs,
                    "commitment": COMMITMENTS[i % 6],
                    "level": level,
                },
                "content": {
                    "description": plain,
                    "descriptionHtml": html,
                    "lists": _lists(rng, title),
                    "closing": "Acme Robotics is an equal opportunity employer.",
                    "closingHtml": "<div><p>Acme Robotics is an equal opportunity employer.</p></div>",
                },
                "country": LOCATIONS[locs[0]],
                "tags": [team],
                "followers": [],
                "state": state,
                "distributionChannels": channels,
                "reqCode": f"R{1000 + i}",
                "requisitionCodes": [f"R{1000 + i}"],
                "salaryDescription": "Base salary; equity and benefits on top." if salary else None,
                "salaryDescriptionHtml": "<p>Base salary; equity and benefits on top.</p>" if salary else None,
                "salaryRange": salary,
                "urls": {
                    "list": "https://jobs.lever.co/acme",
                    "show": f"https://jobs.lever.co/acme/{pid}",
                    "apply": f"https://jobs.lever.co/acme/{pid}/apply",
                },
                "workplaceType": workplace,
            }
        )
    return postings


EEO = {
    "gender": ["Male", "Female", "Non-binary", "Decline to self-identify"],
    "race": [
        "Hispanic or Latino",
        "White",
        "Black or African American",
        "Asian",
        "Native Hawaiian or Other Pacific Islander",
        "American Indian or Alaska Native",
        "Two or More Races",
        "Decline to self-identify",
    ],
    "veteran": ["I am a veteran", "I am not a veteran", "Decline to self-identify"],
    "disability": ["Yes, I have a disability", "No, I do not have a disability", "I do not want to answer"],
}


def make_questions(posting: dict[str, Any], index: int) -> dict[str, Any]:
    """The application form of one posting. Even-indexed postings ask one question of every custom field type."""
    rng = random.Random(posting["id"])
    locations = posting["categories"]["allLocations"]

    def field(
        type_: str, text: str, required: bool = False, options: list[str] | None = None, description: str = ""
    ) -> dict[str, Any]:
        f: dict[str, Any] = {
            "id": _uuid(rng),
            "type": type_,
            "text": text,
            "description": description,
            "required": required,
            "value": [] if type_ == "multiple-select" else None,
            "distribution": ["external", "internal"],
        }
        if options is not None:
            f["options"] = [{"text": o} for o in options]
        return f

    personal = [
        {"name": "fullName", "text": "Full name", "type": "text", "required": True, "value": None},
        {"name": "email", "text": "Email", "type": "text", "required": True, "value": None},
        {"name": "phone", "text": "Phone", "type": "text", "required": False, "value": None},
        {"name": "currentCompany", "text": "Current company", "type": "text", "required": False, "value": None},
        {"name": "currentLocation", "text": "Current location", "type": "text", "required": False, "value": None},
        {"name": "resume", "text": "Resume/CV", "type": "file-upload", "required": index % 2 == 0, "value": None},
    ]
    if len(locations) > 1:
        personal.append(
            {
                "name": "preferredPostingLocation",
                "text": "Preferred location",
                "type": "dropdown",
                "required": True,
                "value": None,
                "options": [{"text": loc} for loc in locations],
            }
        )
    personal.append(
        {
            "name": "additionalInformation",
            "text": "Additional information",
            "type": "textarea",
            "required": False,
            "value": None,
        }
    )
    custom = [
        {
            "id": _uuid(rng),
            "text": "About you",
            "fields": [
                field("text", "How did you hear about us?", required=True),
                field(
                    "dropdown",
                    "Are you authorized to work in the country of this job?",
                    required=True,
                    options=["Yes", "No", "I will need sponsorship"],
                ),
            ],
        }
    ]
    if index % 2 == 0:
        custom.append(
            {
                "id": _uuid(rng),
                "text": "Your experience",
                "fields": [
                    field(
                        "textarea",
                        "Tell us about a project you are proud of.",
                        required=True,
                        description="A few sentences are plenty.",
                    ),
                    field(
                        "multiple-choice",
                        "How many years of professional experience do you have?",
                        options=["0-2", "3-5", "6-10", "10+"],
                    ),
                    field(
                        "multiple-select",
                        "Which languages do you use?",
                        options=["Python", "C++", "Rust", "Go", "TypeScript"],
                    ),
                    field("file-upload", "Cover letter", description="Optional."),
                    field("university", "Where did you study?"),
                ],
            }
        )
    form: dict[str, Any] = {
        "id": posting["id"],
        "text": posting["text"],
        "customQuestions": custom,
        "personalInformation": personal,
        "urls": [
            {"name": n, "text": n, "type": "text", "required": False, "value": None}
            for n in ("LinkedIn", "GitHub", "Portfolio")
        ],
        "consentDisclosures": {
            "store": {
                "statement": "I agree that Acme Robotics may store my data for 2 years to consider me "
                "for future roles.",
                "statementHtml": "<p>I agree that Acme Robotics may store my data for 2 years to consider "
                "me for future roles.</p>",
                "displayState": "MANDATORY_DISCLOSURE_SHOWN",
                "compliancePolicyId": _uuid(rng),
            },
            "marketing": {"displayState": "ASSUMED_DISCLOSURE_HIDDEN", "compliancePolicyId": _uuid(rng)},
        },
    }
    if posting["country"] == "US":
        eeo: dict[str, Any] = {
            name: {
                "type": "dropdown",
                "text": name.capitalize(),
                "required": False,
                "prompt": name.capitalize(),
                "value": None,
                "options": [{"text": o, "optionId": o} for o in opts],
            }
            for name, opts in EEO.items()
        }
        eeo["disabilitySignature"] = {"type": "text", "text": "Signature", "required": False, "value": None}
        eeo["disabilitySignatureDate"] = {"type": "text", "text": "Date", "required": False, "value": None}
        form["eeoQuestions"] = eeo
    return form


def make_users() -> list[dict[str, Any]]:
    """The account's users (List users): two recruiters, a team member, and a deactivated user, with fixed ids so a
    test or a person can name one in JOBSITE_LEVER_PERFORM_AS."""
    rows = [
        ("Rita Recruiter", "rita@acme.example", "admin", None),
        ("Sam Sourcer", "sam@acme.example", "team member", None),
        ("Hana Hiring", "hana@acme.example", "team member", None),
        ("Olga Gone", "olga@acme.example", "team member", 1_700_000_000_000),
    ]
    return [
        {
            "id": str(uuid.UUID(int=i + 1, version=4)),
            "name": name,
            "username": email.split("@")[0],
            "email": email,
            "accessRole": role,
            "createdAt": 1_600_000_000_000,
            "deactivatedAt": gone,
            "externalDirectoryId": None,
        }
        for i, (name, email, role, gone) in enumerate(rows)
    ]


def new_posting(
    n: int,
    *,
    text: str = "",
    team: str = "",
    department: str = "",
    location: str = "",
    commitment: str = "",
    workplace: str = "",
    now_ms: int = 0,
) -> dict[str, Any]:
    """A posting published now on the public site (the sandbox's "publish a new posting"): the `n`-th, its
    categories as given, or taken from the seed's lists in turn."""
    rng = random.Random(f"new-{n}")
    roles = [(d, t, title) for d, teams in TEAMS.items() for t, titles in teams.items() for title in titles]
    dept, default_team, title = roles[n % len(roles)]
    team = team or default_team
    text = text or title
    location = location or sorted(LOCATIONS)[n % len(LOCATIONS)]
    pid = _uuid(rng)
    html, plain = _description(text, team, evil=False)
    created = now_ms or 1_763_000_000_000
    return {
        "id": pid,
        "text": text,
        "createdAt": created,
        "updatedAt": created,
        "user": _uuid(rng),
        "owner": _uuid(rng),
        "hiringManager": _uuid(rng),
        "confidentiality": "non-confidential",
        "categories": {
            "team": team,
            "department": department or dept,
            "location": location,
            "allLocations": [location],
            "commitment": commitment or "Full-time",
            "level": None,
        },
        "content": {
            "description": plain,
            "descriptionHtml": html,
            "lists": _lists(rng, text),
            "closing": "Acme Robotics is an equal opportunity employer.",
            "closingHtml": "<div><p>Acme Robotics is an equal opportunity employer.</p></div>",
        },
        "country": LOCATIONS.get(location),
        "tags": [team],
        "followers": [],
        "state": "published",
        "distributionChannels": ["internal", "public"],
        "reqCode": f"N{1000 + n}",
        "requisitionCodes": [f"N{1000 + n}"],
        "salaryDescription": None,
        "salaryDescriptionHtml": None,
        "salaryRange": None,
        "urls": {
            "list": "https://jobs.lever.co/acme",
            "show": f"https://jobs.lever.co/acme/{pid}",
            "apply": f"https://jobs.lever.co/acme/{pid}/apply",
        },
        "workplaceType": workplace or WORKPLACES[n % 4],
    }

"""An application as jobsite stores it, and its mapping to the body of Lever's Apply to a posting."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

MAX_ATTRIBUTION_CHARS = 100


def clean_attribution(value: Any) -> str:
    """A value of where a candidate came from as jobsite keeps it and Lever records it: printable, one line, short
    (it comes from anyone's URL; pages escape it like any text)."""
    text = value if isinstance(value, str) else ""
    return " ".join("".join(c for c in text if c.isprintable()).split())[:MAX_ATTRIBUTION_CHARS]


@dataclass(frozen=True)
class Attribution:
    """Where a candidate came from, on first touch: the source (`source`, else Lever's own `lever-source`, else
    `utm_source`, else the referring site), the campaign's medium and name, and the referring site's host."""

    source: str = ""
    medium: str = ""
    campaign: str = ""
    referrer: str = ""

    @classmethod
    def of(cls, values: Mapping[str, Any]) -> Attribution:
        """From query parameters or a JSON body (`source`, `lever-source`, `utm_source`, `utm_medium`,
        `utm_campaign`, `ref`): unknown or hostile values are bounded and printable."""
        get = {
            k: clean_attribution(values.get(k))
            for k in ("source", "lever-source", "utm_source", "utm_medium", "utm_campaign", "ref")
        }
        source = get["source"] or get["lever-source"] or get["utm_source"] or get["ref"]
        return cls(source=source, medium=get["utm_medium"], campaign=get["utm_campaign"], referrer=get["ref"])


def custom_name(set_id: str, index: int) -> str:
    """The form field name of a custom question's answer: its set and its position, which is how Lever matches it."""
    return f"cards[{set_id}][field{index}]"


@dataclass
class Application:
    """A valid application as jobsite stores it: plain data, no file contents (files are stored apart)."""

    posting_id: str
    personal: dict[str, str] = field(default_factory=dict)
    urls: dict[str, str] = field(default_factory=dict)
    custom: dict[str, list[Any]] = field(default_factory=dict)  # set id -> values by position
    eeo: dict[str, str] = field(default_factory=dict)
    consent: dict[str, dict[str, Any]] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)  # form field name -> file name as uploaded

    @property
    def email(self) -> str:
        return self.personal.get("email", "")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Application:
        return cls(**data)

    def lever_body(self, uris: Mapping[str, str], source: str) -> dict[str, Any]:
        """Lever's Apply-to-a-posting body; `uris` maps file field names to Lever upload URIs. Custom answers go
        by position within each question set, in the form's order, as Lever matches them."""
        personal = [{"name": k, "value": v} for k, v in self.personal.items()]
        if "resume" in uris:
            personal.append({"name": "resume", "value": uris["resume"]})
        custom = []
        for set_id, values in self.custom.items():
            values = [uris.get(custom_name(set_id, i), v) for i, v in enumerate(values)]
            custom.append({"id": set_id, "fields": [{"value": v} for v in values]})
        body: dict[str, Any] = {
            "personalInformation": personal,
            "urls": [{"name": k, "value": v} for k, v in self.urls.items()],
            "customQuestions": custom,
            "source": source,
            "origin": "applied",
        }
        if self.eeo:
            body["eeoResponses"] = self.eeo
        if self.consent:
            body["consent"] = self.consent
        return body

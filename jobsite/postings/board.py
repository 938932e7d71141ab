"""The job board's view of the postings: filters, full-text search, facets and grouping by team."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ..words import N_
from .posting import Posting

WORKPLACE_LABELS = {"onsite": N_("On-site"), "remote": N_("Remote"), "hybrid": N_("Hybrid")}
FILTERS = ("team", "department", "location", "commitment", "workplace")


@dataclass(frozen=True)
class Query:
    """What a visitor asked for: one value per filter (empty = any) and search words."""

    team: str = ""
    department: str = ""
    location: str = ""
    commitment: str = ""
    workplace: str = ""
    q: str = ""

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> Query:
        return cls(**{name: (args.get(name) or "").strip()[:200] for name in (*FILTERS, "q")})

    def asked(self) -> dict[str, str]:
        """The filters and search words given (for a link that keeps them: the feed of this list)."""
        return {name: getattr(self, name) for name in (*FILTERS, "q") if getattr(self, name)}

    def key(self) -> str:
        return "|".join(getattr(self, n) for n in (*FILTERS, "q"))


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.casefold())


def _values(posting: Posting, name: str) -> list[str]:
    if name == "location":
        return posting["locations"]
    if name == "workplace":
        return [posting["workplaceType"]]
    value = {"team": posting["team"], "department": posting["department"], "commitment": posting["commitment"]}[name]
    return [value] if value else []


def matches(posting: Posting, query: Query) -> bool:
    """A posting matches every filter given (a multi-location posting matches each of its locations) and every
    search word, as a prefix of a word of its title, team or description."""
    for name in FILTERS:
        wanted = getattr(query, name)
        if wanted and wanted not in _values(posting, name):
            return False
    if query.q:
        haystack = set(_words(" ".join([posting["text"], posting.get("team") or "", posting["descriptionPlain"]])))
        for word in _words(query.q):
            if not any(h.startswith(word) for h in haystack):
                return False
    return True


class Offer:
    """What one posting offers the filters, worked out once, to check many saved queries against it (job alerts:
    a new posting against every subscription). `satisfies` is `matches` for a query given as a mapping of filter
    names (FILTERS and "q") to values; tests hold the two to the same answers."""

    def __init__(self, posting: Posting):
        self.values = {name: frozenset(_values(posting, name)) for name in FILTERS}
        text = " ".join([posting["text"], posting.get("team") or "", posting["descriptionPlain"]])
        self.prefixes = frozenset(w[:n] for w in set(_words(text)) for n in range(1, len(w) + 1))

    def satisfies(self, query: Mapping[str, str]) -> bool:
        for name in FILTERS:
            wanted = query.get(name)
            if wanted and wanted not in self.values[name]:
                return False
        q = query.get("q")
        return not q or all(word in self.prefixes for word in _words(q))


def search(postings: Iterable[Posting], query: Query) -> list[Posting]:
    return [p for p in postings if matches(p, query)]


def facets(postings: Iterable[Posting]) -> dict[str, list[str]]:
    """The values each filter can take, sorted, from all postings."""
    found: dict[str, set[str]] = {name: set() for name in FILTERS}
    for p in postings:
        for name in FILTERS:
            found[name].update(v for v in _values(p, name) if v and v != "unspecified")
    return {name: sorted(values) for name, values in found.items()}


def by_team(postings: Iterable[Posting]) -> list[tuple[str, list[Posting]]]:
    """Postings grouped by team, teams sorted by name, postings by title."""
    groups: dict[str, list[Posting]] = {}
    for p in postings:
        groups.setdefault(p.get("team") or "Other", []).append(p)
    return [(team, sorted(ps, key=lambda p: p["text"])) for team, ps in sorted(groups.items())]

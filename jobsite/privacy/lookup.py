"""Find a person across what the flows store: applications (records/store) and sourced people (sourcing/people),
through the search index (records/search). One answer for the console's search box and `jobsite admin find`, which
sit in layers that cannot import each other."""

from __future__ import annotations

from dataclasses import dataclass

import redis

from ..records import search, store
from ..sourcing import people


@dataclass
class Found:
    applications: list[store.Record]
    people: list[people.Person]
    complete: bool = True  # False while records stored before the index existed are still being indexed


def find(r: redis.Redis, text: str, build_budget_s: float | None = search.BUILD_BUDGET_S) -> Found:
    """Records matching `text` (a reference, an exact email, a name's words; or a receipt or a person's id as is),
    newest first. The first searches index what was stored before the index existed, `build_budget_s` at a time
    (None: all at once, as the command line may)."""
    complete = all(
        [
            search.ensure_built(r, search.APPLICATION, lambda at: store.search_batches(r, at), build_budget_s),
            search.ensure_built(r, search.PERSON, lambda at: people.search_batches(r, at), build_budget_s),
        ]
    )
    hits = search.find(r, text)
    receipts = [h.id for h in hits if h.kind == search.APPLICATION]
    ids = [h.id for h in hits if h.kind == search.PERSON]
    text = text.strip()
    if text.isascii() and text.replace("-", "").replace("_", "").isalnum() and len(text) <= 64:
        receipts += [text] if text not in receipts and store.known(r, text) else []
        ids += [text] if text not in ids and people.load(r, text) else []
    return Found(store.load_many(r, receipts), people.load_many(r, ids), complete)

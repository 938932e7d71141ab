"""Find a person across what the flows store: applications (records/store) and sourced people (sourcing/people),
through the search index (records/search). One answer for the console's search box and `jobsite admin find`, which
sit in layers that cannot import each other."""

from __future__ import annotations

from dataclasses import dataclass

import redis

from .records import search, store
from .sourcing import people


@dataclass
class Found:
    applications: list[store.Record]
    people: list[people.Person]


def find(r: redis.Redis, text: str) -> Found:
    """Records matching `text` (a reference, an exact email, a name's words; or a receipt or a person's id as is),
    newest first. The first search indexes what was stored before the index existed."""
    search.ensure_built(r, search.APPLICATION, lambda: store.search_batches(r))
    search.ensure_built(r, search.PERSON, lambda: people.search_batches(r))
    hits = search.find(r, text)
    receipts = [h.id for h in hits if h.kind == search.APPLICATION]
    ids = [h.id for h in hits if h.kind == search.PERSON]
    text = text.strip()
    if text.isascii() and text.replace("-", "").replace("_", "").isalnum() and len(text) <= 64:
        receipts += [text] if text not in receipts and store.known(r, text) else []
        ids += [text] if text not in ids and people.load(r, text) else []
    return Found(store.load_many(r, receipts), people.load_many(r, ids))

"""The keys of `postings/`: the postings seen published, for the job alerts (`published.py`)."""

from __future__ import annotations

from .. import keyspace

SEEN = keyspace.name("alert:seen:postings")
NEW = keyspace.name("alert:seen:new")

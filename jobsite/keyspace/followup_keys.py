"""The keys of `followup/`: the pipeline report (`report.py`) and tagging parked behind the gate."""

from __future__ import annotations

from .. import keyspace

# report.py
OPP = keyspace.name("pipeline:opp:{}")  # hash of one tracked opportunity
OPPS = keyspace.name("pipeline:opps")  # set of tracked opportunity ids
# hash: stage:<id> -> text, reason:<id> -> text, hired:<id> -> 1, order:<id> -> index
NAMES = keyspace.name("pipeline:names")
# exists for a minute after names were fetched: one refresh, no storm
NAMES_REFRESHED = keyspace.name("pipeline:names_refreshed")
# Lever ms of the last complete sync
SYNCED_AT = keyspace.name("pipeline:synced_at")
# exists while a sync is due or running (one at a time, every JOBSITE_PIPELINE_SYNC_S)
SYNC_LOCK = keyspace.name("pipeline:sync_lock")
PREFIX = keyspace.name("pipeline:tag_prefix")  # the tag prefix the last sync read source and campaign tags with
SEEN = keyspace.name("pipeline:webhook:{}")  # a webhook token already applied (kept past the stale limit)

# tagging.py
PARKED = keyspace.name("followup:parked")  # zset: receipt -> when its tagging was parked behind the closed gate

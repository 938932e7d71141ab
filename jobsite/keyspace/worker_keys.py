"""The keys of `worker/`: the shared upkeep's locks."""

from __future__ import annotations

from .. import keyspace

UPKEEP_LOCK = keyspace.name("upkeep:lock")  # exists while one worker does this interval's shared upkeep
RETENTION_RAN = keyspace.name("retention:ran")  # exists for an hour after a worker ran retention

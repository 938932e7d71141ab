"""The keys of `redisdb/`."""

from __future__ import annotations

from .. import keyspace

REPLICATION_MARK = keyspace.name("replication:mark")  # the write that WAIT waits for (replicated())

"""Which postings are newly published: the catalog tells this module every list of published (public) postings it
fetches, and a posting never seen before is announced once, to be matched against the job alerts (alerts/fanout.py).

The record is in Redis, not in a process: several web machines refresh the catalog, each possibly twice, and the
seen set and the announcement change in one Lua script, so a posting is announced at most once whoever saw it
first. The first list written to an empty record is taken as what was already there: a site starting with alerts
announces nothing old. A posting unpublished and published again is not news.

This module owns `alert:seen:postings` (every posting id seen published, and an empty member marking the record
as started) and `alert:seen:new` (announced postings whose matching is not finished: id -> when it was last
handed to a worker, 0 for never; the fan-out removes an id when it has matched it against everyone).
"""

from __future__ import annotations

from collections.abc import Iterable

import redis

from ..keyspace.postings_keys import NEW, SEEN
from ..redisdb.lua import Lua

STARTED = ""  # the member that says the record holds a first list

# KEYS: SEEN, NEW; ARGV: posting ids. Returns the ids announced now.
_NOTICE = Lua("""
local first = redis.call('SISMEMBER', KEYS[1], '') == 0
local announced = {}
for i = 1, #ARGV do
  if redis.call('SADD', KEYS[1], ARGV[i]) == 1 and not first then
    redis.call('ZADD', KEYS[2], 0, ARGV[i])
    announced[#announced + 1] = ARGV[i]
  end
end
redis.call('SADD', KEYS[1], '')
return announced
""")


def notice(r: redis.Redis, posting_ids: Iterable[str]) -> list[str]:
    """Note the published postings of a fresh list; returns those announced now (never seen before, and the
    record was started)."""
    ids = [i for i in posting_ids if i]
    return [x.decode() if isinstance(x, bytes) else str(x) for x in _NOTICE(r, [SEEN, NEW], ids)]


def waiting(r: redis.Redis, handed_before: float) -> list[str]:
    """Announced postings whose matching is not finished and was last handed to a worker before `handed_before`
    (never, or a worker that stopped making progress)."""
    return [x.decode() for x in r.zrangebyscore(NEW, 0, handed_before)]


def handed(r: redis.Redis | redis.client.Pipeline, posting_id: str, at: float) -> None:
    """A worker has (or is making progress with) the posting's matching, as of `at`; only for a posting still
    announced."""
    r.zadd(NEW, {posting_id: at}, xx=True)


def matched(r: redis.Redis, posting_id: str) -> None:
    """The posting's matching is done: it is no longer waiting."""
    r.zrem(NEW, posting_id)

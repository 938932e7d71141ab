"""The keys of `delivery/`: the gate, the leases and the sender's marks, lost-job checks."""

from __future__ import annotations

from .. import keyspace

# gate.py
GATE = keyspace.name("gate")  # hash: state, cause, since, failures, next_probe_at, reason
PAUSED = keyspace.name("gate:paused")  # exists while a recruiter has paused delivery (value: who)
PARKED = keyspace.name("gate:parked")  # zset: receipt -> created_at
PROBE = keyspace.name("gate:probe")  # exists while a probe job is scheduled or running (value: its job id)
# exists while probes skip the read the key may not make (value: why); expires
READ_REFUSED = keyspace.name("gate:read_refused")
# Lever's 5xx and unanswered calls in a row, every worker's; expires
LEVER_FAILURES = keyspace.name("gate:lever_failures")

# deliverer.py
CAN_RECONCILE = keyspace.name("lever:can_list_opportunities")  # "0" when the key may not list opportunities
LEASE = keyspace.name("lease:{}")  # a redis-py Lock per application while a worker delivers it

# sender.py
# with replicas: a token the lease holder's last in-flight mark wrote (expires with the lease); of a lease key, which
# is under the prefix already
SENT = "{}:sent"
# hash while the replicas acknowledge no in-flight mark: since, held; expires
UNACKED = keyspace.name("replication:unacked")

# jobs.py: exists once a check saw the job "queued" in no queue (value: 1); expires
UNQUEUED = keyspace.name("jobs:unqueued:{}")

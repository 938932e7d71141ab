"""The keys of `sourcing/`: sourced people (`people.py`), events, sign-ups' idempotency, the sender's leases, the
recruiters' Lever users."""

from __future__ import annotations

from .. import keyspace

# people.py
KEY = keyspace.name("sourced:{}")  # JSON: one person
ALL = keyspace.name("sourced:all")  # zset: id -> created_at, everyone
PENDING = keyspace.name("sourced:pending")  # zset: id -> created_at, not yet delivered nor given up
DELIVERED = keyspace.name("sourced:delivered")  # zset: id -> delivered_at, for retention
PARKED = keyspace.name("sourced:parked")  # zset: id -> created_at, waiting behind the delivery gate
TALENT = keyspace.name("sourced:talent")  # zset: id -> created_at, the talent community
EVENT = keyspace.name("sourced:event:{}")  # zset: id -> created_at, the people captured at one event
CLIENT = keyspace.name("sourced:client:{}:{}")  # event id, the capture page's client_id -> person id
CONTACT = keyspace.name("sourced:contact:{}")  # set: the people of one Lever contact (for candidateDeleted)
LOG = keyspace.name("sourced:{}:log")  # list: what each attempt did (JSON), newest last
# the id of the person's latest delivery job (to take them up again if it is lost)
JOB = keyspace.name("sourced:{}:job")
# digest of a talent member's address -> their id: one record per address
BY_EMAIL = keyspace.name("sourced:talent:email:{}")
# zset: id -> created_at, sign-ups waiting for their opt-in (sourcing/optin.py)
UNCONFIRMED = keyspace.name("sourced:unconfirmed")
# JSON: what the person asked on the manage page, until the lease holder writes it in
WISH = keyspace.name("sourced:{}:wish")
CHANGED = keyspace.name("sourced:changed")  # zset: id -> when, people whose changes Lever has not been told yet
# exists once every member from before the index is in it
EMAIL_INDEX_BUILT = keyspace.name("sourced:talent:email:built")
# the join time the backfill has reached, while it runs
EMAIL_INDEX_CURSOR = keyspace.name("sourced:talent:email:cursor")

# events.py
EVENT_RECORD = keyspace.name("events:{}")  # JSON: one event
EVENTS = keyspace.name("events:all")  # zset: id -> created_at

# enrol.py
IDEMPOTENCY = keyspace.name("sourced:idem:{}")  # hash of the key -> "<fingerprint> <person id>"

# opportunities.py
LEASE = keyspace.name("sourced:lease:{}")  # a redis-py Lock per person while a worker delivers them

# performers.py
CACHE = keyspace.name("sourced:performer:{}")  # a recruiter's email -> their Lever user id ("" for none); expires
SANDBOX_DEFAULT = keyspace.name("sourced:performer:*default")

"""The keys of `alerts/`: subscriptions and their index, what each was sent, the due list, the digests' batches."""

from __future__ import annotations

from .. import keyspace

# subscriptions.py
SUB = keyspace.name("alert:sub:{}")
STATE = keyspace.name("alert:state:{}")
ADDR = keyspace.name("alert:addr:{}")
IX = keyspace.name("alert:ix:{}:{}")
ANY = keyspace.name("alert:ix:any")
QWORDS = keyspace.name("alert:qwords")
# set: pending subscriptions confirmed along with another confirmation (a talent sign-up's)
ALONG = keyspace.name("alert:along:{}")

# fanout.py
SENT = keyspace.name("alert:sent:{}")
PENDING = keyspace.name("alert:due:{}")
DUE = keyspace.name("alert:due")
LEASE = keyspace.name("alert:due:lease:{}")

# digest.py
BATCH = keyspace.name("alert:due:{}:batch")
PAUSE = keyspace.name("alert:pause")
STATS = keyspace.name("alert:stats:{}")

"""The keys of `admission/`: idempotency keys and hourly quotas."""

from __future__ import annotations

from .. import keyspace

APPLICATION_KEY = keyspace.name("idem:{}")  # hash of client and key -> "<fingerprint> <receipt>" (idempotency.py)
# quotas.py: one subject's count in one unit for one hour: quota, subject, unit, window
QUOTA = keyspace.name("quota:{}:{}:{}:{}")

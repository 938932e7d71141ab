"""The keys of `lever/`: the pacing shared by every worker (`pacing.py`) and Lever's last answer (`health.py`)."""

from __future__ import annotations

from .. import keyspace

# pacing.py
# sorted set: reserved slots (ms, the Redis clock), one member per reservation
SLOTS = keyspace.name("ratelimit:{}:slots")
# hash: factor (share of the ceiling) since `since` (ms, the last decrease); paused `until` ms
STATE = keyspace.name("ratelimit:{}")
# makes each reservation's member unique
SEQ = keyspace.name("ratelimit:seq")
# hash: the smoothed lag (ms) calls leave their slots with, and its deviation
MARGIN = keyspace.name("ratelimit:margin")

# health.py
LAST = keyspace.name("lever:last")  # hash: status, endpoint, at (epoch s) of the last Lever answer

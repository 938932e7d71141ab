"""The keys of `notify/`: each email sent at most once (`sending.py`) and the mail pace (`pace.py`)."""

from __future__ import annotations

from .. import keyspace

MAIL = keyspace.name("mail:{}")  # one email's claim and state
PACE = keyspace.name("mail:pace")

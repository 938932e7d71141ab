"""The prefix every Redis key of this jobsite starts with: `JOBSITE_REDIS_PREFIX`, RQ's keys included; and, in this
package, every key name of the product: one module per owner (`records_keys` for `records/`, `metrics_keys` for
`metrics.py` ...), imported only by that owner (tests/test_architecture.py; tests/test_key_owners.py watches the
writes), so the key map is this one folder.

Two jobsites can share one Redis when each has its own prefix. Key names are module constants built at import
(`MAIL = keyspace.name("mail:{}")`), so the prefix is read here, once, from the environment; `settings` checks it and
names the variable when it is malformed. The default is no prefix: the key names of the releases before it, so an
upgrade has nothing to migrate.

RQ 3 reads its own prefix (`RQ_KEY_PREFIX`, default `rq`) when `rq` is first imported. Importing this module sets it to
`<prefix>rq`, so every process that reads the settings before it imports rq (every entry point: the CLI, and what it
starts) keeps RQ's keys under the prefix too; `settings.load_settings` refuses to run when rq was imported first.
"""

from __future__ import annotations

import os
import re

VARIABLE = "JOBSITE_REDIS_PREFIX"
# What RQ accepts in RQ_KEY_PREFIX (rq/defaults.py) but { and }: key names are `str.format` templates.
ALLOWED = re.compile(r"[A-Za-z0-9_.:-]*")
MAX_CHARS = 64

PREFIX = os.environ.get(VARIABLE, "").strip()


def problem(prefix: str) -> str | None:
    """Why `prefix` cannot be a key prefix, or None when it can."""

    if len(prefix) > MAX_CHARS:
        return f"at most {MAX_CHARS} characters"
    if not ALLOWED.fullmatch(prefix):
        return "only letters, digits and _ . : -"
    return None


def rq_prefix(prefix: str = PREFIX) -> str:
    """RQ's key prefix for this jobsite: `rq` without a prefix (RQ's default), else `<prefix>rq`."""

    return f"{prefix}rq"


def name(template: str) -> str:
    """A key name (or a `str.format` template of one) under this jobsite's prefix."""

    return PREFIX + template


if problem(PREFIX) is None:  # derived, never its own setting: one inherited from a parent with another prefix loses
    os.environ["RQ_KEY_PREFIX"] = rq_prefix()

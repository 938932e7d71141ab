"""Integrator keys: a company's own backend posts applications server-to-server with `Authorization: Bearer <key>`.

All its applications come from one address, so such requests skip the per-address limit and have their own per-key
limit instead. A key is a random 256-bit token shown once; Redis keeps only its SHA-256 (a slow hash adds nothing to
a random key of this length, and every request checks one). This module owns the `apiclient:*` keys and the
`apiclients` set.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from dataclasses import dataclass

import redis

from ..keyspace.console_keys import CLIENT, CLIENT_BY_KEY, CLIENTS

KEY_PREFIX = "jsk_"  # says what the secret is when it turns up in a config file or a scanner's report
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class ClientExists(ValueError):
    """An active client already has this name: revoke it first, or choose another name."""


class KeyRevoked(Exception):
    """The key was right once, but its client was revoked: refused, and worth an audit entry under its name."""

    def __init__(self, name: str):
        super().__init__(name)
        self.name = name


@dataclass(frozen=True)
class ApiClient:
    name: str
    created_at: float
    revoked_at: float = 0.0
    last_used_at: float = 0.0
    uses: int = 0

    @property
    def active(self) -> bool:
        return not self.revoked_at


def _client_key(name: str) -> str:
    return CLIENT.format(name)


def _lookup_key(digest: str) -> str:
    return CLIENT_BY_KEY.format(digest)


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def add(r: redis.Redis, name: str) -> str:
    """Create a client and return its key, the only time it is seen. A revoked client's name may be used again."""
    if not NAME.match(name):
        raise ValueError("a client name is 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit")
    old = get(r, name)
    if old is not None and old.active:
        raise ClientExists(f"API client {name} already has a key: revoke it first, or choose another name")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    digest = _digest(key)
    pipe = r.pipeline()
    if old is not None:  # the revoked key's lookup goes: from now on it is just a wrong key
        pipe.delete(_lookup_key(r.hget(_client_key(name), "digest").decode()))
    pipe.delete(_client_key(name))
    pipe.hset(_client_key(name), mapping={"name": name, "digest": digest, "created_at": time.time()})
    pipe.set(_lookup_key(digest), name)
    pipe.sadd(CLIENTS, name)
    pipe.execute()
    return key


def get(r: redis.Redis, name: str) -> ApiClient | None:
    raw = r.hgetall(_client_key(name))
    if not raw:
        return None
    d = {k.decode(): v.decode() for k, v in raw.items()}
    return ApiClient(
        name=d["name"],
        created_at=float(d["created_at"]),
        revoked_at=float(d.get("revoked_at") or 0),
        last_used_at=float(d.get("last_used_at") or 0),
        uses=int(d.get("uses") or 0),
    )


def list_clients(r: redis.Redis) -> list[ApiClient]:
    return [c for name in sorted(x.decode() for x in r.smembers(CLIENTS)) if (c := get(r, name))]


def authenticate(r: redis.Redis, key: str) -> ApiClient | None:
    """The active client this key belongs to, counted as a use; None for a wrong key. Raises KeyRevoked."""
    if not key.startswith(KEY_PREFIX):
        return None
    digest = _digest(key)
    name = r.get(_lookup_key(digest))
    if name is None:
        return None
    client_key = _client_key(name.decode())
    stored = r.hget(client_key, "digest")
    if stored is None or not secrets.compare_digest(stored.decode(), digest):
        return None
    if r.hget(client_key, "revoked_at"):
        raise KeyRevoked(name.decode())
    pipe = r.pipeline()
    pipe.hincrby(client_key, "uses", 1)
    pipe.hset(client_key, "last_used_at", time.time())
    pipe.execute()
    return get(r, name.decode())


def revoke(r: redis.Redis, name: str) -> bool:
    """Revoke a client's key at once (its digest stays, so a later use is refused under its name); False if there
    is no such active client."""
    client = get(r, name)
    if client is None or not client.active:
        return False
    r.hset(_client_key(name), "revoked_at", time.time())
    return True

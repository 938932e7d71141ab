"""Recruiter accounts, in Redis so every web process sees them: slow password hashes, two roles, sign-in throttling."""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum

import redis
from werkzeug.security import check_password_hash, generate_password_hash

from .ratelimit import ip_digest

MAX_FAILURES_PER_ACCOUNT = 5
MAX_FAILURES_PER_IP = 20
THROTTLE_WINDOW_S = 15 * 60
MIN_PASSWORD_LENGTH = 12
# Verified against when the account does not exist, so both cases take the same time.
_DUMMY_HASH = generate_password_hash("not a password of anyone")


class Role(StrEnum):
    VIEWER = "viewer"  # reads everything
    ADMIN = "admin"  # also acts: retry, discard, pause, refresh


@dataclass(frozen=True)
class User:
    email: str
    role: Role

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN


class Throttled(Exception):
    """Too many failed sign-ins for this account or address; try again later."""


def _key(email: str) -> str:
    return f"user:{email.strip().lower()}"


def add_user(r: redis.Redis, email: str, password: str, role: Role) -> User:
    """Create or update an account."""
    email = email.strip().lower()
    if "@" not in email:
        raise ValueError("the account name must be an email address")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    r.hset(_key(email), mapping={"email": email, "role": role.value, "hash": generate_password_hash(password),
                                 "created_at": time.time()})
    r.sadd("users", email)
    return User(email, role)


def get_user(r: redis.Redis, email: str) -> User | None:
    raw = r.hgetall(_key(email))
    if not raw:
        return None
    return User(raw[b"email"].decode(), Role(raw[b"role"].decode()))


def list_users(r: redis.Redis) -> list[User]:
    return [u for e in sorted(x.decode() for x in r.smembers("users")) if (u := get_user(r, e))]


def _throttle_keys(email: str, ip: str) -> tuple[str, str]:
    return f"signin:fail:acct:{email.strip().lower()}", f"signin:fail:ip:{ip_digest(ip)}"


def authenticate(r: redis.Redis, email: str, password: str, ip: str) -> User | None:
    """The user if the password is right; None if not. Raises Throttled after too many failures."""
    acct, addr = _throttle_keys(email, ip)
    fails = r.mget(acct, addr)
    if int(fails[0] or 0) >= MAX_FAILURES_PER_ACCOUNT or int(fails[1] or 0) >= MAX_FAILURES_PER_IP:
        raise Throttled()
    raw = r.hgetall(_key(email))
    stored = raw.get(b"hash", b"").decode() or _DUMMY_HASH
    if check_password_hash(stored, password) and raw:
        r.delete(acct)
        return User(raw[b"email"].decode(), Role(raw[b"role"].decode()))
    pipe = r.pipeline()
    for key in (acct, addr):
        pipe.incr(key)
        pipe.expire(key, THROTTLE_WINDOW_S)
    pipe.execute()
    return None

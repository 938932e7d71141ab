"""Recruiter accounts, in Redis so every web process sees them: slow password hashes, two roles, sign-in throttling,
and the sessions each account has open (so that signing out, a new password or removing the account ends them)."""

from __future__ import annotations

import hashlib
import secrets
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

import redis
from werkzeug.security import check_password_hash, generate_password_hash

from ..admission import quotas
from ..keyspace.console_keys import SESSIONS, SIGNIN, USER, USERS
from ..redisdb.lua import Lua

T = TypeVar("T")

# Sign-in throttling is per account *and* address: a stranger cannot lock a recruiter out, nor one address everyone
# behind the same proxy. After FREE_FAILURES, each failure doubles the wait before the next try from that address
# (2 s, 4 s, 8 s ...), up to MAX_DELAY_S; a success or THROTTLE_WINDOW_S without failures starts over.
FREE_FAILURES = 3
MAX_DELAY_S = 15 * 60
THROTTLE_WINDOW_S = 60 * 60
SESSION_LIFETIME_S = 12 * 3600
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
    """Too many failed sign-ins for this account from this address: try again in `retry_after` seconds."""

    def __init__(self, retry_after: int):
        super().__init__(f"retry in {retry_after} s")
        self.retry_after = retry_after


def _key(email: str) -> str:
    return USER.format(email.strip().lower())


def _sessions_key(email: str) -> str:
    return SESSIONS.format(email.strip().lower())


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")


def add_user(r: redis.Redis, email: str, password: str, role: Role) -> User:
    """Create or update an account; a new password ends the account's open sessions."""
    email = email.strip().lower()
    if "@" not in email:
        raise ValueError("the account name must be an email address")
    _check_password(password)
    with r.pipeline() as pipe:
        pipe.hset(
            _key(email),
            mapping={
                "email": email,
                "role": role.value,
                "hash": generate_password_hash(password),
                "created_at": time.time(),
            },
        )
        pipe.sadd(USERS, email)
        pipe.delete(_sessions_key(email))
        pipe.execute()
    return User(email, role)


def set_password(r: redis.Redis, email: str, password: str) -> None:
    """Change an account's password and end its open sessions. KeyError if there is no such account."""
    _check_password(password)
    if not r.exists(_key(email)):
        raise KeyError(email)
    with r.pipeline() as pipe:
        pipe.hset(_key(email), "hash", generate_password_hash(password))
        pipe.delete(_sessions_key(email))
        pipe.execute()


def remove_user(r: redis.Redis, email: str) -> bool:
    """Remove an account and end its sessions at once; False if there was none."""
    email = email.strip().lower()
    with r.pipeline() as pipe:
        pipe.delete(_key(email), _sessions_key(email))
        pipe.srem(USERS, email)
        removed, _ = pipe.execute()
    return bool(removed)


def get_user(r: redis.Redis, email: str) -> User | None:
    raw = r.hgetall(_key(email))
    if not raw:
        return None
    return User(raw[b"email"].decode(), Role(raw[b"role"].decode()))


def list_users(r: redis.Redis) -> list[User]:
    return [u for e in sorted(x.decode() for x in r.smembers(USERS)) if (u := get_user(r, e))]


def _throttle_key(email: str, address: str) -> str:
    return SIGNIN.format(hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32], address)


# Counts the try before the password is checked, so concurrent guesses cannot all pass a check made before any of
# them failed. KEYS[1] = the account+address hash; ARGV = now, free tries, max delay, window. Returns the seconds to
# wait (0 = go ahead). The count is taken back on success.
_ATTEMPT = Lua(b"""
local next_at = tonumber(redis.call('HGET', KEYS[1], 'next_at') or '0')
local now = tonumber(ARGV[1])
if now < next_at then return math.ceil(next_at - now) end
local tries = redis.call('HINCRBY', KEYS[1], 'tries', 1)
local free = tonumber(ARGV[2])
if tries > free then
  redis.call('HSET', KEYS[1], 'next_at', now + math.min(2 ^ (tries - free), tonumber(ARGV[3])))
end
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[4]))
return 0
""")


def authenticate(
    r: redis.Redis, email: str, password: str, address: str, now: float | None = None, *, failures_per_hour: int = 300
) -> User | None:
    """The user if the password is right; None if not. Raises Throttled while this address must wait before trying
    this account again, or after `failures_per_hour` failures from it this hour whatever the accounts (each costs
    a slow hash: a new email per try walked past the per-account throttle). `address` stands for the client's
    address (`addresses.ip_digest`)."""
    now = time.time() if now is None else now
    key = _throttle_key(email, address)
    wait = _ATTEMPT(r, [key], [now, FREE_FAILURES, MAX_DELAY_S, THROTTLE_WINDOW_S])
    if wait:
        raise Throttled(int(wait))
    failures = quotas.Quota("signin", {"failures": failures_per_hour})
    try:
        quotas.take(r, failures, address, {"failures": 1}, now=now)  # counted first, given back on success
    except quotas.Exceeded as e:
        raise Throttled(e.retry_after_s) from None
    raw = r.hgetall(_key(email))
    stored = raw.get(b"hash", b"").decode() or _DUMMY_HASH
    if off_the_loop(check_password_hash, stored, password) and raw:
        r.delete(key)
        quotas.give_back(r, failures, address, {"failures": 1}, now=now)
        return User(raw[b"email"].decode(), Role(raw[b"role"].decode()))
    return None


def off_the_loop(fn: Callable[..., T], *args: Any) -> T:
    """Run a CPU-bound call (scrypt: about 130 ms) in gevent's threadpool when this process runs under gevent
    (`jobsite web`), so the worker's event loop keeps serving every other request meanwhile (hashlib releases the
    GIL while it hashes); a plain call anywhere else (the CLI, the tests, a threaded server)."""
    if "gevent" in sys.modules:
        import gevent
        from gevent import monkey

        if monkey.is_module_patched("socket"):
            return gevent.get_hub().threadpool.apply(fn, args)
    return fn(*args)


def open_session(r: redis.Redis, email: str, now: float | None = None) -> str:
    """Record a new session for the account; its id goes in the signed cookie."""
    sid = secrets.token_urlsafe(24)
    expires = (time.time() if now is None else now) + SESSION_LIFETIME_S
    with r.pipeline() as pipe:
        pipe.zremrangebyscore(_sessions_key(email), "-inf", expires - SESSION_LIFETIME_S)
        pipe.zadd(_sessions_key(email), {_sid_digest(sid): expires})
        pipe.expire(_sessions_key(email), SESSION_LIFETIME_S)
        pipe.execute()
    return sid


def session_user(r: redis.Redis, email: str, sid: str, now: float | None = None) -> User | None:
    """The account of a session that is still open: not signed out, not ended by a new password or removal."""
    expires = r.zscore(_sessions_key(email), _sid_digest(sid))
    if expires is None or expires <= (time.time() if now is None else now):
        return None
    return get_user(r, email)


def close_session(r: redis.Redis, email: str, sid: str) -> None:
    r.zrem(_sessions_key(email), _sid_digest(sid))


def close_all_sessions(r: redis.Redis, email: str) -> None:
    r.delete(_sessions_key(email))


def _sid_digest(sid: str) -> str:
    """Redis keeps a digest of the session id, so what it holds cannot be replayed as a cookie."""
    return hashlib.sha256(sid.encode()).hexdigest()

"""Idempotency keys, for every flow that takes them (an application's Idempotency-Key, a sign-up's): a key is
scoped to the client that sent it (an integrator's keys live apart from anonymous ones), and bound in Redis to
the fingerprint of what came with it, then the id of what was made, as "fingerprint id". A replay gets the first
id only when the fingerprints match; another body under a used key is a conflict. Each flow writes its binding in
its own transaction, under its own key template."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass

import redis

from ..keyspace.admission_keys import APPLICATION_KEY
from ..records.application import Application
from ..records.uploads import UploadedFile

IDEMPOTENCY_TTL_S = 7 * 86400  # an integrator's retries come within days


class IdempotencyConflict(Exception):
    """The idempotency key was used before with something else (another posting, other answers or other files):
    answering with the first id would hand one person's receipt to another."""


def scoped_key(template: str, key: str, client: str = "") -> str:
    """The Redis key of `key` as `client` (an integrator's name, or "") sent it."""
    return template.format(hashlib.sha256(f"{client}\n{key}".encode()).hexdigest())


@dataclass(frozen=True)
class Idempotency:
    """A client's idempotency key (the Redis key) and the fingerprint of what was sent with it."""

    key: str
    fingerprint: str

    @classmethod
    def of(cls, key: str, application: Application, files: Mapping[str, UploadedFile], client: str = "") -> Idempotency:
        """An application's: `client` names an integrator, whose keys live apart from anonymous ones."""
        body = hashlib.sha256(json.dumps(application.to_dict(), sort_keys=True).encode())
        for name in sorted(files):
            body.update(b"\0" + name.encode() + b"\0" + hashlib.sha256(files[name].content).digest())
        return cls(scoped_key(APPLICATION_KEY, key, client), body.hexdigest())

    def binding(self, made: str) -> str:
        """What the key is bound to in Redis once `made` (a receipt, a person's id) was written."""
        return f"{self.fingerprint} {made}"

    def bind(self, pipe: redis.client.Pipeline, made: str) -> None:
        """Bind the key to `made` in the transaction on `pipe` that writes it, for IDEMPOTENCY_TTL_S."""
        pipe.set(self.key, self.binding(made), ex=IDEMPOTENCY_TTL_S)

    def bound(self, binding: str) -> str:
        """The id a key is bound to ("fingerprint id"), if it came with the same body; else IdempotencyConflict."""
        fingerprint, _, made = binding.partition(" ")
        if fingerprint != self.fingerprint:
            raise IdempotencyConflict()
        return made

"""Lua scripts run by EVALSHA, registered with `register_script` as rq does, once per Redis connection.

A script is defined at import time, before any connection exists; it is registered the first time it runs on a
connection and that registration is kept (weakly) for the connection's life, so a hot path such as the pacing's
reservation pays neither a registration nor a digest per call.
"""

from __future__ import annotations

import threading
from typing import Any
from weakref import WeakKeyDictionary

import redis


class Lua:
    """One Lua script; call it with a connection, its keys and its arguments."""

    def __init__(self, source: str | bytes):
        self.source = source
        self._registered: WeakKeyDictionary[redis.Redis, Any] = WeakKeyDictionary()
        self._lock = threading.Lock()

    def __call__(self, r: redis.Redis, keys: list[Any], args: list[Any]) -> Any:
        script = self._registered.get(r)
        if script is None:
            with self._lock:
                script = self._registered.setdefault(r, r.register_script(self.source))
        return script(keys=keys, args=args)

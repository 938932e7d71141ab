"""The on-disk spool: applications accepted while Redis could not be reached, one fsynced JSON file each, until
they are moved into Redis. This module owns the file names; intake writes and drains the spool.

The spool is per machine (it is what a web process keeps when the one shared engine is down).
"""

from __future__ import annotations

import fcntl
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .disk import durable_write, private_dir
from .store import Record


def _folder(data_dir: Path) -> Path:
    return data_dir / "spool"


def _receipt(path: Path) -> str:
    return path.stem.split("-", 1)[1]


def write(data_dir: Path, record: Record, idempotency: dict[str, str] | None) -> None:
    """Keep an application on disk, with its idempotency key and fingerprint; file names sort oldest first."""
    data = {"record": record.to_redis(), "idempotency": idempotency}
    name = f"{int(record.created_at * 1000):015d}-{record.receipt}.json"
    durable_write(_folder(data_dir) / name, json.dumps(data).encode())


def entries(data_dir: Path) -> list[Path]:
    """Spooled applications, oldest first."""
    folder = _folder(data_dir)
    return sorted(folder.glob("*.json")) if folder.is_dir() else []


def receipts(data_dir: Path) -> set[str]:
    return {_receipt(p) for p in entries(data_dir)}


def read(path: Path) -> tuple[Record, dict[str, str] | None]:
    """A spooled application and its idempotency key and fingerprint."""
    data = json.loads(path.read_text())
    return Record.from_redis({k.encode(): v.encode() for k, v in data["record"].items()}), data.get("idempotency")


@contextmanager
def drain_lock(data_dir: Path) -> Iterator[bool]:
    """Yields True to the one process on this machine that may drain the spool now, False to the others."""
    with open(private_dir(data_dir) / "spool.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True

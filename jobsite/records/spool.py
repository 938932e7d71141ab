"""The on-disk spool: applications accepted while Redis could not be reached, one fsynced JSON file each (their
uploaded files inside it), until they are moved into Redis. This module owns the file names; intake writes and
drains the spool.

The spool is per machine (it is what a web process keeps when the one shared engine is down).
"""

from __future__ import annotations

import base64
import fcntl
import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from ..disk import durable_write, private_dir
from .store import Record


def _folder(data_dir: Path) -> Path:
    return data_dir / "spool"


def _receipt(path: Path) -> str:
    return path.stem.split("-", 1)[1]


def write(data_dir: Path, record: Record, idempotency: dict[str, str] | None, files: Mapping[str, bytes]) -> None:
    """Keep an application with its idempotency key and fingerprint and its files' bytes (by form field) on disk, in
    one file written at once, so a crash leaves the whole application or nothing; file names sort oldest first."""
    data = {"record": record.to_redis(), "idempotency": idempotency,
            "files": {field: base64.b64encode(content).decode() for field, content in files.items()}}
    name = f"{int(record.created_at * 1000):015d}-{record.receipt}.json"
    durable_write(_folder(data_dir) / name, json.dumps(data).encode())


def entries(data_dir: Path) -> list[Path]:
    """Spooled applications, oldest first."""
    folder = _folder(data_dir)
    return sorted(folder.glob("*.json")) if folder.is_dir() else []


def receipts(data_dir: Path) -> set[str]:
    return {_receipt(p) for p in entries(data_dir)}


def read(path: Path) -> tuple[Record, dict[str, str] | None, dict[str, bytes]]:
    """A spooled application, its idempotency key and fingerprint, and its files' bytes by form field."""
    data = json.loads(path.read_text())
    record = Record.from_redis({k.encode(): v.encode() for k, v in data["record"].items()})
    files = {field: base64.b64decode(content) for field, content in (data.get("files") or {}).items()}
    return record, data.get("idempotency"), files


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

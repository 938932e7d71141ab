"""The on-disk spool: applications accepted while Redis could not be reached, one fsynced JSON file each (their
uploaded files inside it), until they are moved into Redis, and the idempotency keys they came with (`keys/`, one
small file per key, so that a retry while Redis is down gets the same receipt). This module owns the file names;
intake writes and drains the spool.

The spool is per machine (it is what a web process keeps when the one shared engine is down).
"""

from __future__ import annotations

import base64
import fcntl
import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from ..disk import durable_create, durable_write, private_dir
from .store import Record


def _folder(data_dir: Path) -> Path:
    return data_dir / "spool"


def _receipt(path: Path) -> str:
    return path.stem.split("-", 1)[1]


def _path(data_dir: Path, record: Record) -> Path:
    return _folder(data_dir) / f"{int(record.created_at * 1000):015d}-{record.receipt}.json"


def _key_path(data_dir: Path, key: str) -> Path:
    """The file of an idempotency key. Intake's keys end in a SHA-256 hex digest, never a client's text: only
    that digest names the file."""
    digest = key.rpartition(":")[2]
    if len(digest) != 64 or not all(c in "0123456789abcdef" for c in digest):
        raise ValueError("an idempotency key must end in a SHA-256 hex digest")
    return _folder(data_dir) / "keys" / digest


def write(data_dir: Path, record: Record, idempotency: dict[str, str] | None, files: Mapping[str, bytes]) -> None:
    """Keep an application with its idempotency key and fingerprint and its files' bytes (by form field) on disk, in
    one file written at once, so a crash leaves the whole application or nothing; file names sort oldest first."""
    data = {
        "record": record.to_redis(),
        "idempotency": idempotency,
        "files": {field: base64.b64encode(content).decode() for field, content in files.items()},
    }
    durable_write(_path(data_dir, record), json.dumps(data).encode())


def remove(data_dir: Path, record: Record) -> None:
    """Drop a spooled application (a concurrent retry with its key was spooled first)."""
    _path(data_dir, record).unlink(missing_ok=True)


def find(data_dir: Path, receipt: str) -> Record | None:
    """The spooled record with this receipt, if this machine holds one."""
    for path in entries(data_dir):
        if _receipt(path) == receipt:
            try:
                return read(path)[0]
            except FileNotFoundError:  # moved into Redis meanwhile
                return None
    return None


def claim_key(data_dir: Path, key: str, binding: str) -> str:
    """Bind an idempotency key to `binding` (its fingerprint and receipt) unless a spooled application holds it
    already; returns the binding that holds, ours or the earlier one. Atomic across the processes of a machine."""
    path = _key_path(data_dir, key)
    durable_create(path, binding.encode())
    return path.read_text()


def key_binding(data_dir: Path, key: str) -> str | None:
    """What a spooled application bound this idempotency key to, if one did."""
    try:
        return _key_path(data_dir, key).read_text()
    except FileNotFoundError:
        return None


def drop_moved_keys(data_dir: Path) -> None:
    """Forget the keys of applications no longer in the spool: Redis holds those keys now."""
    folder = _folder(data_dir) / "keys"
    keys = (
        [(path, path.read_text()) for path in folder.iterdir() if not path.name.startswith(".")]
        if folder.is_dir()
        else []
    )
    spooled = receipts(data_dir)  # listed after the keys: a key is claimed only once its application is written
    for path, binding in keys:
        if binding.rpartition(" ")[2] not in spooled:
            path.unlink(missing_ok=True)


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

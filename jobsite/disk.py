"""Writes that survive a crash: the file is fsynced, renamed into place, and its directory fsynced too."""

from __future__ import annotations

import os
from pathlib import Path


def durable_write(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that, once this returns, a power cut leaves either nothing or all of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)

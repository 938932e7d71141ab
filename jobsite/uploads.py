"""Uploaded files from intake until Lever has them: one directory per application in the data dir.

This module owns the layout end to end: intake saves files here, delivery reads them, delivery and retention remove
them, the console serves them.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypedDict

from . import filetypes
from .disk import durable_write
from .forms import UploadedFile

ORPHAN_AGE_S = 86400  # files of a submission that never made it into Redis nor the spool


class StoredFile(TypedDict):
    """A file kept with an application: where it is, what it is, and the name the candidate gave it."""

    field: str
    filename: str
    path: str
    kind: str
    content_type: str
    size: int


class FileMissing(Exception):
    """A stored file is not in this process's data dir: workers must share JOBSITE_DATA_DIR with the web."""


def _folder(data_dir: Path, receipt: str) -> Path:
    return data_dir / "uploads" / receipt


def save(data_dir: Path, receipt: str, files: Mapping[str, UploadedFile]) -> list[StoredFile]:
    """Write an application's files (fsynced, named by kind, not by the candidate's file name)."""
    stored: list[StoredFile] = []
    for i, (field, upload) in enumerate(sorted(files.items())):
        if not upload.content:
            continue
        kind = filetypes.sniff(upload.content) or "txt"
        ext, content_type = filetypes.KINDS[kind]
        path = _folder(data_dir, receipt) / f"{i}{ext}"
        durable_write(path, upload.content)
        name = Path(upload.filename or f"file{ext}").name[:100] or f"file{ext}"
        stored.append(StoredFile(field=field, filename=name, path=str(path), kind=kind, content_type=content_type,
                                 size=len(upload.content)))
    return stored


def read(f: StoredFile) -> bytes:
    try:
        return Path(f["path"]).read_bytes()
    except FileNotFoundError:
        raise FileMissing(f["filename"]) from None


def exists(f: StoredFile) -> bool:
    return Path(f["path"]).is_file()


def remove(data_dir: Path, receipt: str) -> None:
    """Remove an application's files (Lever has copies, or retention is due)."""
    shutil.rmtree(_folder(data_dir, receipt), ignore_errors=True)


def remove_orphans(data_dir: Path, now: float, known: Callable[[str], bool]) -> None:
    """Remove files older than a day whose application is not `known` (in Redis or the spool)."""
    folder = data_dir / "uploads"
    if not folder.is_dir():
        return
    for d in folder.iterdir():
        if d.is_dir() and now - d.stat().st_mtime > ORPHAN_AGE_S and not known(d.name):
            shutil.rmtree(d, ignore_errors=True)

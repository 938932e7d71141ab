"""Uploaded files from intake until Lever has them: their bytes in Redis, one hash per application (`upload:*`).

Files live in Redis, not on a disk, so that web and worker processes need nothing in common but Redis (separate
machines, containers, dynos). This module owns those keys end to end: intake writes them in the transaction that
creates the record, delivery reads them, delivery and retention remove them, the console serves them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

import redis

from . import filetypes

KEY = "upload:{}"  # hash: form field name -> the file's bytes


@dataclass(frozen=True)
class UploadedFile:
    """A file as received: its name as the candidate had it, and its bytes."""

    filename: str
    content: bytes


class StoredFile(TypedDict):
    """A file kept with an application: which form field it answers, what it is, and the name the candidate gave
    it. Its bytes are in the application's `upload:` hash under `field`."""

    field: str
    filename: str
    kind: str
    content_type: str
    size: int


class FileMissing(Exception):
    """A stored file's bytes are no longer in Redis (removed after delivery or by retention, or Redis lost them)."""


def describe(files: Mapping[str, UploadedFile]) -> tuple[list[StoredFile], dict[str, bytes]]:
    """What to keep of an application's files: their descriptions for the record (typed by content, not by the
    candidate's file name) and their bytes by field, for `add`."""
    stored: list[StoredFile] = []
    contents: dict[str, bytes] = {}
    for field, upload in sorted(files.items()):
        if not upload.content:
            continue
        kind = filetypes.sniff(upload.content) or "txt"
        ext, content_type = filetypes.KINDS[kind]
        name = Path(upload.filename or f"file{ext}").name[:100] or f"file{ext}"
        stored.append(StoredFile(field=field, filename=name, kind=kind, content_type=content_type,
                                 size=len(upload.content)))
        contents[field] = upload.content
    return stored, contents


def safe_name(f: StoredFile) -> str:
    """The name a file goes out under (the console's download, the upload to Lever): the candidate's name with the
    extension of the kind its content was found to be, so a `resume.hta` holding text is `resume.txt` and opening
    it runs nothing on a recruiter's PC (.hta, .js, .bat, .url ... would)."""
    ext = filetypes.KINDS[f["kind"]][0]
    stem = _UNSAFE.sub("_", Path(f["filename"]).stem).strip(" ._")[:80]
    return f"{stem or 'file'}{ext}"


_UNSAFE = re.compile(r"[^\w .()-]")  # letters and digits of any script, space, . ( ) - _


def add(pipe: redis.client.Pipeline, receipt: str, contents: Mapping[str, bytes]) -> None:
    """Queue the write of an application's file bytes on a MULTI pipeline (the one that creates its record)."""
    if contents:
        pipe.hset(KEY.format(receipt), mapping=dict(contents))


def read(r: redis.Redis, receipt: str, f: StoredFile) -> bytes:
    content = r.hget(KEY.format(receipt), f["field"])
    if content is None:
        raise FileMissing(f["filename"])
    return bytes(content)


def remove(r: redis.Redis | redis.client.Pipeline, receipt: str) -> None:
    """Remove an application's files (Lever has copies, or retention is due); on a pipeline, with its other
    writes."""
    r.delete(KEY.format(receipt))


"""Uploaded files from intake until Lever has them: their bytes in Redis, one hash per application (`upload:*`), or,
with JOBSITE_FILES_URL, in an S3-compatible object store, with only where they are in Redis.

Files live in Redis (or the store), not on a disk, so that web and worker processes need nothing in common but Redis
(separate machines, containers, dynos). This module owns those keys end to end: intake writes them in the
transaction that creates the record (files for the store are written to it just before), delivery reads them,
delivery and retention remove them, the console serves them. Removing an application's files deletes its `upload:`
key in the caller's transaction; the objects of a key that is gone are deleted by `sweep_outside`, run by workers.
"""

from __future__ import annotations

import functools
import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NotRequired, TypedDict
from urllib.parse import urlsplit

import redis

from ..keyspace.records_keys import KEY, OUTSIDE
from . import filetypes

log = logging.getLogger(__name__)

OUTSIDE_MARK = "@outside"  # no form field is named so


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
    object: NotRequired[str]  # s3://bucket/key, when the bytes are in the object store instead


class FilesUnreachable(redis.ConnectionError):
    """The object store that holds an application's files cannot be reached. A kind of Redis ConnectionError on
    purpose: the files lived in Redis before, and every path rides out Redis being unreachable already, as an
    unreachable store needs too (intake spools the application with its files, a delivery stops and is taken up
    again after its lease, the console answers 503)."""


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
        stored.append(
            StoredFile(field=field, filename=name, kind=kind, content_type=content_type, size=len(upload.content))
        )
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
    """Queue the write of an application's file bytes on a MULTI pipeline (the one that creates its record), or of
    where they are (`put_outside`'s mark), which `sweep_outside` then watches."""
    if contents:
        pipe.hset(KEY.format(receipt), mapping=dict(contents))
    if OUTSIDE_MARK in contents:
        pipe.zadd(OUTSIDE, {contents[OUTSIDE_MARK]: time.time()})


def put_outside(
    files_url: str, receipt: str, stored: list[StoredFile], contents: Mapping[str, bytes]
) -> tuple[list[StoredFile], dict[str, bytes]]:
    """Write an application's files to the object store at `files_url` (s3://bucket/prefix/), one object each under
    a folder of its own; returns the files as the record keeps them (each naming its object) and what Redis keeps
    instead of their bytes, for `add`. Raises FilesUnreachable."""
    bucket, prefix = split_files_url(files_url)
    folder = f"{prefix}{receipt}/"
    kept: list[StoredFile] = []
    for n, f in enumerate(stored):
        key = f"{folder}{n}"
        _call(lambda key=key, f=f: _s3().put_object(Bucket=bucket, Key=key, Body=contents[f["field"]]))
        kept.append(StoredFile(**f, object=f"s3://{bucket}/{key}"))
    return kept, {OUTSIDE_MARK: f"s3://{bucket}/{folder}".encode()}


def split_files_url(url: str) -> tuple[str, str]:
    """The bucket and the key prefix (empty, or ending in /) of an s3://bucket/prefix URL."""
    parts = urlsplit(url)
    prefix = parts.path.strip("/")
    return parts.netloc, f"{prefix}/" if prefix else ""


def sweep_outside(r: redis.Redis, batch: int = 500) -> int:
    """Delete from the object store the files of applications whose `upload:` key is gone (Lever has them, or
    retention or a recruiter removed them); returns how many folders. The oldest first, `batch` at a time; an
    unreachable store is tried again at the next run."""
    folders = [f.decode() for f in r.zrange(OUTSIDE, 0, batch - 1)]
    pipe = r.pipeline(transaction=False)
    for folder in folders:
        pipe.exists(KEY.format(folder.rstrip("/").rsplit("/", 1)[1]))
    gone = [folder for folder, kept in zip(folders, pipe.execute(), strict=True) if not kept]
    try:
        for folder in gone:
            bucket, prefix = split_files_url(folder)
            listed = _call(lambda bucket=bucket, prefix=prefix: _s3().list_objects_v2(Bucket=bucket, Prefix=prefix))
            objects = [{"Key": o["Key"]} for o in listed.get("Contents", [])]
            if objects:
                _call(
                    lambda bucket=bucket, objects=objects: _s3().delete_objects(
                        Bucket=bucket, Delete={"Objects": objects, "Quiet": True}
                    )
                )
            r.zrem(OUTSIDE, folder)
    except FilesUnreachable as e:
        log.warning("could not delete delivered files from the object store (%s): trying again later", e)
    return len(gone)


@functools.cache
def _s3() -> Any:
    """One S3 client per process (thread-safe). Its endpoint, region and credentials come from the environment as
    for any AWS SDK (AWS_ENDPOINT_URL_S3 for a store other than AWS, AWS_ACCESS_KEY_ID, ...). boto3 is imported
    here, not at the top: it costs a few hundred ms, and only sites with JOBSITE_FILES_URL need it."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3", config=Config(connect_timeout=2, read_timeout=10, retries={"max_attempts": 2, "mode": "standard"})
    )


def _call(request: Any) -> Any:
    """Run one S3 request; any failure to get an answer is FilesUnreachable (a missing object is for the caller)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return request()
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            raise
        raise FilesUnreachable(f"object store: {e.response.get('Error', {}).get('Code')}") from None
    except BotoCoreError as e:
        raise FilesUnreachable(f"object store: {type(e).__name__}") from None


def read(r: redis.Redis, receipt: str, f: StoredFile) -> bytes:
    if "object" in f:
        return _read_outside(f)
    content = r.hget(KEY.format(receipt), f["field"])
    if content is None:
        raise FileMissing(f["filename"])
    return bytes(content)


def remove(r: redis.Redis | redis.client.Pipeline, receipt: str) -> None:
    """Remove an application's files (Lever has copies, or retention is due); on a pipeline, with its other
    writes."""
    r.delete(KEY.format(receipt))


def _read_outside(f: StoredFile) -> bytes:
    from botocore.exceptions import ClientError

    where = urlsplit(f["object"])
    try:
        return bytes(_call(lambda: _s3().get_object(Bucket=where.netloc, Key=where.path.lstrip("/"))["Body"].read()))
    except ClientError:  # NoSuchKey: deleted, or never there
        raise FileMissing(f["filename"]) from None

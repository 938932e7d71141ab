"""The postings catalog: Lever's published postings and their application questions, kept in diskcache.

Reads never wait on Lever for anything seen before. An entry is fresh for CATALOG_FRESH_S; after that it is served at
once while one refresh runs in the background (stale-while-revalidate), and it keeps being served for up to
CATALOG_KEEP_S while Lever errors (stale-if-error). Misses and refreshes are collapsed across every process that shares
the cache directory with a lock entry in the cache itself: one Lever fetch per resource at a time.

Values are stored as JSON text (never pickle). Each resource has a small `meta` entry (fetch time, version) beside its
`data` entry, so the hot path reads a few bytes and reuses the parsed data it already holds for that version.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import logging
import shutil
import sqlite3
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import diskcache
import redis

from .. import metrics
from ..lever.client import LeverClient, LeverError
from ..lever.pacing import RateLimitWait
from . import published
from .posting import Posting, public_posting

log = logging.getLogger(__name__)

LOCK_S = 30  # a fetch holds its lock at most this long; after a failed fetch it also spaces out the next try
WAIT_S = 20  # a cold miss waits this long for another process's fetch
META_MEMO_S = 1.0
# What diskcache raises when its disk is full (or read-only): the catalog then works without writing to it, fetching
# from Lever what it cannot keep, rather than answer a candidate with a 500.
CACHE_WRITE_ERRORS = (sqlite3.OperationalError, OSError)
NO_LOCK = "-"  # the token of a lock the cache could not write: the fetch goes ahead without it
# A read that did not come: Lever refused or failed it (a 429 has slowed every worker already, in the client's
# pacing), or no slot on Lever's limits was free within the wait. The catalog serves what it has either way.
UNREAD = (LeverError, RateLimitWait)


class Key(StrEnum):
    """Every cache key; callers never build key strings."""

    POSTINGS = "postings"
    QUESTIONS = "questions:{}"

    def of(self, *args: str) -> str:
        return self.value.format(*args)


class CatalogUnavailable(Exception):
    """No copy is cached and Lever cannot be reached: the candidate sees 'jobs are briefly unavailable'."""


class PostingNotFound(LookupError):
    """No published posting with that id."""


@dataclass(frozen=True)
class Snapshot:
    """A cached resource: its data, when it was fetched (epoch s) and a version that changes with its content."""

    data: Any
    fetched_at: float
    version: str

    @property
    def age_s(self) -> float:
        return max(0.0, time.time() - self.fetched_at)

    def find(self, posting_id: str) -> Posting:
        """One posting of a postings snapshot (PostingNotFound if it is not published)."""
        p: Posting
        for p in self.data:
            if p["id"] == posting_id:
                return p
        raise PostingNotFound(posting_id)


@dataclass
class Stats:
    """Per-process counters, flushed to the shared metrics."""

    hits: int = 0
    misses: int = 0
    stale: int = 0
    refreshes: int = 0
    errors: int = 0


def _open_cache(directory: Path) -> diskcache.Cache:
    """The postings cache in `directory`, or, when that disk refuses it (full: opening a cache writes its settings),
    in a private temporary directory of this process: a web process started on a full disk (gunicorn replacing a
    killed worker) must still show jobs and take applications, not answer 500 (the nemesis found it). It is a cache,
    so one this process alone sees is allowed; the next process started on a disk with room shares the real one.
    CatalogUnavailable when neither can be opened."""
    # Values up to 4 MB stay inline in SQLite: 6x faster writes and 3x faster reads than separate files.
    options = dict(disk_min_file_size=4 * 2**20, size_limit=2**30, eviction_policy="least-recently-stored")
    try:
        return diskcache.Cache(str(directory), **options)
    except (sqlite3.OperationalError, OSError) as e:
        log.warning("the postings cache cannot be opened in the data dir (%s): using a temporary one", e)
    try:
        fallback = tempfile.mkdtemp(prefix="jobsite-catalog-")
        atexit.register(shutil.rmtree, fallback, True)
        return diskcache.Cache(fallback, **options)
    except (sqlite3.OperationalError, OSError) as e:
        raise CatalogUnavailable(f"no disk will hold the postings cache ({e})") from None


class Catalog:
    """Postings and forms read through the cache; `r` only receives the site-wide cache statistics."""

    def __init__(self, directory: Path, *, lever: LeverClient, r: redis.Redis, fresh_s: float, keep_s: float):
        self.lever = lever
        self.r = r
        self.fresh_s = fresh_s
        self.keep_s = keep_s
        self.cache = _open_cache(directory)
        self.stats = Stats()
        self._parsed: dict[str, Snapshot] = {}  # process-local: the parsed data of the version last read
        self._flushed_at = 0.0
        self._memo: dict[str, tuple[float, dict[str, Any] | None]] = {}

    # Public getters

    def postings(self) -> Snapshot:
        """The published postings on the public job site, newest first."""
        return self._get(Key.POSTINGS.of(), self._fetch_postings)

    def postings_version(self) -> str | None:
        """The version of the postings this process holds parsed, or None: never waits for Lever nor parses, and
        refreshes stale postings in the background as `postings` does. A page cache in front of the app keys on it."""
        self.flush_stats()
        key = Key.POSTINGS.of()
        meta = self._meta_recent(key)
        known = self._parsed.get(key)
        if meta is None or known is None or known.version != meta["version"]:
            return None  # the page's own read then fetches or parses them
        self._note_age(key, time.time() - meta["fetched_at"], self._fetch_postings)
        return known.version

    def posting(self, posting_id: str) -> Posting:
        """One published posting, from the list (so a posting gone from Lever is gone here at the next refresh)."""
        return self.postings().find(posting_id)

    def questions(self, posting: Posting) -> Snapshot:
        """The application form of a published posting (as found in `postings()`)."""
        posting_id = posting["id"]
        return self._get(Key.QUESTIONS.of(posting_id), lambda: self.lever.get_application_questions(posting_id))

    def refresh_postings(self) -> Snapshot:
        """Fetch the postings now (recruiters' "refresh"), waiting for a fetch already under way."""
        return self._fetch_collapsed(Key.POSTINGS.of(), self._fetch_postings, force=True)

    def info(self) -> dict[str, Any]:
        """Age of the postings entry and the site-wide hit rate, for recruiters."""
        meta = self._meta(Key.POSTINGS.of())
        counts = metrics.counter_values(self.r, "jobsite_cache_requests_total", "result")
        total = sum(counts.values())
        return {
            "postings_age_s": round(time.time() - meta["fetched_at"], 1) if meta else None,
            "hit_rate": f"{(counts.get('hit', 0) + counts.get('stale', 0)) / total:.1%}" if total else "—",
            "counts": counts,
        }

    def flush_stats(self, every_s: float = 5.0, background: bool = True) -> None:
        """Add this process's counters to the shared metrics, at most every `every_s` (cheap on the hot path).
        In the background by default: a slow or unreachable Redis must not slow pages down."""
        now = time.monotonic()
        if now - self._flushed_at < every_s:
            return
        self._flushed_at = now
        stats, self.stats = self.stats, Stats()
        if stats == Stats():
            return
        if background:
            threading.Thread(target=self._send_stats, args=(stats,), daemon=True).start()
        else:
            self._send_stats(stats)

    def _send_stats(self, stats: Stats) -> None:
        r = self.r
        for result, n in (("hit", stats.hits), ("miss", stats.misses), ("stale", stats.stale)):
            if n:
                metrics.incr(r, "jobsite_cache_requests_total", n, result=result)
        if stats.refreshes:
            metrics.incr(r, "jobsite_cache_refreshes_total", stats.refreshes)
        if stats.errors:
            metrics.incr(r, "jobsite_cache_refresh_errors_total", stats.errors)

    # Mechanics

    def _meta(self, key: str) -> dict[str, Any] | None:
        raw = self.cache.get(key + ":meta")
        return json.loads(raw) if raw else None

    def _meta_recent(self, key: str) -> dict[str, Any] | None:
        """`_meta`, remembered for META_MEMO_S: the hot path then skips SQLite, and a refresh stored by another
        process is seen at most that much later."""
        now = time.monotonic()
        memo = self._memo.get(key)
        if memo and now - memo[0] < META_MEMO_S:
            return memo[1]
        meta = self._meta(key)
        self._memo[key] = (now, meta)
        return meta

    def _read(self, key: str, meta: dict[str, Any]) -> Snapshot | None:
        known = self._parsed.get(key)
        if known and known.version == meta["version"]:
            return Snapshot(known.data, meta["fetched_at"], known.version)
        raw = self.cache.get(key + ":data")
        if raw is None:
            return None
        snap = Snapshot(json.loads(raw), meta["fetched_at"], meta["version"])
        self._parsed[key] = snap
        return snap

    def _get(self, key: str, fetch: Callable[[], Any]) -> Snapshot:
        self.flush_stats()
        meta = self._meta_recent(key)
        snap = self._read(key, meta) if meta else None
        if snap is None:
            self.stats.misses += 1
            return self._fetch_collapsed(key, fetch)
        self._note_age(key, snap.age_s, fetch)
        return snap

    def _note_age(self, key: str, age_s: float, fetch: Callable[[], Any]) -> None:
        """Count a read as a hit or a stale one, and refresh a stale entry in the background."""
        if age_s <= self.fresh_s:
            self.stats.hits += 1
        else:
            self.stats.stale += 1
            self._refresh_in_background(key, fetch)

    def _lock(self, key: str) -> str | None:
        token = uuid.uuid4().hex
        try:
            return token if self.cache.add(key + ":lock", token, expire=LOCK_S) else None
        except CACHE_WRITE_ERRORS as e:
            log.warning("catalog: the cache cannot be written (%s); fetching %s without it", e, key.split(":")[0])
            return NO_LOCK

    def _unlock(self, key: str, token: str) -> None:
        """Release our lock only: check and delete in one SQLite transaction, so a lock another process took after
        ours expired is never deleted. (diskcache.Lock's release deletes whatever holds the key.)"""
        if token == NO_LOCK:
            return
        with contextlib.suppress(*CACHE_WRITE_ERRORS), self.cache.transact():  # else it expires after LOCK_S
            if self.cache.get(key + ":lock") == token:
                self.cache.delete(key + ":lock")

    def _store(self, key: str, data: Any) -> Snapshot:
        text = json.dumps(data, separators=(",", ":"))
        version = hashlib.sha256(text.encode()).hexdigest()[:16]
        now = time.time()
        snap = Snapshot(data, now, version)
        try:
            self.cache.set(key + ":data", text, expire=self.keep_s)
            self.cache.set(key + ":meta", json.dumps({"fetched_at": now, "version": version}), expire=self.keep_s)
        except CACHE_WRITE_ERRORS as e:  # served as fetched, kept nowhere: the next read fetches again
            log.warning("catalog: the cache cannot be written (%s); %s served uncached", e, key.split(":")[0])
            return snap
        self.stats.refreshes += 1
        self._parsed[key] = snap
        self._memo.pop(key, None)
        if key == Key.POSTINGS.of():
            self._announce([p["id"] for p in data])
        return snap

    def _announce(self, posting_ids: list[str]) -> None:
        """Tell the job alerts which postings a fresh list holds (published.notice announces the new ones once across
        every machine), in the background: a person's page never waits on it. Missed while Redis is away, the next
        refresh announces them, since only the notice itself marks them seen."""

        def run() -> None:
            try:
                if announced := published.notice(self.r, posting_ids):
                    log.info("catalog: %d newly published posting(s) announced to the job alerts", len(announced))
            except redis.RedisError as e:
                log.warning(
                    "catalog: new postings not checked for the job alerts (%s); the next refresh will", type(e).__name__
                )

        threading.Thread(target=run, name="announce-postings", daemon=True).start()

    def _fetch(self, key: str, fetch: Callable[[], Any]) -> Snapshot:
        try:
            return self._store(key, fetch())
        except UNREAD as e:
            self.stats.errors += 1
            log.warning(
                "catalog: fetching %s from Lever failed: %s %s",
                key.split(":")[0],
                type(e).__name__,
                getattr(e, "status", None) or "",
            )
            raise

    def _fetch_collapsed(self, key: str, fetch: Callable[[], Any], force: bool = False) -> Snapshot:
        """Fetch under the lock, or wait for the process holding it and read what it stored."""
        deadline = time.monotonic() + WAIT_S
        before = self._meta(key) if force else None
        while True:
            token = self._lock(key)
            if token:
                try:
                    meta = self._meta(key)
                    if meta and not force:  # another process stored it while we waited for the lock
                        snap = self._read(key, meta)
                        if snap:
                            return snap
                    try:
                        return self._fetch(key, fetch)
                    except UNREAD as e:
                        raise CatalogUnavailable(str(e)) from None
                finally:
                    self._unlock(key, token)
            time.sleep(0.02)
            meta = self._meta(key)
            if meta and meta != before:
                snap = self._read(key, meta)
                if snap:
                    return snap
            if time.monotonic() > deadline:
                raise CatalogUnavailable(f"timed out waiting for {key}")

    def _refresh_in_background(self, key: str, fetch: Callable[[], Any]) -> None:
        token = self._lock(key)
        if token is None:
            return  # a refresh is under way, or one failed less than LOCK_S ago

        def run() -> None:
            try:
                self._fetch(key, fetch)
            except UNREAD:
                return  # keep serving the stale copy; the lock expires after LOCK_S and then we try again
            self._unlock(key, token)

        threading.Thread(target=run, name=f"refresh-{key}", daemon=True).start()

    def _fetch_postings(self) -> list[Posting]:
        postings = self.lever.list_postings(state="published", distributionChannel="public")
        return [
            public_posting(p)
            for p in postings
            if p.get("state") == "published"
            and "public" in (p.get("distributionChannels") or [])
            and p.get("confidentiality", "non-confidential") == "non-confidential"
        ]

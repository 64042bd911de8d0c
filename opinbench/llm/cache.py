"""A persistent, write-through cache of model replies (sqlite), for judges and rationales alike.

Keyed by a hash of (provider, model, endpoint, request: prompt and settings), so a
rerun, or a run resumed after a crash or Ctrl-C, never pays for a request twice.
Each reply is committed the moment it arrives (autocommit, WAL journal): what is
on disk is exactly what was paid for, even if the process is killed mid-run.

Only successful replies are stored (with their metadata: stop reason, refusal,
token usage). Failures (after retries) are not, so a rerun tries them again. API
keys are never part of a key or a row: requests are built without them, and the
client adds the key to the HTTP headers only.

**Several processes at once** (two judge runs over the same samples, a judge and
STaR rationales) share one file safely:

* a reply is never overwritten: ``INSERT ... ON CONFLICT DO NOTHING``, the first
  reply stored for a key is the one every run reads;
* before sending, a run *claims* the key (`claim`, in one ``BEGIN IMMEDIATE``
  transaction that also checks for a stored reply). A key claimed by another live
  run is not sent again: the runner waits for that run's reply (or for the claim
  to go). A claim names its owner (host, pid, a token per cache object) and
  expires ``claim_ttl`` seconds after its last refresh (the runner refreshes its
  claims while it runs), so a killed run's claims lapse; on the same host a claim
  of a process that no longer exists lapses at once;
* sqlite's busy timeout (``BUSY_TIMEOUT_S``) makes writers queue instead of
  failing, and opening (switching to WAL, creating the tables), which sqlite does
  not always cover by the busy timeout, is retried on "database is locked".

The default file is ``<cache root>/judge_cache.sqlite`` (``$OPINBENCH_CACHE``,
else ``~/.cache/opinbench``, as for the packaged models). The file keeps its old
name so that replies already paid for (by judges and STaR rationales) stay found;
an older file gains the ``meta`` column and the ``claims`` table when opened.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

SCHEMA_VERSION = 1
BUSY_TIMEOUT_S = 60.0  # how long a writer waits for another process's write lock
OPEN_RETRY_S = 60.0  # how long opening retries "database is locked"

log = logging.getLogger(__name__)
T = TypeVar("T")


def default_cache_path() -> Path:
    from opinbench.models import cache_root

    return cache_root() / "judge_cache.sqlite"


def canonical_json(obj: Any) -> str:
    """Stable JSON (sorted keys, no spaces): equal requests give equal text."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def request_key(identity: dict[str, Any], request: dict[str, Any]) -> str:
    """The cache key of ``request`` sent to the endpoint ``identity`` describes.

    ``identity`` names provider, model and endpoint (base URL); ``request`` holds
    the prompt or text and every setting that can change the reply.
    """
    return hashlib.sha256(
        canonical_json({"v": SCHEMA_VERSION, "to": identity, "request": request}).encode()
    ).hexdigest()


def _locked(err: sqlite3.OperationalError) -> bool:
    msg = str(err).lower()
    return "locked" in msg or "busy" in msg


def _retry_locked(step: Callable[[], T], what: str, patience: float = OPEN_RETRY_S) -> T:
    """Run ``step``, again after a short random wait while sqlite says the file is locked."""
    deadline = time.monotonic() + patience
    delay = 0.01
    while True:
        try:
            return step()
        except sqlite3.OperationalError as err:
            if not _locked(err) or time.monotonic() > deadline:
                raise
            log.debug("%s: %s; retrying", what, err)
            time.sleep(delay * random.uniform(0.5, 1.5))
            delay = min(delay * 2, 0.5)


def _process_gone(host: str, pid: int) -> bool:
    """True when ``pid`` on this host no longer exists (its claims can be taken at once)."""
    if host != socket.gethostname() or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # exists, owned by someone else
        return False
    return False


@dataclass(frozen=True)
class Entry:
    """A stored reply and what was recorded beside it (`opinbench.llm.replies.Reply.meta`)."""

    reply: Any
    meta: dict[str, Any]


@dataclass(frozen=True)
class Claim:
    """The answer to `ReplyCache.claim`.

    ``state``: ``mine`` (send it), ``stored`` (already answered: ``entry``), or
    ``taken`` (another live run is sending it: ``holder`` names it).
    """

    state: str
    entry: Entry | None = None
    holder: str | None = None


class ReplyCache:
    """Thread- and process-safe sqlite store of ``key -> reply`` (any JSON value).

    Args:
        path: the database file, created with its folder if needed; ``None`` keeps
            replies in memory only (tests, ``--no-cache``).
        claim_ttl: seconds a claim lasts without a refresh.
    """

    def __init__(self, path: str | Path | None, *, claim_ttl: float = 120.0) -> None:
        self.path = None if path is None else Path(path).expanduser()
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self.claim_ttl = claim_ttl
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.owner = f"{self.host}:{self.pid}:{uuid.uuid4().hex[:8]}"
        # One connection shared by the worker threads, serialised by a lock: sqlite
        # allows one writer at a time anyway, and replies are small.
        self._conn = sqlite3.connect(
            ":memory:" if self.path is None else str(self.path),
            check_same_thread=False,
            isolation_level=None,  # autocommit: every put is durable at once
            timeout=BUSY_TIMEOUT_S,
        )
        self._lock = threading.Lock()
        self._closed = False
        with self._lock:
            _retry_locked(self._open, f"opening {self.path or 'memory cache'}")

    def _open(self) -> None:
        c = self._conn
        if self.path is not None:
            # Switching to WAL needs a moment alone with the file, and sqlite does not
            # always wait for it (busy timeout): hence the caller's retry. WAL is a
            # property of the file, so once set there is nothing to switch.
            if str(c.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
                c.execute("PRAGMA journal_mode=WAL")
        c.execute(
            "CREATE TABLE IF NOT EXISTS replies ("
            " key TEXT PRIMARY KEY, provider TEXT, model TEXT,"
            " request TEXT, reply TEXT, created REAL, meta TEXT)"
        )
        columns = {row[1] for row in c.execute("PRAGMA table_info(replies)")}
        if "meta" not in columns:  # a cache file from before replies had metadata
            try:
                c.execute("ALTER TABLE replies ADD COLUMN meta TEXT")
            except sqlite3.OperationalError as err:
                if "duplicate column" not in str(err).lower():  # another process just added it
                    raise
        c.execute(
            "CREATE TABLE IF NOT EXISTS claims ("
            " key TEXT PRIMARY KEY, owner TEXT, host TEXT, pid INTEGER, expires REAL)"
        )
        # Batch mode's sidecar (`opinbench.llm.batch_runner`): batches submitted and not yet
        # collected, so that a run killed while they are processed resumes them instead of
        # sending their requests again.
        c.execute(
            "CREATE TABLE IF NOT EXISTS batches ("
            " batch_id TEXT PRIMARY KEY, endpoint TEXT, keys TEXT, created REAL, collected REAL)"
        )

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("the reply cache is closed")

    def get(self, key: str) -> Any | None:
        """The stored reply, or None."""
        entry = self.entry(key)
        return None if entry is None else entry.reply

    def entry(self, key: str) -> Entry | None:
        """The stored reply with its metadata, or None."""
        with self._lock:
            self._check_open()
            row = self._conn.execute(
                "SELECT reply, meta FROM replies WHERE key = ?", (key,)
            ).fetchone()
        return None if row is None else Entry(json.loads(row[0]), json.loads(row[1] or "{}"))

    def claim(self, key: str) -> Claim:
        """Take ``key`` for sending, unless it is answered or another live run has it."""
        with self._lock:
            self._check_open()
            c = self._conn
            c.execute("BEGIN IMMEDIATE")  # the write lock first: check and claim as one step
            try:
                row = c.execute("SELECT reply, meta FROM replies WHERE key = ?", (key,)).fetchone()
                if row is not None:
                    c.execute("COMMIT")
                    return Claim("stored", Entry(json.loads(row[0]), json.loads(row[1] or "{}")))
                held = c.execute(
                    "SELECT owner, host, pid, expires FROM claims WHERE key = ?", (key,)
                ).fetchone()
                now = time.time()
                if (
                    held is not None
                    and held[0] != self.owner
                    and held[3] > now
                    and not _process_gone(held[1], held[2])
                ):
                    c.execute("COMMIT")
                    return Claim("taken", holder=held[0])
                c.execute(
                    "INSERT INTO claims VALUES (?, ?, ?, ?, ?) ON CONFLICT(key) DO UPDATE SET"
                    " owner = excluded.owner, host = excluded.host, pid = excluded.pid,"
                    " expires = excluded.expires",
                    (key, self.owner, self.host, self.pid, now + self.claim_ttl),
                )
                c.execute("COMMIT")
                return Claim("mine")
            except BaseException:
                c.execute("ROLLBACK")
                raise

    def release(self, key: str) -> None:
        """Give up a claim (the request failed or was skipped: another run may try it)."""
        with self._lock:
            if not self._closed:
                self._conn.execute(
                    "DELETE FROM claims WHERE key = ? AND owner = ?", (key, self.owner)
                )

    def refresh_claims(self) -> None:
        """Extend this cache object's claims by ``claim_ttl`` (the runner calls it while it runs)."""
        with self._lock:
            if not self._closed:
                self._conn.execute(
                    "UPDATE claims SET expires = ? WHERE owner = ?",
                    (time.time() + self.claim_ttl, self.owner),
                )

    def put(
        self,
        key: str,
        *,
        provider: str,
        model: str,
        request: dict[str, Any],
        reply: Any,
        meta: dict[str, Any] | None = None,
    ) -> bool:
        """Store a reply (and the request, for auditing) and commit it; release the claim.

        Returns:
            True if stored; False if a reply for ``key`` was already there (it is kept:
            a stored reply is never overwritten).

        Raises:
            RuntimeError: the cache is closed (the runner waits for requests in flight
                before it lets the cache close, so this is a bug, said loudly).
        """
        with self._lock:
            self._check_open()
            cur = self._conn.execute(
                "INSERT INTO replies VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(key) DO NOTHING",
                (
                    key,
                    provider,
                    model,
                    canonical_json(request),
                    canonical_json(reply),
                    time.time(),
                    canonical_json(meta or {}),
                ),
            )
            self._conn.execute("DELETE FROM claims WHERE key = ? AND owner = ?", (key, self.owner))
            return cur.rowcount == 1

    def add_batch(self, batch_id: str, endpoint: str, keys: list[str]) -> None:
        """Record a batch just submitted to ``endpoint`` (a provider's identity) with its keys."""
        with self._lock:
            self._check_open()
            self._conn.execute(
                "INSERT OR IGNORE INTO batches VALUES (?, ?, ?, ?, NULL)",
                (batch_id, endpoint, canonical_json(keys), time.time()),
            )

    def open_batches(self, endpoint: str) -> dict[str, list[str]]:
        """``{batch id: keys}`` of the batches sent to ``endpoint`` whose results are not collected."""
        with self._lock:
            self._check_open()
            rows = self._conn.execute(
                "SELECT batch_id, keys FROM batches WHERE endpoint = ? AND collected IS NULL"
                " ORDER BY created",
                (endpoint,),
            ).fetchall()
        return {b: json.loads(k) for b, k in rows}

    def batch_collected(self, batch_id: str) -> None:
        """Mark a batch's results as read (each result is stored by `put` before this)."""
        with self._lock:
            self._check_open()
            self._conn.execute(
                "UPDATE batches SET collected = ? WHERE batch_id = ?", (time.time(), batch_id)
            )

    def __bool__(self) -> bool:
        # An empty cache is still a cache (`cache or default` must not replace it).
        return True

    def __len__(self) -> int:
        with self._lock:
            self._check_open()
            return int(self._conn.execute("SELECT COUNT(*) FROM replies").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                try:
                    self._conn.execute("DELETE FROM claims WHERE owner = ?", (self.owner,))
                except sqlite3.Error as err:  # the claims lapse on their own
                    log.debug("could not release claims: %s", err)
                self._conn.close()

    def __enter__(self) -> ReplyCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

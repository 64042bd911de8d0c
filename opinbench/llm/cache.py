"""A persistent, write-through cache of model replies (sqlite), for judges and rationales alike.

Keyed by a hash of (provider, model, endpoint, request: prompt and settings), so a
rerun, or a run resumed after a crash or Ctrl-C, never pays for a request twice.
Each reply is committed the moment it arrives (autocommit, WAL journal): what is
on disk is exactly what was paid for, even if the process is killed mid-run.

Only successful replies are stored. Failures (after retries) are not, so a rerun
tries them again. API keys are never part of a key or a row: requests are built
without them, and the client adds the key to the HTTP headers only.

The default file is ``<cache root>/judge_cache.sqlite`` (``$OPINBENCH_CACHE``,
else ``~/.cache/opinbench``, as for the packaged models); several processes may
share it (sqlite's locking, with a busy timeout). The file keeps its old name so
that replies already paid for (by judges and STaR rationales) stay found.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1


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


class ReplyCache:
    """Thread-safe sqlite store of ``key -> reply`` (any JSON value).

    Args:
        path: the database file, created with its folder if needed; ``None`` keeps
            replies in memory only (tests, ``--no-cache``).
    """

    def __init__(self, path: str | Path | None) -> None:
        self.path = None if path is None else Path(path).expanduser()
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        # One connection shared by the worker threads, serialised by a lock: sqlite
        # allows one writer at a time anyway, and replies are small.
        self._conn = sqlite3.connect(
            ":memory:" if self.path is None else str(self.path),
            check_same_thread=False,
            isolation_level=None,  # autocommit: every put is durable at once
            timeout=30,
        )
        self._lock = threading.Lock()
        self._closed = False
        with self._lock:
            if self.path is not None:
                self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS replies ("
                " key TEXT PRIMARY KEY, provider TEXT, model TEXT,"
                " request TEXT, reply TEXT, created REAL)"
            )

    def get(self, key: str) -> Any | None:
        """The stored reply, or None."""
        with self._lock:
            row = self._conn.execute("SELECT reply FROM replies WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def put(
        self, key: str, *, provider: str, model: str, request: dict[str, Any], reply: Any
    ) -> None:
        """Store a reply (and the request, for auditing) and commit it."""
        with self._lock:
            if self._closed:
                # A worker finishing after an interrupt closed the cache: nothing to do.
                return
            self._conn.execute(
                "INSERT OR REPLACE INTO replies VALUES (?, ?, ?, ?, ?, ?)",
                (key, provider, model, canonical_json(request), canonical_json(reply), time.time()),
            )

    def __bool__(self) -> bool:
        # An empty cache is still a cache (`cache or default` must not replace it).
        return True

    def __len__(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM replies").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._conn.close()

    def __enter__(self) -> ReplyCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

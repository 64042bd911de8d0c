"""Leaderboard stores for tests: a fresh SQLite file, or a fresh schema on the project's real
PostgreSQL server (127.0.0.1:5432, database ``test``, trust auth), dropped afterwards.

``OPINBENCH_TEST_PG_URL`` overrides the server; the PostgreSQL case skips, with the reason,
when the server cannot be reached.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

PG_URL = os.environ.get("OPINBENCH_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
BACKENDS = ("sqlite", "postgresql")


def pg_unreachable() -> str | None:
    """Why the PostgreSQL server cannot be used, or None."""
    try:
        import psycopg
    except ImportError:
        return "psycopg (psycopg 3) is not installed: pip install 'psycopg[binary]'"
    try:
        with psycopg.connect(PG_URL, connect_timeout=3):
            return None
    except Exception as err:  # noqa: BLE001 - any failure means: skip with the reason
        return f"PostgreSQL at {PG_URL} is unreachable: {err}"


@contextmanager
def store_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """A URL of an empty store of ``backend``; a PostgreSQL schema made and dropped around it."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'leaderboard.sqlite'}"
        return
    import psycopg

    schema = f"opinbench_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        sep = "&" if "?" in PG_URL else "?"
        yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(params=BACKENDS)
def url(request, tmp_path):
    """A store URL for each backend (a test module imports this fixture by name)."""
    if request.param == "postgresql":
        why = pg_unreachable()
        if why:
            pytest.skip(why)
    with store_url(request.param, tmp_path) as u:
        yield u

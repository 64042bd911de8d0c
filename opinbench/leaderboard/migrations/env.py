"""Alembic environment of the leaderboard store.

`opinbench.leaderboard.store.upgrade` runs it with an open connection in
``config.attributes["connection"]``; the ``alembic`` command line (``-x url=...``) works too.
Upgrades are serialised: PostgreSQL by a transaction-scoped advisory lock, SQLite by the
store's ``BEGIN IMMEDIATE``, so that several workers starting at once migrate once.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, text

from opinbench.leaderboard.tables import metadata

MIGRATION_LOCK = 7_041_977  # any constant: the advisory-lock key of opinbench's migrations


def _run(connection) -> None:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK})
        context.run_migrations()


def main() -> None:
    config = context.config
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
    with create_engine(url).connect() as conn:
        _run(conn)


# Alembic runs this file; anything else that imports it (pytest's --doctest-modules imports every
# module of the package) finds no migration context and must not start one.
try:
    context.config
except AttributeError:
    pass
else:
    main()

"""The store's tables as SQLAlchemy Core objects (what the queries use).

The schema itself is made by the Alembic migrations in ``migrations/versions/``;
`tests/test_leaderboard_store.py` checks that these tables and the migrated schema
agree (``alembic.autogenerate.compare_metadata`` finds no difference).

* ``requests``: one row per submission, the queue and the entries at once. ``state`` is
  PENDING -> RUNNING -> FINISHED | FAILED; ``attempts`` counts claims and is the fencing
  token of the worker that holds the lease (``lease_expires``, epoch seconds);
  ``identity_key`` is unique: the identity hash for a first entry, ``<hash>#rerun-<n>``
  for a deliberate rerun, so a concurrent duplicate cannot slip in.
* ``blobs``: file contents by sha256 (zlib-compressed), shared by every entry that stored them.
* ``files``: which blob is which file (path relative to the run folder) of a request.
* ``boards``: the registered definitions (name, version, sha256 digest, the parsed YAML), the only
  ones an entry can be submitted to and scored with; each entry's ``definition_digest`` names the
  one it was scored with. ``job`` is ``evaluate`` (a worker runs the definition) or ``audit`` (a
  worker re-runs a seeded sample of a self-reported run's documents: ``audit_seed``, drawn at
  submit time, ``audit`` the outcome). ``display_name`` is the public name (never a local path).
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

requests = sa.Table(
    "requests", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("leaderboard", sa.String(100), nullable=False),
    sa.Column("leaderboard_version", sa.Integer, nullable=False),
    sa.Column("identity_hash", sa.String(64), nullable=False, index=True),
    sa.Column("identity_key", sa.String(100), nullable=False, unique=True),
    sa.Column("identity", sa.JSON, nullable=False),
    sa.Column("model", sa.Text, nullable=False),
    sa.Column("revision", sa.Text),
    sa.Column("weights_hash", sa.String(80)),
    sa.Column("adapter", sa.Text),
    sa.Column("adapter_hash", sa.String(80)),
    sa.Column("dtype", sa.String(20), nullable=False),
    sa.Column("chat_template", sa.Boolean, nullable=False),
    sa.Column("submitter", sa.Text),
    sa.Column("self_reported", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("rerun_of", sa.Integer, sa.ForeignKey("requests.id")),
    sa.Column("state", sa.String(10), nullable=False, index=True),
    sa.Column("reason", sa.Text),
    sa.Column("log_tail", sa.Text),
    sa.Column("worker", sa.Text),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("lease_expires", sa.Float),
    sa.Column("created", sa.Float, nullable=False),
    sa.Column("started", sa.Float),
    sa.Column("finished", sa.Float),
    sa.Column("settings", sa.JSON),
    sa.Column("result", sa.JSON),
    sa.Column("definition_digest", sa.String(64)),
    sa.Column("display_name", sa.Text),
    sa.Column("job", sa.String(10), nullable=False, server_default="evaluate"),
    sa.Column("audit_seed", sa.BigInteger),
    sa.Column("audit", sa.JSON),
    sa.Index("ix_requests_queue", "state", "created", "id"),
)

boards = sa.Table(
    "boards", metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("definition", sa.JSON, nullable=False),
    sa.Column("source", sa.Text),
    sa.Column("created", sa.Float, nullable=False),
)

blobs = sa.Table(
    "blobs", metadata,
    sa.Column("sha256", sa.String(64), primary_key=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("data", sa.LargeBinary, nullable=False),
)

files = sa.Table(
    "files", metadata,
    sa.Column("request_id", sa.Integer, sa.ForeignKey("requests.id"), primary_key=True),
    sa.Column("path", sa.Text, primary_key=True),
    sa.Column("sha256", sa.String(64), sa.ForeignKey("blobs.sha256"), nullable=False),
)

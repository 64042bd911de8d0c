"""The leaderboard store: the request queue, the entries and their lm-eval files, in one database.

An embedded SQLite file by default (`default_url`: ``$OPINBENCH_LEADERBOARD_URL``, else
``leaderboard.sqlite`` in the user's data folder), PostgreSQL by URL for a shared
deployment (``postgresql://...``; psycopg 3 is the driver). Tables: `opinbench.leaderboard.tables`;
schema made and upgraded by Alembic (`upgrade`, run by `Store.open`).

Queue rules:

* `Store.submit` inserts a PENDING request; an exact duplicate of an entry's identity is
  refused (`DuplicateEntry`, naming the existing request) unless ``rerun``, which adds
  ``<hash>#rerun-<n>``; the unique ``identity_key`` makes the refusal race-free.
* `Store.claim` takes the oldest PENDING request, or a RUNNING one whose lease expired (its
  worker died), atomically: SQLite in a ``BEGIN IMMEDIATE`` transaction (one writer at a
  time), PostgreSQL with ``SELECT ... FOR UPDATE SKIP LOCKED``. A request whose lease expired
  ``max_attempts`` times is FAILED with that reason instead of being claimed again.
* Each claim increments ``attempts``: the returned `Claim` carries it as a fencing token,
  and `Store.heartbeat` / `Store.finish` / `Store.fail` only act while the token still
  holds the lease, so a worker that was taken over cannot overwrite its successor.
* Files and state change only under the lease, in the transaction that checks it: `Store.finish`
  and `Store.fail` take the run folder and replace the request's files in the same transaction
  whose fenced UPDATE (``attempts`` = the claim's token, row-locked on PostgreSQL, the write lock on
  SQLite) proves the lease is still held; a worker taken over stores nothing.
* FAILED requests keep their reason and log tail and stay listed.
* Definitions are registered (`Store.define`): a name and version is bound to one digest for
  good; entries are submitted to a registered board and store the digest they were scored with.
  A shipped definition (``leaderboards/<name>.yaml``) is registered on first use of its name.
* A self-reported run is ingested atomically (`Store.ingest`: row, files and validation report in
  one transaction) as a PENDING ``audit`` job with a random ``audit_seed``: a worker re-runs a
  sample of its documents drawn from that seed and the entry id.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import socket
import time
import uuid
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from opinbench.errors import ConfigError
from opinbench.leaderboard.tables import blobs, boards, files, requests
from opinbench.leaderboard.types import Entry

if TYPE_CHECKING:
    from opinbench.leaderboard.definition import Definition

PENDING, RUNNING, FINISHED, FAILED = "PENDING", "RUNNING", "FINISHED", "FAILED"
STATES = (PENDING, RUNNING, FINISHED, FAILED)
URL_ENV = "OPINBENCH_LEADERBOARD_URL"
MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class DefinitionConflict(ConfigError):
    """A definition claims a registered name and version with another digest."""


class DuplicateEntry(ConfigError):
    """An exact duplicate of an existing entry's identity (see `identity_hash`)."""

    def __init__(self, existing: dict[str, Any]):
        self.existing = existing
        super().__init__(
            f"an identical entry exists already: request {existing['id']} ({existing['model']}, "
            f"state {existing['state']}); submit with --rerun to add a deliberate rerun"
        )


def data_dir() -> Path:
    """The user's data folder for opinbench: platformdirs' if it is installed, else the XDG default."""
    try:
        import platformdirs
    except ImportError:  # platformdirs is optional: fall back to what it returns on Linux
        base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
        return Path(base) / "opinbench"
    return Path(platformdirs.user_data_dir("opinbench", appauthor=False))


def default_url() -> str:
    return os.environ.get(URL_ENV) or f"sqlite:///{data_dir() / 'leaderboard.sqlite'}"


def normalise_url(url: str) -> str:
    """A URL or a file path -> an SQLAlchemy URL; ``postgresql://`` uses psycopg 3.

    >>> normalise_url("postgresql://u@h/db")
    'postgresql+psycopg://u@h/db'
    >>> normalise_url("/tmp/x.sqlite")
    'sqlite:////tmp/x.sqlite'
    """
    if "://" not in url:
        return f"sqlite:///{Path(url).expanduser().resolve()}"
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def identity_hash(identity: dict[str, Any]) -> str:
    """sha256 of an entry's identity (model, revision or weights hash, adapter hash, dtype,
    chat template, leaderboard and version) as canonical JSON."""
    import json

    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()


def make_engine(url: str) -> Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        path = sa.engine.make_url(url).database
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": 60})

        # pysqlite's own transaction handling defers BEGIN; take it over so that every
        # transaction is BEGIN IMMEDIATE (the write lock up front: claims cannot interleave).
        @event.listens_for(engine, "connect")
        def _connect(dbapi_conn, _record):  # pragma: no cover - exercised by every SQLite test
            dbapi_conn.isolation_level = None
            dbapi_conn.execute("PRAGMA foreign_keys=ON")
            dbapi_conn.execute("PRAGMA busy_timeout=60000")

        @event.listens_for(engine, "begin")
        def _begin(conn):  # pragma: no cover
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return sa.create_engine(url, pool_pre_ping=True)


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision`` with Alembic (idempotent)."""
    alembic_log = logging.getLogger("alembic")
    level = alembic_log.level
    alembic_log.setLevel(logging.WARNING)  # its INFO lines on every open are noise to a CLI user
    try:
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
    finally:
        alembic_log.setLevel(level)


def _row(r: Any) -> dict[str, Any] | None:
    return None if r is None else dict(r._mapping)


@dataclass(frozen=True)
class Claim:
    """A request held by one worker: ``attempt`` is the fencing token of its lease."""

    request: Entry
    worker: str
    attempt: int

    @property
    def id(self) -> int:
        return int(self.request["id"])


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Store:
    """One leaderboard database. ``Store.open(url)`` connects and migrates."""

    def __init__(self, engine: Engine):
        self.engine = engine

    @classmethod
    def open(cls, url: str | None = None, *, migrate: bool = True) -> Store:
        store = cls(make_engine(url or default_url()))
        if migrate:
            upgrade(store.engine)
        return store

    @property
    def url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        with self.engine.begin() as conn:
            yield conn

    # ------------------------------------------------------------------ submitting

    def find_identity(self, ident_hash: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(requests).where(requests.c.identity_hash == ident_hash)
                                .order_by(requests.c.id)).all()
        return [_row(r) for r in rows]

    def submit(self, fields: dict[str, Any], *, rerun: bool = False, state: str = PENDING,
               folder: str | Path | None = None) -> int:
        """Insert a request; returns its id. ``fields``: the ``requests`` columns (``identity``
        required; ``identity_hash``/``identity_key`` are derived here).

        Raises:
            DuplicateEntry: the identity exists already and ``rerun`` is false.
        """
        ident = identity_hash(fields["identity"])
        values = dict(fields, identity_hash=ident, state=state, created=fields.get("created") or time.time())
        for _ in range(100):  # a concurrent rerun may take the same number: try the next
            existing = self.find_identity(ident)
            if existing and not rerun:
                raise DuplicateEntry(existing[0])
            values["identity_key"] = ident if not existing else f"{ident}#rerun-{len(existing)}"
            values["rerun_of"] = existing[0]["id"] if existing else None
            try:
                with self._tx() as conn:
                    rid = int(conn.execute(sa.insert(requests).values(**values)).inserted_primary_key[0])
                    if folder is not None:
                        self._put_files(conn, rid, folder)
                    return rid
            except sa.exc.IntegrityError:
                continue
        raise RuntimeError("could not find a free rerun number")  # pragma: no cover

    # ------------------------------------------------------------------ the queue

    def claim(self, worker: str, *, lease_s: float = 600.0, max_attempts: int = 3,
              now: float | None = None) -> Claim | None:
        """The oldest PENDING request (or RUNNING with an expired lease), now RUNNING under
        ``worker``'s lease; None when there is nothing to do."""
        now = time.time() if now is None else now
        expired = sa.and_(requests.c.state == RUNNING, requests.c.lease_expires < now)
        with self._tx() as conn:
            # Requests whose workers died too often: failed, with the reason, never silently retried.
            conn.execute(
                sa.update(requests).where(expired, requests.c.attempts >= max_attempts).values(
                    state=FAILED, finished=now, lease_expires=None,
                    reason=sa.literal(f"the lease expired {max_attempts} times (each worker stopped "
                                      "without finishing); last worker: ") + sa.func.coalesce(requests.c.worker, ""),
                )
            )
            query = (sa.select(requests.c.id, requests.c.attempts)
                     .where(sa.or_(requests.c.state == PENDING, expired))
                     .order_by(requests.c.created, requests.c.id).limit(1))
            if conn.dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            found = conn.execute(query).first()
            if found is None:
                return None
            attempt = int(found.attempts) + 1
            done = conn.execute(
                sa.update(requests)
                .where(requests.c.id == found.id, requests.c.attempts == found.attempts)
                .values(state=RUNNING, worker=worker, attempts=attempt, lease_expires=now + lease_s, started=now)
            )
            if done.rowcount != 1:  # pragma: no cover - both locks above make this impossible
                return None
            row = _row(conn.execute(sa.select(requests).where(requests.c.id == found.id)).first())
        return Claim(row, worker, attempt)

    def _holding(self, claim: Claim):
        return sa.and_(requests.c.id == claim.id, requests.c.state == RUNNING,
                       requests.c.worker == claim.worker, requests.c.attempts == claim.attempt)

    def heartbeat(self, claim: Claim, *, lease_s: float = 600.0) -> bool:
        """Extend the lease; False if the claim was lost (taken over after expiring)."""
        with self._tx() as conn:
            return conn.execute(sa.update(requests).where(self._holding(claim))
                                .values(lease_expires=time.time() + lease_s)).rowcount == 1

    def _fenced(self, conn: Connection, claim: Claim, values: dict[str, Any], folder: str | Path | None) -> bool:
        """The fenced UPDATE first (it locks the row), then the files, in the caller's transaction:
        a worker whose lease was taken over changes nothing."""
        if conn.execute(sa.update(requests).where(self._holding(claim)).values(**values)).rowcount != 1:
            return False
        if folder is not None:
            conn.execute(sa.delete(files).where(files.c.request_id == claim.id))
            self._put_files(conn, claim.id, folder)
        return True

    def finish(self, claim: Claim, result: dict[str, Any], *, log_tail: str | None = None,
               folder: str | Path | None = None, audit: dict[str, Any] | None = None) -> bool:
        """FINISHED with ``result`` (and the run ``folder``'s files, replacing any stored before), only
        while ``claim`` holds the lease; False (nothing written) when it was lost."""
        values = dict(state=FINISHED, result=result, finished=time.time(), lease_expires=None, log_tail=log_tail)
        if audit is not None:
            values["audit"] = audit
        with self._tx() as conn:
            return self._fenced(conn, claim, values, folder)

    def fail(self, claim: Claim, reason: str, *, log_tail: str | None = None,
             result: dict[str, Any] | None = None, folder: str | Path | None = None,
             audit: dict[str, Any] | None = None) -> bool:
        values = dict(state=FAILED, reason=reason, log_tail=log_tail, result=result, finished=time.time(),
                      lease_expires=None)
        if audit is not None:
            values["audit"] = audit
        with self._tx() as conn:
            return self._fenced(conn, claim, values, folder)

    def ingest(self, fields: dict[str, Any], result: dict[str, Any], folder: str | Path, *,
               rerun: bool = False) -> int:
        """A validated self-reported run, in one transaction: the row (a PENDING ``audit`` job with a
        fresh ``audit_seed``), its files and its report; a crash leaves nothing behind."""
        return self.submit(dict(fields, result=result, job="audit", audit_seed=secrets.randbits(62)),
                           rerun=rerun, folder=folder)

    # ------------------------------------------------------------------ definitions

    def define(self, definition: Definition) -> bool:
        """Register ``definition`` under its name and version; True if new, False if registered
        already with the same digest.

        Raises:
            DefinitionConflict: that name and version is registered with another digest.
        """
        values = dict(name=definition.name, version=definition.version, digest=definition.digest,
                      definition=definition.raw, source=definition.source, created=time.time())
        for _ in range(2):
            known = self._board_row(definition.name, definition.version)
            if known is not None:
                if known["digest"] != definition.digest:
                    raise DefinitionConflict(
                        f"{definition.source or definition.name}: leaderboard {definition.name} version "
                        f"{definition.version} is registered with digest {known['digest'][:12]}, this file has "
                        f"{definition.digest[:12]}; a changed definition needs a new version")
                return False
            try:
                with self._tx() as conn:
                    conn.execute(sa.insert(boards).values(**values))
                return True
            except sa.exc.IntegrityError:  # registered concurrently: compare with that one
                continue
        raise RuntimeError("could not register the definition")  # pragma: no cover

    def _board_row(self, name: str, version: int | None = None) -> dict[str, Any] | None:
        q = sa.select(boards).where(boards.c.name == name).order_by(boards.c.version.desc()).limit(1)
        if version is not None:
            q = q.where(boards.c.version == version)
        with self.engine.connect() as conn:
            return _row(conn.execute(q).first())

    def board(self, name: str, version: int | None = None) -> Definition:
        """The registered definition ``name`` (its newest version, or ``version``). A name nobody
        registered yet that is a shipped definition (``leaderboards/<name>.yaml``) is registered
        now; a path or an unknown name is refused."""
        from opinbench.leaderboard.definition import load_definition, parse_definition, shipped_names

        row = self._board_row(name, version)
        if row is None and self._board_row(name) is None and name in shipped_names():
            self.define(load_definition(name))
            row = self._board_row(name, version)
        if row is None:
            known = sorted(set(self.board_names()) | set(shipped_names()))
            what = f"{name} version {version}" if version is not None else name
            hint = (" (a definition file is registered by an admin: opinbench leaderboard define FILE)"
                    if name.endswith((".yaml", ".yml")) else "")
            raise ConfigError(f"no registered leaderboard {what}{hint}; known: {', '.join(known)}")
        definition = parse_definition(row["definition"], f"{self.url}: leaderboard {row['name']} v{row['version']}")
        if definition.digest != row["digest"]:  # pragma: no cover - the stored JSON was edited
            raise ConfigError(f"leaderboard {name} v{row['version']}: the stored definition does not match its digest")
        return definition

    def board_names(self) -> list[str]:
        with self.engine.connect() as conn:
            return sorted({r.name for r in conn.execute(sa.select(boards.c.name)).all()})

    # ------------------------------------------------------------------ reading

    def get(self, request_id: int) -> Entry:
        with self.engine.connect() as conn:
            row = _row(conn.execute(sa.select(requests).where(requests.c.id == request_id)).first())
        if row is None:
            raise ConfigError(f"no request {request_id} in {self.url}")
        return row

    def list(self, leaderboard: str | None = None, state: str | None = None) -> list[Entry]:
        q = sa.select(requests).order_by(requests.c.id)
        if leaderboard:
            q = q.where(requests.c.leaderboard == leaderboard)
        if state:
            q = q.where(requests.c.state == state)
        with self.engine.connect() as conn:
            return [_row(r) for r in conn.execute(q).all()]

    # ------------------------------------------------------------------ files

    @staticmethod
    def _put_files(conn: Connection, request_id: int, folder: str | Path) -> dict[str, str]:
        """Store every file under ``folder`` (content-addressed) in the caller's transaction;
        returns ``{relative path: sha256}``."""
        folder = Path(folder)
        out: dict[str, str] = {}
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            data = path.read_bytes()
            digest = hashlib.sha256(data).hexdigest()
            rel = path.relative_to(folder).as_posix()
            if conn.execute(sa.select(blobs.c.sha256).where(blobs.c.sha256 == digest)).first() is None:
                conn.execute(sa.insert(blobs).values(sha256=digest, size=len(data), data=zlib.compress(data)))
            conn.execute(sa.delete(files).where(files.c.request_id == request_id, files.c.path == rel))
            conn.execute(sa.insert(files).values(request_id=request_id, path=rel, sha256=digest))
            out[rel] = digest
        return out

    def file_list(self, request_id: int) -> dict[str, str]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(files.c.path, files.c.sha256).where(files.c.request_id == request_id)
                                .order_by(files.c.path)).all()
        return {r.path: r.sha256 for r in rows}

    def export_files(self, request_id: int, dest: str | Path) -> Path:
        """Write a request's stored files under ``dest`` (as they were) and return ``dest``."""
        dest = Path(dest)
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(files.c.path, blobs.c.data).join(blobs, files.c.sha256 == blobs.c.sha256)
                                .where(files.c.request_id == request_id)).all()
        for r in rows:
            target = dest / r.path
            if ".." in Path(r.path).parts or Path(r.path).is_absolute():
                raise ConfigError(f"request {request_id}: stored path {r.path!r} leaves its folder")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(zlib.decompress(r.data))
        return dest


"""The database: one SQLAlchemy engine, configured the same way for every entry point."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from orchestrator.errors import StoreError
from orchestrator.store import migrate

logger = logging.getLogger(__name__)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    # WAL lets readers (the CLI, the API) read while ingest writes; busy_timeout makes
    # writers wait for each other instead of failing at once.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def create_engine(url: str) -> sa.Engine:
    """An engine for ``url`` (SQLite or PostgreSQL) with fuzzorch's connection settings."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        # Python's sqlite3 opens transactions lazily and lets writes race; "BEGIN IMMEDIATE"
        # on every transaction makes each one take the write lock up front, so a guarded
        # UPDATE can never interleave with another writer's read.
        engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        sa.event.listen(engine, "connect", _disable_pysqlite_begin)
        sa.event.listen(engine, "begin", _begin_immediate)
        return engine
    return sa.create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)


def _disable_pysqlite_begin(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None


def _begin_immediate(conn: sa.Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


class Database:
    """The SQL store's connection seam: transactions on one engine."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, url: str, *, upgrade: bool = False) -> Database:
        """Open the database at ``url``; with ``upgrade``, migrate it to the newest schema."""
        database = cls(create_engine(url))
        try:
            if upgrade:
                database.upgrade()
            else:
                database.check_schema()
        except BaseException:
            database.dispose()
            raise
        return database

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    def upgrade(self) -> str:
        """Migrate to the newest schema; return the revision."""
        try:
            return migrate.upgrade(self.engine)
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"could not upgrade the database: {exc}") from exc

    def check_schema(self) -> None:
        """Raise StoreError unless the database is at the revision this code expects."""
        try:
            current = migrate.current_revision(self.engine)
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"could not reach the database: {_first_line(exc)}") from exc
        head = migrate.head_revision()
        if current != head:
            raise StoreError(
                f"the database is at schema revision {current or 'none'!r} but this fuzzorch "
                f"needs {head!r}: run 'fuzzorch db upgrade'"
            )

    @contextmanager
    def transaction(self) -> Iterator[sa.Connection]:
        """A connection in a transaction: committed on success, rolled back on error."""
        with self.engine.begin() as conn:
            yield conn

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__

"""Fixtures for the SQL store on every supported database: SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from orchestrator.store.database import Database
from orchestrator.store.schema import metadata
from tests.support.services import temporary_postgres_database


@pytest.fixture(scope="session")
def postgres_database(postgres_url: str) -> Iterator[Database]:
    """One migrated PostgreSQL database for the session."""
    database = Database.open(postgres_url, upgrade=True)
    yield database
    database.dispose()


def _empty_tables(database: Database) -> None:
    with database.transaction() as conn:
        if database.dialect == "postgresql":
            names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
            conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for table in reversed(metadata.sorted_tables):
                conn.execute(table.delete())


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A migrated, empty database of each supported kind."""
    if request.param == "sqlite":
        db = Database.open(f"sqlite:///{tmp_path / 'store.db'}", upgrade=True)
        yield db
        db.dispose()
        return
    db = request.getfixturevalue("postgres_database")
    _empty_tables(db)
    yield db


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a database with nothing in it, of each supported kind."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    with temporary_postgres_database() as url:
        yield url

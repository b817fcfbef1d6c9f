"""Migrations build exactly the schema the code declares, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from orchestrator.errors import StoreError
from orchestrator.store import migrate
from orchestrator.store.database import Database
from orchestrator.store.schema import metadata


def _diff(database: Database) -> list[object]:
    with database.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))


def test_an_unmigrated_database_is_refused_with_the_command_that_fixes_it(
    empty_database_url: str,
) -> None:
    with pytest.raises(StoreError, match="run 'fuzzorch db upgrade'"):
        Database.open(empty_database_url)


def test_upgrade_builds_the_declared_schema_and_is_idempotent(empty_database_url: str) -> None:
    database = Database.open(empty_database_url, upgrade=True)
    try:
        assert migrate.current_revision(database.engine) == migrate.head_revision()
        assert _diff(database) == []
        assert database.upgrade() == migrate.head_revision()
        Database.open(empty_database_url).dispose()  # the schema check passes now
    finally:
        database.dispose()


def test_downgrade_to_base_removes_everything_and_upgrade_restores_it(
    empty_database_url: str,
) -> None:
    database = Database.open(empty_database_url, upgrade=True)
    try:
        migrate.downgrade(database.engine, "base")
        tables = set(sa.inspect(database.engine).get_table_names()) - {"alembic_version"}
        assert tables == set()
        database.upgrade()
        assert _diff(database) == []
    finally:
        database.dispose()

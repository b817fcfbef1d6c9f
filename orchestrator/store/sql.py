"""Small SQL helpers that differ between SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite


def insert_ignoring_duplicates(
    conn: sa.Connection, table: sa.Table, rows: Sequence[Mapping[str, Any]]
) -> int:
    """Insert rows, skipping any that collide with a unique key; return how many went in.

    Redelivered messages make the trusted side write the same facts twice; the database,
    not a read-then-write check, decides which copy is new, so racing consumers are safe.
    """
    if not rows:
        return 0
    dialect = conn.dialect.name
    if dialect == "postgresql":
        statement: Any = postgresql.insert(table).on_conflict_do_nothing()
    elif dialect == "sqlite":
        statement = sqlite.insert(table).on_conflict_do_nothing()
    else:  # pragma: no cover - only the two supported databases reach here
        raise NotImplementedError(f"unsupported database dialect {dialect!r}")
    # RETURNING, not rowcount: drivers disagree on rowcount for INSERT ... ON CONFLICT.
    statement = statement.returning(*table.primary_key.columns)
    return sum(len(conn.execute(statement, dict(row)).all()) for row in rows)

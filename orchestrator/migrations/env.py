"""Alembic environment: migrations always run on a connection handed in by fuzzorch.

``orchestrator.store.migrate`` passes the connection in ``config.attributes``, so no URL
(and no secret) ever sits in an ini file.
"""

from __future__ import annotations

from alembic import context

from orchestrator.store.schema import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    # SQLite cannot ALTER most things; batch mode rebuilds tables there.
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()

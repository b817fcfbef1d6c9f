"""Schema migrations: run Alembic programmatically on one of our connections."""

from __future__ import annotations

import logging
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

logger = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def _config(connection: sa.Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision the code knows."""
    head = ScriptDirectory.from_config(_config()).get_current_head()
    if head is None:  # pragma: no cover - there is always an initial revision
        raise RuntimeError("no migrations found")
    return head


def current_revision(engine: sa.Engine) -> str | None:
    """The revision the database is at, or None for an empty database."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: sa.Engine, revision: str = "head") -> str:
    """Bring the database to ``revision`` and return the revision it is at afterwards."""
    before = current_revision(engine)
    with engine.begin() as conn:
        command.upgrade(_config(conn), revision)
    after = current_revision(engine)
    if before != after:
        logger.info("database upgraded from %s to %s", before or "empty", after)
    return after or ""


def downgrade(engine: sa.Engine, revision: str) -> None:
    """Take the database back to ``revision`` (``base`` drops everything)."""
    with engine.begin() as conn:
        command.downgrade(_config(conn), revision)

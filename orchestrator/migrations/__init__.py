"""Alembic migrations of the SQL store; run through ``orchestrator.store.migrate``."""

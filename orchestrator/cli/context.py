"""What every CLI verb needs: settings read once, and adapters opened on first use."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

import typer

from orchestrator.settings import Settings
from orchestrator.store.database import Database


@dataclass
class CliContext:
    """Settings plus lazily opened adapters, shared by the verbs of one invocation."""

    settings: Settings
    _database: Database | None = field(default=None, repr=False)

    def database(self) -> Database:
        """The SQL store; the embedded SQLite store migrates itself, a server's does not."""
        if self._database is None:
            embedded = self.settings.database_url.startswith("sqlite")
            self._database = Database.open(self.settings.database_url, upgrade=embedded)
        return self._database

    def now(self) -> float:
        """The wall clock, as epoch seconds."""
        return time.time()

    def close(self) -> None:
        """Release every adapter that was opened."""
        if self._database is not None:
            self._database.dispose()
            self._database = None


def build_context() -> CliContext:
    """Read the environment once, for the whole invocation."""
    return CliContext(settings=Settings.from_env(os.environ))


def context_of(ctx: typer.Context) -> CliContext:
    """The CliContext stored on the root command."""
    obj = ctx.find_root().obj
    if not isinstance(obj, CliContext):  # pragma: no cover - main() always sets it
        raise RuntimeError("the CLI context was not initialised")
    return obj

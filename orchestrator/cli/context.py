"""What every CLI verb needs: settings read once, and adapters opened on first use."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import sqlalchemy as sa
import typer

from orchestrator.adapters import make_git, open_object_store
from orchestrator.client import Client
from orchestrator.errors import UsageError
from orchestrator.registry import Registry
from orchestrator.settings import Settings
from orchestrator.store import audit, repos
from orchestrator.store.database import Database
from workers.envcache import EnvironmentCache
from workers.fuzzjob import WorkerCaches
from workers.gitrefs import canonical_source
from workers.sandbox import Sandbox
from workers.storage.base import ObjectStore
from workers.uidpool import harness_uid
from workers.workspace import Workspaces


@dataclass
class CliContext:
    """Settings plus lazily opened adapters, shared by the verbs of one invocation."""

    settings: Settings
    _database: Database | None = field(default=None, repr=False)
    _objects: ObjectStore | None = field(default=None, repr=False)
    _exits: contextlib.ExitStack = field(default_factory=contextlib.ExitStack, repr=False)
    _client: Client | None = field(default=None, repr=False)

    def database(self) -> Database:
        """The SQL store; the embedded SQLite store migrates itself, a server's does not."""
        if self._database is None:
            embedded = self.settings.database_url.startswith("sqlite")
            self._database = Database.open(self.settings.database_url, upgrade=embedded)
        return self._database

    def objects(self) -> ObjectStore:
        """The object store."""
        if self._objects is None:
            self._objects = open_object_store(self.settings.storage)
        return self._objects

    def registry(self) -> Registry:
        """Repositories and their harnesses, on the embedded state under FUZZORCH_HOME."""
        return Registry(
            self.database(),
            self.objects(),
            make_git(self.settings, embedded=True),
            self.settings.home / "git",
            allow_local=True,
            clock=self.now,
        )

    def find_or_register(self, source: str) -> str:
        """The repository a name or source means: registered now if it is new, refreshed
        (fetched, rediscovered) if it was registered from that source before."""
        registry = self.registry()
        with self.database().transaction() as conn:
            if "/" not in source and repos.find_repo(conn, source) is not None:
                return source
            known = repos.find_repo_by_source(conn, canonical_source(source, allow_local=True))
        if known is not None:
            registry.refresh(known.name)
            return known.name
        return registry.add(source).repo.name

    def client(self) -> Client:
        """The HTTP client of the configured server; a usage error when none is set."""
        if self.settings.server_url is None:
            raise UsageError(
                "this verb talks to a fuzzorch server: set FUZZORCH_SERVER_URL and "
                "FUZZORCH_TOKEN (on a laptop, 'fuzzorch run' runs a whole campaign)"
            )
        if self._client is None:
            self._client = Client(self.settings.server_url, self.settings.token)
            self._exits.callback(self._client.close)
        return self._client

    def require_embedded(self, verb: str) -> None:
        """Refuse a verb that has no server API yet when a server is configured."""
        if not self.settings.embedded:
            raise UsageError(
                f"'fuzzorch {verb}' works on the embedded state only in this version; "
                f"unset FUZZORCH_SERVER_URL (now {self.settings.server_url!r})"
            )

    def worker_caches(self) -> WorkerCaches:
        """The caches of the in-process worker under FUZZORCH_HOME/worker."""
        root = self.settings.home / "worker"
        uid = self._exits.enter_context(harness_uid())
        sandbox = Sandbox(scratch_root=root / "scratch", harness_uid=uid)
        return WorkerCaches(
            store=self.objects(),
            workspaces=Workspaces(make_git(self.settings, embedded=True), root / "git"),
            environments=EnvironmentCache(
                root / "envs", sandbox, build_env=self.settings.build_env
            ),
            sandbox=sandbox,
            root=root,
        )

    def now(self) -> float:
        """The wall clock, as epoch seconds."""
        return time.time()

    def audit(
        self, conn: sa.Connection, action: str, target: str, detail: Mapping[str, object]
    ) -> None:
        """Record a state change made from the CLI on the store directly."""
        audit.append(
            conn,
            audit.AuditEntry(actor="cli", action=action, at=self.now(), target=target,
                             detail=dict(detail)),
        )  # fmt: skip

    def close(self) -> None:
        """Release every adapter that was opened, and the harness uid if one was held."""
        self._exits.close()
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

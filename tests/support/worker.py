"""Fixtures for running real fuzz jobs: a worker's caches, with one environment cache per session.

Building a target environment takes seconds (a virtualenv and a ``pip install``), so the
session shares one ``EnvironmentCache``: every repository in ``harness_repos`` has the same
dependency fingerprint, so one build serves them all. Everything else a worker keeps (git
mirrors and worktrees, corpora, run folders, the sandbox's scratch) is per test, under the
test's own root, so a test can check that a job left nothing behind.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.harness_repos import base_files
from workers.envcache import Environment, EnvironmentCache
from workers.fuzzjob import WorkerCaches
from workers.git import Git
from workers.sandbox import DEFAULT_HARNESS_UID, Sandbox
from workers.sandbox_procs import processes
from workers.storage import FilesystemObjectStore, ObjectStore
from workers.workspace import Workspaces

MakeWorker = Callable[..., WorkerCaches]


def build_env() -> dict[str, str]:
    """What a build needs of this machine's environment to reach the package index."""
    names = {"SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"}
    return {k: v for k, v in os.environ.items() if k.startswith(("PIP_", "UV_")) or k in names}


def harness_processes() -> list[int]:
    """Live processes of the harness uid (a finished job must leave none)."""
    return [info.pid for info in processes() if DEFAULT_HARNESS_UID in info.uids]


def leftovers(caches: WorkerCaches) -> list[Path]:
    """What a finished job left behind: anything in the per-job folders (run folders,
    worktrees, the sandbox's scratch), or anything beside the caches a worker keeps."""
    folders = (caches.root / "runs", caches.workspaces.worktrees, caches.root / "scratch")
    found = [entry for folder in folders if folder.exists() for entry in folder.iterdir()]
    kept = {"corpus", "git", "runs", "scratch"}
    found += [entry for entry in caches.root.iterdir() if entry.name not in kept]
    git = caches.workspaces.mirrors.parent
    found += [entry for entry in git.iterdir() if entry.name not in {"mirrors", "worktrees"}]
    return sorted(found)


@pytest.fixture(scope="session")
def worker_session_root() -> Iterator[Path]:
    """A folder for the session's shared caches, removed at the end."""
    path = Path(tempfile.mkdtemp(prefix="fuzzorch-worker-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def environment_cache(worker_session_root: Path) -> EnvironmentCache:
    """The session's environment cache."""
    sandbox = Sandbox(scratch_root=worker_session_root / "build-scratch")
    assert sandbox.capabilities().method == "bwrap", "bubblewrap must work for these tests"
    return EnvironmentCache(worker_session_root / "envs", sandbox, build_env=build_env())


@pytest.fixture(scope="session")
def shared_environment(
    environment_cache: EnvironmentCache, worker_session_root: Path
) -> Environment:
    """The environment every ``harness_repos`` repository uses, built once up front.

    Up front because a job's duration counts from its start, build included: a test's
    short job must not spend its seconds building.
    """
    tree = worker_session_root / "shared-tree"
    for name, content in base_files().items():
        assert isinstance(content, str)
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        (tree / name).write_text(content)
    built = environment_cache.get(tree, None)
    assert isinstance(built, Environment), f"the shared environment did not build: {built}"
    return built


@pytest.fixture
def make_worker(
    tmp_path: Path, environment_cache: EnvironmentCache, shared_environment: Environment
) -> MakeWorker:
    """Build a worker's caches: ``make_worker(store=None, root=None, environments=None)``.

    The sandbox is created at call time and handed the test's whole ``os.environ`` (the
    worst case: only its allow-list keeps the worker's variables from the harness), so a
    test that sets a variable first sees whether it leaks.
    """
    stores: dict[str, ObjectStore] = {}

    def make(
        store: ObjectStore | None = None,
        *,
        root: Path | None = None,
        environments: EnvironmentCache | None = None,
    ) -> WorkerCaches:
        root = root or tmp_path / "worker"
        if store is None:
            store = stores.setdefault("default", FilesystemObjectStore(tmp_path / "objects"))
        sandbox = Sandbox(scratch_root=root / "scratch", environ=os.environ)
        return WorkerCaches(
            store=store,
            workspaces=Workspaces(Git(allow_local=True), root / "git"),
            environments=environments or environment_cache,
            sandbox=sandbox,
            root=root,
        )

    return make


@pytest.fixture
def worker(make_worker: MakeWorker) -> WorkerCaches:
    """A worker's caches on a filesystem object store, under the test's own folder."""
    return make_worker()

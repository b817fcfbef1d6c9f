"""Registering repositories and collecting their harnesses at any commit.

The orchestrator never imports or runs repository code: a repository is mirrored with the
hardened git adapter, and harnesses are discovered by reading blobs at a commit.
"""

from __future__ import annotations

import logging
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harnesses.config import parse_pyproject
from harnesses.discovery import MAX_PYPROJECT_BYTES, discover
from harnesses.model import Collection, Harness, HarnessKind, HarnessOptions, Skipped, SkipReason
from harnesses.seeds import SeedLimits, files_in, seed_sources, zip_units
from orchestrator.errors import ConflictError
from orchestrator.identity import validate_repo_name
from orchestrator.store import repos
from orchestrator.store.database import Database
from workers.corpus import TransferStats, add_units, corpus_prefix
from workers.git import Git
from workers.gitrefs import canonical_source, repo_name_from_source, validate_ref
from workers.gittree import GitTree
from workers.storage.base import ObjectStore

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Registration:
    """A registered repository with what was found at its head."""

    repo: repos.RepoRecord
    collection: Collection
    seeds: TransferStats


class Registry:
    """Repositories: mirrored under ``mirrors``, recorded in SQL, seeds in the object store."""

    def __init__(
        self,
        database: Database,
        objects: ObjectStore,
        git: Git,
        mirrors: Path,
        *,
        allow_local: bool,
        clock: Callable[[], float],
        seed_limits: SeedLimits | None = None,
    ) -> None:
        self.database = database
        self.objects = objects
        self.git = git
        self.mirrors = mirrors
        self.allow_local = allow_local
        self.clock = clock
        self.seed_limits = seed_limits or SeedLimits()

    def mirror_path(self, name: str) -> Path:
        """Where the bare mirror of repository ``name`` lives."""
        return self.mirrors / f"{validate_repo_name(name)}.git"

    def add(self, source: str, *, name: str | None = None) -> Registration:
        """Mirror, discover at the default branch's head, and record a new repository.

        Everything that can fail (the source, the name, the clone, the configuration,
        the seeds) is checked before anything is recorded, so a failed add leaves nothing.
        """
        canonical = canonical_source(source, allow_local=self.allow_local)
        name = validate_repo_name(name if name is not None else default_name(canonical))
        with self.database.transaction() as conn:
            existing = repos.find_repo_by_source(conn, canonical)
            if existing is not None:
                raise ConflictError(f"{canonical!r} is registered already as {existing.name!r}")
            if repos.find_repo(conn, name) is not None:
                raise ConflictError(f"a repository named {name!r} exists already")
        mirror = self.mirror_path(name)
        if mirror.exists():
            shutil.rmtree(mirror)  # left over from an add that failed after cloning
        try:
            self.git.mirror(canonical, mirror)
            branch = self.git.default_branch(mirror)
            head = self.git.resolve(mirror, branch)
            tree = GitTree(self.git, mirror, head)
            collection = discover(tree)
            with self.database.transaction() as conn:
                record = repos.add_repo(
                    conn,
                    name=name,
                    source=canonical,
                    default_branch=branch,
                    head_commit=head,
                    now=self.clock(),
                )
                repos.record_harnesses(conn, name, head, _records(collection))
                # Inside the transaction: if the store fails, the repository is not
                # recorded; units already written are content-addressed and reused later.
                seeds = self._import_seeds(name, tree, collection)
        except BaseException:
            shutil.rmtree(mirror, ignore_errors=True)
            raise
        logger.info(
            "registered %s (%s) at %s@%s: %d harnesses, %d skipped, %d seed units",
            name, canonical, branch, head[:12], len(collection.harnesses),
            len(collection.skipped), seeds.added,
        )  # fmt: skip
        return Registration(record, collection, seeds)

    def refresh(self, name: str) -> Registration:
        """Fetch the repository and collect harnesses at its default branch's new head."""
        with self.database.transaction() as conn:
            record = repos.get_repo(conn, name)
        mirror = self.mirror_path(name)
        self.git.mirror(record.source, mirror)
        branch = self.git.default_branch(mirror)
        head = self.git.resolve(mirror, branch)
        tree = GitTree(self.git, mirror, head)
        collection = discover(tree)
        with self.database.transaction() as conn:
            repos.update_repo_head(
                conn, name, default_branch=branch, head_commit=head, now=self.clock()
            )
            repos.record_harnesses(conn, name, head, _records(collection))
            seeds = self._import_seeds(name, tree, collection)
            record = repos.get_repo(conn, name)
        return Registration(record, collection, seeds)

    def resolve(self, name: str, ref: str | None) -> str:
        """The commit ``ref`` (default: the default branch) names in repository ``name``."""
        with self.database.transaction() as conn:
            record = repos.get_repo(conn, name)
        target = ref if ref is not None else record.default_branch or "HEAD"
        return self.git.resolve(self.mirror_path(name), validate_ref(target))

    def collection(self, name: str, commit: str) -> Collection:
        """The harnesses at ``commit``: from the store if recorded, else discovered now."""
        with self.database.transaction() as conn:
            repos.get_repo(conn, name)
            recorded = repos.harnesses_at(conn, name, commit, include_skipped=True)
            if recorded:
                return _collection(recorded)
        collection = discover(GitTree(self.git, self.mirror_path(name), commit))
        with self.database.transaction() as conn:
            repos.record_harnesses(conn, name, commit, _records(collection))
        return collection

    def install_commands(self, name: str, commit: str) -> tuple[str, ...] | None:
        """The install commands ``[tool.fuzzorch]`` configures at a commit (None: default)."""
        tree = GitTree(self.git, self.mirror_path(name), commit)
        files = tree.index()
        entry = files.get("pyproject.toml")
        if entry is None or entry.symlink_target is not None:
            return None
        return parse_pyproject(tree.read("pyproject.toml", MAX_PYPROJECT_BYTES)).install

    def _import_seeds(self, repo: str, tree: GitTree, collection: Collection) -> TransferStats:
        total = TransferStats()
        files = tree.index()
        for harness in collection.harnesses:
            sources = seed_sources(harness, files)
            units: list[bytes] = []
            if sources.seed_dir is not None:
                for entry in files_in(sources.seed_dir, files)[: self.seed_limits.max_members]:
                    if entry.size <= self.seed_limits.max_unit_bytes:
                        units.append(tree.read(entry.path, self.seed_limits.max_unit_bytes))
            if sources.seed_zip is not None:
                archive = tree.read(sources.seed_zip, self.seed_limits.max_archive_bytes)
                units.extend(zip_units(archive, self.seed_limits))
            if units:
                total += add_units(
                    self.objects,
                    corpus_prefix(repo, harness.name),
                    units,
                    max_unit_bytes=self.seed_limits.max_unit_bytes,
                )
        return total


def default_name(canonical: str) -> str:
    """A repository's default name: its last path component as a slug."""
    raw = repo_name_from_source(canonical).lower()
    slug = re.sub(r"[^a-z0-9._-]+", "-", raw).strip("-.")[:64]
    return slug or "repo"


def _records(collection: Collection) -> list[repos.HarnessRecord]:
    found = [
        repos.HarnessRecord(
            name=h.name, path=h.path, status="found", kind=h.kind.value, options=h.options.to_json()
        )
        for h in collection.harnesses
    ]
    skipped = [
        repos.HarnessRecord(
            name=s.name, path=s.path, status="skipped", reason=s.reason.value, detail=s.detail
        )
        for s in collection.skipped
    ]
    return found + skipped


def _collection(records: list[repos.HarnessRecord]) -> Collection:
    harnesses = tuple(
        Harness(r.name, HarnessKind(r.kind or ""), r.path, HarnessOptions.from_json(r.options))
        for r in records
        if r.status == "found"
    )
    skipped = tuple(
        Skipped(r.name, r.path, SkipReason(r.reason or ""), r.detail or "")
        for r in records
        if r.status == "skipped"
    )
    return Collection(harnesses, skipped)

"""How each kind of harness is started: the command line and the sandbox it runs in.

atheris scripts run as ``python harness.py <libFuzzer flags> NEW_CORPUS CORPUS``; Hypothesis
tests run through the runner shim, which drives ``test.hypothesis.fuzz_one_input`` from
atheris. Both take the same libFuzzer flags, so everything after the start is shared.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harnesses.libfuzzer import libfuzzer_args
from harnesses.model import HarnessKind, HarnessOptions
from harnesses.shims import HYPOTHESIS_SHIM
from workers.sandbox import Limits, Policy

DEFAULT_TIMEOUT_S = 10
DEFAULT_RSS_LIMIT_MB = 2048
# Headroom above libFuzzer's own RSS limit, so libFuzzer reports an OOM with its artifact
# before the kernel's address-space limit turns it into a plain MemoryError.
ADDRESS_SPACE_HEADROOM = 2048 * 1024 * 1024
# After libFuzzer's own -max_total_time, how long before the sandbox kills it.
STOP_GRACE_S = 30.0


@dataclass(frozen=True)
class RunFolders:
    """The folders of one job run: the corpus it reads, and where it writes."""

    corpus: Path  # the harness's cached corpus: read-only for the harness
    new_units: Path  # libFuzzer writes new inputs into its first corpus folder: this one
    artifacts: Path  # crash-, timeout-, oom- files
    shim: Path  # a private copy of the runner shim, named so frames from it are recognised


@dataclass(frozen=True)
class EngineRun:
    """One engine start: its command line, limits and sandbox policy."""

    argv: tuple[str, ...]
    limits: Limits
    policy: Policy


def prepare_folders(run_dir: Path, corpus: Path) -> RunFolders:
    """Create a run's folders and its copy of the shim."""
    folders = RunFolders(
        corpus=corpus,
        new_units=run_dir / "new",
        artifacts=run_dir / "artifacts",
        shim=run_dir / HYPOTHESIS_SHIM.name,
    )
    for folder in (folders.new_units, folders.artifacts, corpus):
        folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(HYPOTHESIS_SHIM, folders.shim)
    return folders


def import_roots(worktree: Path) -> list[Path]:
    """Where a target's own code is imported from: ``src/`` (when present) and the root."""
    src = worktree / "src"
    return [src, worktree] if src.is_dir() else [worktree]


def engine_run(
    *,
    kind: HarnessKind,
    harness: str,
    path: str,
    options: HarnessOptions,
    python: Path,
    worktree: Path,
    env_root: Path,
    engine_site: Path,
    folders: RunFolders,
    seconds: float | None,
    runs: int | None,
    seed: int | None,
    inputs: Sequence[Path] = (),
    extra_flags: Sequence[str] = (),
    shim_mode: Sequence[str] | None = None,
    writable: Sequence[Path] = (),
    wall_s: float | None = None,
) -> EngineRun:
    """The command line and sandbox of one engine start.

    By default the engine fuzzes the run's corpus folders. With ``inputs`` it runs those
    files once each instead (libFuzzer's reproduction mode) and ``extra_flags`` go before
    them (``-minimize_crash_internal_step=1`` …). ``shim_mode`` replaces the Hypothesis
    shim's ``-- FLAGS`` tail (``--shrink TESTCASE OUT``, ``--replay-choices FILE``).
    ``wall_s`` caps the sandbox's wall-clock limit (a single reproduction needs little).
    """
    timeout = int(options.timeout or DEFAULT_TIMEOUT_S)
    rss_limit = options.rss_limit_mb or DEFAULT_RSS_LIMIT_MB
    corpus_dirs = [str(p) for p in inputs] or [str(folders.new_units), str(folders.corpus)]
    flags = libfuzzer_args(
        runs=runs,
        max_total_time=None if seconds is None else max(1, int(seconds)),
        seed=seed,
        timeout=max(1, timeout),
        rss_limit_mb=rss_limit,
        max_len=options.max_len,
        dict_path=str(worktree / options.dictionary) if options.dictionary else None,
        artifact_prefix=f"{folders.artifacts}/",
        corpus_dirs=[],
    )
    flags = [*flags, *extra_flags, *corpus_dirs]
    if kind is HarnessKind.ATHERIS:
        argv = [str(python), str(worktree / path), *flags]
    else:
        qualname = harness.split("::", 1)[1]
        tail = list(shim_mode) if shim_mode is not None else ["--", *flags]
        argv = [str(python), str(folders.shim), str(worktree), path, qualname, *tail]
    wall = (seconds if seconds is not None else 24 * 3600.0) + STOP_GRACE_S + timeout
    if wall_s is not None:
        wall = min(wall, wall_s)
    return EngineRun(
        argv=tuple(argv),
        limits=Limits(
            wall_seconds=wall,
            memory_bytes=rss_limit * 1024 * 1024 + ADDRESS_SPACE_HEADROOM,
        ),
        policy=Policy(
            network=False,
            readonly_paths=(
                worktree,
                env_root,
                engine_site,
                Path(sys.base_prefix),
                folders.corpus,
                folders.shim,
                *inputs,
            ),
            writable_paths=(folders.new_units, folders.artifacts, *writable),
            extra_env={
                "PYTHONPATH": ":".join(str(p) for p in import_roots(worktree)),
                "PYTHONDONTWRITEBYTECODE": "1",
            },
        ),
    )

"""Target environments: one virtualenv per dependency fingerprint, built in the sandbox.

Building runs repository code (build backends, ``setup.py``, install commands), so it runs
in the sandbox too, with the network on. A finished environment is made read-only for the
harness uid (owned by the worker, no group/other write bits), so a harness cannot plant
code for the next job. The fuzzing engines (atheris, Hypothesis) are not installed into
each environment: a ``.pth`` file appends the worker's engine folder to ``sys.path``, after
the target's own packages, so a target's pinned Hypothesis still wins.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shlex
import shutil
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from workers.engine_site import engine_site
from workers.permissions import seal
from workers.sandbox import Limits, Policy, Sandbox

logger = logging.getLogger(__name__)

DEPENDENCY_FILES = (
    "pyproject.toml",
    "setup.py",
    "setup.cfg",
    "poetry.lock",
    "uv.lock",
    "pdm.lock",
    "Pipfile",
    "Pipfile.lock",
)
DEFAULT_BUILD_SECONDS = 900.0
MAX_BUILD_LOG = 256 * 1024


PIP_CONFIG_FILES = (Path("/etc/pip.conf"), Path("/etc/xdg/pip"))


def index_paths(build_env: Mapping[str, str]) -> tuple[Path, ...]:
    """Host paths a build reads to reach the package index: pip's configuration and the
    certificates, wheel folders and file:// indexes that it or the build variables name."""
    texts = list(build_env.values())
    found = [p for p in PIP_CONFIG_FILES if p.exists()]
    for config in found:
        files = config.glob("*") if config.is_dir() else [config]
        for file in files:
            with contextlib.suppress(OSError, UnicodeDecodeError):
                texts.append(file.read_text())
    for text in texts:
        for word in text.replace("=", " ").split():
            candidate = Path(word.removeprefix("file://"))
            if candidate.is_absolute() and candidate.exists() and candidate not in found:
                found.append(candidate)
    return tuple(found)


def dependency_files(worktree: Path) -> dict[str, bytes]:
    """The files that decide what an environment contains, read from a worktree's root."""
    found: dict[str, bytes] = {}
    candidates = [*DEPENDENCY_FILES, *(p.name for p in worktree.glob("requirements*.txt"))]
    for name in sorted(set(candidates)):
        path = worktree / name
        if path.is_file() and not path.is_symlink():
            found[name] = path.read_bytes()[:4_000_000]
    return found


def default_install(files: Mapping[str, bytes]) -> tuple[str, ...]:
    """What to run when the target configures nothing: an editable install if it is a package."""
    if "pyproject.toml" in files or "setup.py" in files:
        return ("pip install --no-input -e .",)
    return ()


def fingerprint(files: Mapping[str, bytes], install: tuple[str, ...], python: str) -> str:
    """A stable id for everything that shapes an environment."""
    digest = hashlib.sha256()
    digest.update(json.dumps({"install": list(install), "python": python}).encode())
    for name in sorted(files):
        digest.update(b"\0" + name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
    return digest.hexdigest()[:24]


@dataclass(frozen=True)
class Environment:
    """A built environment: its interpreter and the fingerprint it was built for."""

    fingerprint: str
    root: Path

    @property
    def python(self) -> Path:
        """The environment's interpreter."""
        return self.root / "venv" / "bin" / "python"


@dataclass(frozen=True)
class BuildFailure:
    """An environment that could not be built, with the log of the attempt."""

    fingerprint: str
    log: str
    reason: str


class EnvironmentCache:
    """Environments under ``root``, evicted least-recently-used beyond ``max_bytes``."""

    def __init__(
        self,
        root: Path,
        sandbox: Sandbox,
        *,
        max_bytes: int = 20 * 1024**3,
        build_seconds: float = DEFAULT_BUILD_SECONDS,
        build_env: Mapping[str, str] | None = None,
    ) -> None:
        self.root = root
        self.sandbox = sandbox
        self.build_env = dict(build_env or {})
        self.max_bytes = max_bytes
        self.build_seconds = build_seconds
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o755)

    def python_version(self) -> str:
        """The interpreter environments are built with."""
        return f"{sys.implementation.name}-{sys.version_info[0]}.{sys.version_info[1]}"

    def get(self, worktree: Path, install: tuple[str, ...] | None) -> Environment | BuildFailure:
        """The environment for a worktree's dependencies: cached, or built now."""
        files = dependency_files(worktree)
        commands = install if install is not None else default_install(files)
        key = fingerprint(files, commands, self.python_version())
        with self._lock(key):
            ready = self.root / key / "READY"
            if ready.exists():
                os.utime(ready)  # recency for eviction
                return Environment(key, self.root / key)
            result = self._build(key, worktree, commands)
        if isinstance(result, Environment):
            self.evict(keep=key)
        return result

    @contextlib.contextmanager
    def _lock(self, key: str) -> Iterator[None]:
        # Two workers on one host building the same fingerprint: one builds, one waits.
        with open(self.root / f".{key}.lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _build(
        self, key: str, worktree: Path, commands: tuple[str, ...]
    ) -> Environment | BuildFailure:
        target = self.root / key
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(mode=0o755)
        source = target / "src"
        # The build gets its own copy of the tree: editable installs point into it, and it
        # lives exactly as long as the environment.
        shutil.copytree(worktree, source, symlinks=True, ignore=shutil.ignore_patterns(".git"))
        log: list[str] = []
        started = time.monotonic()
        venv = target / "venv"
        # The base interpreter, not the worker's own virtualenv (which the sandbox hides).
        python = getattr(sys, "_base_executable", sys.executable)
        steps = [[python, "-m", "venv", str(venv)]]
        # Install commands run in the build's copy of the tree, as the target expects.
        steps += [["/bin/sh", "-c", f"cd {shlex.quote(str(source))} && {c}"] for c in commands]
        for argv in steps:
            remaining = self.build_seconds - (time.monotonic() - started)
            if remaining <= 0:
                return self._failed(key, target, log, "the build ran out of time")
            result = self.sandbox.run(
                argv,
                limits=Limits(wall_seconds=remaining, max_processes=256, memory_bytes=None),
                policy=Policy(
                    network=True,
                    readonly_paths=(Path(sys.base_prefix), *index_paths(self.build_env)),
                    writable_paths=(target,),
                    extra_env={
                        **self.build_env,
                        "VIRTUAL_ENV": str(venv),
                        "PATH": f"{venv / 'bin'}:/usr/local/bin:/usr/bin:/bin",
                        "PIP_NO_CACHE_DIR": "1",
                        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
                    },
                ),
            )
            log.append(f"$ {' '.join(argv)}\n{result.output.decode('utf-8', 'replace')}")
            if result.returncode != 0 or result.timed_out:
                why = "timed out" if result.timed_out else f"exited with {result.returncode}"
                return self._failed(key, target, log, f"{' '.join(argv)!r} {why}")
        self._add_engines(venv)
        seal(target, owner=(os.getuid(), os.getgid()))
        (target / "build.log").write_text("\n".join(log)[-MAX_BUILD_LOG:])
        (target / "READY").write_text(key)
        logger.info("built environment %s in %.1f s", key, time.monotonic() - started)
        return Environment(key, target)

    def _add_engines(self, venv: Path) -> None:
        site = next((venv / "lib").glob("python3*/site-packages"))
        (site / "zz_fuzzorch_engines.pth").write_text(f"{engine_site(self.root / '.engines')}\n")

    def _failed(self, key: str, target: Path, log: list[str], reason: str) -> BuildFailure:
        shutil.rmtree(target, ignore_errors=True)
        text = "\n".join(log)[-MAX_BUILD_LOG:]
        logger.warning("environment %s failed to build: %s", key, reason)
        return BuildFailure(key, text, reason)

    def evict(self, *, keep: str | None = None) -> list[str]:
        """Remove least-recently-used environments until the cache fits ``max_bytes``."""
        entries = []
        for ready in self.root.glob("*/READY"):
            env = ready.parent
            entries.append((ready.stat().st_mtime, env.name, _size(env)))
        total = sum(size for _, _, size in entries)
        removed: list[str] = []
        for _, name, size in sorted(entries):
            if total <= self.max_bytes:
                break
            if name == keep:
                continue
            with self._lock(name):
                shutil.rmtree(self.root / name, ignore_errors=True)
            total -= size
            removed.append(name)
        return removed


def _size(path: Path) -> int:
    total = 0
    for dirpath, _dirnames, filenames in os.walk(path):
        for name in filenames:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, name)).st_size
    return total

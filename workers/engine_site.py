"""The engines' own packages (atheris, Hypothesis and what they need), copied once per worker.

Target environments see this folder through a ``.pth`` line appended to their
``sys.path``: nothing is downloaded per environment, the engines' versions are the worker's,
and a target that pins its own Hypothesis still imports its own.
"""

from __future__ import annotations

import fcntl
import shutil
from importlib import metadata
from pathlib import Path

from workers.permissions import seal

ENGINE_DISTRIBUTIONS = ("atheris", "hypothesis", "attrs", "sortedcontainers")


def engine_site(folder: Path) -> Path:
    """A read-only folder holding the engine packages; built on first use."""
    ready = folder / ".ready"
    if ready.exists():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / ".engines.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if ready.exists():
            return folder
        staging = folder.with_name(folder.name + ".tmp")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        for name in ENGINE_DISTRIBUTIONS:
            _copy_distribution(metadata.distribution(name), staging)
        seal(staging)
        shutil.rmtree(folder, ignore_errors=True)
        staging.rename(folder)
        ready.write_text(",".join(ENGINE_DISTRIBUTIONS))
    return folder


def _copy_distribution(dist: metadata.Distribution, target: Path) -> None:
    base = Path(str(dist.locate_file(""))).resolve()
    for entry in dist.files or []:
        source = Path(str(dist.locate_file(entry))).resolve()
        if not source.is_relative_to(base) or "__pycache__" in source.parts:
            continue  # scripts under ../bin, and byte-code the target's Python rebuilds
        if not source.is_file():
            continue
        destination = target / source.relative_to(base)
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, destination)

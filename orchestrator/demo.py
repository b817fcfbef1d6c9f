"""The demo: build the bundled example repository, with a bug entering a release branch.

History (oldest first): main gets the reader, its fuzz harness and tests, then docs;
``release/1.0`` branches off and gains "backslash escapes", which read past the end of a
line ending in a backslash inside quotes; main gets the same feature with a bounds check.
Fuzzing ``release/1.0`` finds the bug; fuzzing ``main`` does not.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from harnesses.examples import CSVLITE, EXAMPLES
from workers.git import CommitSpec, Git

DEMO_BRANCH = "release/1.0"
ADA = ("Ada Lovelace", "ada@example.com")
GRACE = ("Grace Hopper", "grace@example.com")


def _tree(root: Path) -> dict[str, bytes | None]:
    # Stored as .txt so the example is neither linted, tested nor fuzzed as fuzzorch's own.
    return {
        str(p.relative_to(root)).removesuffix(".txt"): p.read_bytes()
        for p in sorted(root.rglob("*.txt"))
    }


def history() -> list[CommitSpec]:
    """The example's commits, oldest first."""
    escapes = (EXAMPLES / "history" / "reader_escapes.py.txt").read_bytes()
    fixed = (EXAMPLES / "history" / "reader_fixed.py.txt").read_bytes()
    readme = b"# csvlite\n\nA tiny CSV reader. `csvlite.parse(text)` returns the records.\n"
    t = 1_735_689_600  # 2025-01-01
    return [
        CommitSpec("main", "Add the CSV reader, its fuzz harness and tests", _tree(CSVLITE),
                   ADA, t),
        CommitSpec("main", "Document the reader", {"README.md": readme}, ADA, t + 3600),
        CommitSpec(DEMO_BRANCH, "Release 1.0", {}, ADA, t + 7200, start_from="main"),
        CommitSpec(DEMO_BRANCH, "Support backslash escapes in quoted fields",
                   {"csvlite/reader.py": escapes}, GRACE, t + 10800),
        CommitSpec(DEMO_BRANCH, "Mention escapes in the README",
                   {"README.md": readme + b"\nInside quotes, `\\\\` escapes a character.\n"},
                   GRACE, t + 14400),
        CommitSpec("main", "Support backslash escapes in quoted fields (bounds-checked)",
                   {"csvlite/reader.py": fixed}, ADA, t + 18000),
    ]  # fmt: skip


def build_example(home: Path, git: Git) -> Path:
    """The example repository under ``home``, built on first use."""
    target = home / "examples" / "csvlite"
    if not (target / ".git").is_dir():
        if target.exists():
            shutil.rmtree(target)  # a build that was interrupted
        git.build_repository(target, history())
    return target

"""A repository with a scripted history for triage tests: known bugs at known commits.

main (first parent, oldest first)::

    c0 root: calc.parse (correct), calc.num (correct), a Hypothesis test of calc.num
    c1 docs
    c2 BUG A: calc.parse.unescape indexes past a trailing backslash     <- introduced
    c3 docs
    c4 a pyproject.toml whose install fails (the environment cannot be built)
    c5 the pyproject.toml removed again
    c6 the atheris harness fuzz/fuzz_parse.py (added long after bug A: a transplant)
    c7 docs                                  release/1.0 branches here: r1 "release notes"
    c8 BUG B: calc.num.ratio divides by zero (found by the Hypothesis test) <- introduced
    c9 docs
    c10 FIX A: unescape keeps a trailing backslash                          <- fixed (main)
    c11 a flaky harness fuzz/fuzz_flaky.py with its module calc.flaky (crashes 15 % of runs)
"""

from __future__ import annotations

from pathlib import Path

from workers.git import CommitSpec, Git

RELEASE = "release/1.0"

PARSE_GOOD = b'''\
def unescape(text: str) -> str:
    """Resolve backslash escapes; a trailing backslash stays as it is."""
    out = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)
'''

PARSE_BUGGY = b'''\
def unescape(text: str) -> str:
    """Resolve backslash escapes."""
    out = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\\\":
            out.append(text[i + 1])
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)
'''

NUM_GOOD = b'''\
def ratio(a: int, b: int) -> float:
    """a / b, and 0.0 when b is 0."""
    if b == 0:
        return 0.0
    return a / b
'''

NUM_BUGGY = b'''\
def ratio(a: int, b: int) -> float:
    """a / b."""
    return a / b
'''

TEST_NUM = b"""\
from hypothesis import given
from hypothesis import strategies as st

from calc.num import ratio


@given(st.integers(), st.integers(min_value=0, max_value=9))
def test_ratio_is_a_number(a: int, b: int) -> None:
    assert ratio(a, b) == ratio(a, b)
"""

FUZZ_PARSE = b"""\
import sys

import atheris

with atheris.instrument_imports():
    from calc.parse import unescape


def TestOneInput(data: bytes) -> None:
    unescape(data.decode("latin-1"))


if __name__ == "__main__":
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()
"""

FLAKY = b"""\
import random


def roll(data: bytes) -> int:
    if random.random() < 0.15:
        raise RuntimeError("lost a race with another thread")
    return len(data)
"""

FUZZ_FLAKY = b"""\
import sys

import atheris

from calc.flaky import roll


def TestOneInput(data: bytes) -> None:
    roll(data)


if __name__ == "__main__":
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()
"""

BROKEN_PYPROJECT = b"""\
[project]
name = "calc"
version = "0.1"

[tool.fuzzorch]
install = ["false"]
"""

COMMITS = (
    ("c0", "main", "calc: escapes and ratios", {
        "calc/__init__.py": b"", "calc/parse.py": PARSE_GOOD, "calc/num.py": NUM_GOOD,
        "tests/__init__.py": b"", "tests/test_num.py": TEST_NUM, "README.md": b"calc\n",
    }),
    ("c1", "main", "docs: usage", {"README.md": b"calc\n\nusage\n"}),
    ("c2", "main", "parse: simplify escapes", {"calc/parse.py": PARSE_BUGGY}),
    ("c3", "main", "docs: examples", {"README.md": b"calc\n\nusage\nexamples\n"}),
    ("c4", "main", "packaging: add pyproject", {"pyproject.toml": BROKEN_PYPROJECT}),
    ("c5", "main", "packaging: revert pyproject", {"pyproject.toml": None}),
    ("c6", "main", "fuzz: a harness for unescape", {
        "fuzz/fuzz_parse.py": FUZZ_PARSE,
        "fuzz/fuzz_parse_seed_corpus/escaped": b"a\\\\bc",
    }),
    ("c7", "main", "docs: changelog", {"CHANGES.md": b"1.0\n"}),
    ("r1", RELEASE, "release notes for 1.0", {"RELEASE.md": b"1.0 is out\n"}),
    ("c8", "main", "num: drop the zero check", {"calc/num.py": NUM_BUGGY}),
    ("c9", "main", "docs: more", {"CHANGES.md": b"1.0\n1.1\n"}),
    ("c10", "main", "parse: keep a trailing backslash", {"calc/parse.py": PARSE_GOOD}),
    ("c11", "main", "flaky: a racy helper and its harness", {
        "calc/flaky.py": FLAKY, "fuzz/fuzz_flaky.py": FUZZ_FLAKY,
    }),
)  # fmt: skip


def build_triage_repo(path: Path) -> dict[str, str]:
    """Build the repository commit by commit, recording each label's sha."""
    git = Git()
    shas: dict[str, str] = {}
    done: list[CommitSpec] = []
    for index, (_label, branch, message, files) in enumerate(COMMITS):
        done.append(
            CommitSpec(
                branch=branch,
                message=message,
                files=files,
                timestamp=1_700_000_000 + 60 * index,
                start_from="main",
            )
        )
    heads = git.build_repository(path, done)
    # Walk back from the heads to label every commit.
    main = git.first_parent_history(path / ".git", heads["main"])
    main_labels = [label for label, branch, _m, _f in COMMITS if branch == "main"]
    for label, sha in zip(reversed(main_labels), main, strict=True):
        shas[label] = sha
    shas["r1"] = heads[RELEASE]
    return shas

"""``fuzzorch run`` and ``fuzzorch demo`` on the embedded service, end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from orchestrator.demo import DEMO_BRANCH, build_example
from workers.git import Git

FUZZORCH = str(Path(sys.executable).with_name("fuzzorch"))
SCHEMA = json.loads(
    (Path(__file__).parents[2] / "orchestrator/schemas/summary.schema.json").read_text()
)


def fuzzorch(home: Path, *args: str, slice_seconds: float = 20) -> subprocess.CompletedProcess[str]:
    """Run the installed CLI on an embedded home."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FUZZORCH_")}
    return subprocess.run(
        [FUZZORCH, *args],
        env={**env, "FUZZORCH_HOME": str(home), "FUZZORCH_SLICE_SECONDS": str(slice_seconds)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The demo's example repository and a home shared by this module's campaigns."""
    root = tmp_path_factory.mktemp("run-cli")
    return build_example(root, Git(allow_local=True)), root / "home"


def _summary(path: Path, result: subprocess.CompletedProcess[str]) -> Any:
    assert path.exists(), result.stderr[-4000:]
    document = json.loads(path.read_text())
    jsonschema.validate(document, SCHEMA)
    return document


def test_a_campaign_on_the_release_branch_finds_the_bug_and_fails_the_gate(
    example: tuple[Path, Path], tmp_path: Path
) -> None:
    source, home = example
    out = tmp_path / "summary.json"
    result = fuzzorch(
        home, "run", str(source), "--branch", DEMO_BRANCH, "--duration", "25",
        "--workers", "2", "--json", str(out),
    )  # fmt: skip
    assert result.returncode == 1, result.stderr[-4000:]
    document = _summary(out, result)
    assert document["campaign"]["status"] == "done"
    assert document["campaign"]["branch"] == DEMO_BRANCH
    titles = {c["title"] for c in document["crashes"]}
    assert "IndexError in parse_line (csvlite/reader.py)" in titles
    crash = next(c for c in document["crashes"] if c["exception_type"] == "IndexError")
    assert crash["new"] is True
    assert crash["status"] == "open"
    assert 0 < crash["found_after_s"] < 25
    # Triage ran before the campaign ended: reproduced every time, bisected, blamed.
    assert crash["reliability"] == 1.0
    assert crash["introduced"]["confidence"] == "high"
    assert crash["blame"]["path"] == "csvlite/reader.py"
    assert crash["minimized"] is not None
    harnesses = {h["name"]: h for h in document["harnesses"]}
    assert harnesses["fuzz/fuzz_reader.py"]["execs"] > 1000
    # stdout: the crash lines, then the report's path as the last line.
    last = result.stdout.strip().splitlines()[-1]
    assert last == document["report"]
    report = Path(last).read_text()
    assert "IndexError in parse_line" in report
    assert "Content-Security-Policy" in report

    # A second campaign sees the same group again (found again, or at least re-checked at
    # its start): not new, and the gate "new" passes.
    out2 = tmp_path / "again.json"
    again = fuzzorch(
        home, "run", str(source), "--branch", DEMO_BRANCH, "--duration", "10",
        "--workers", "2", "--json", str(out2), "--fail-on", "new",
    )  # fmt: skip
    document2 = _summary(out2, again)
    seen_again = [c for c in document2["crashes"] if c["exception_type"] == "IndexError"]
    assert seen_again
    assert all(not c["new"] for c in seen_again)
    assert seen_again[0]["id"] == crash["id"]
    assert again.returncode == (1 if any(c["new"] for c in document2["crashes"]) else 0)


def test_main_has_the_fix_and_passes_the_gate(example: tuple[Path, Path], tmp_path: Path) -> None:
    source, home = example
    out = tmp_path / "main.json"
    result = fuzzorch(
        home, "run", str(source), "--branch", "main", "--duration", "10", "--workers", "2",
        "--json", str(out),
    )  # fmt: skip
    document = _summary(out, result)
    # The release branch's bug entered on release/1.0 only: main's history does not hold its
    # introducing commit, so main's campaign neither finds nor re-checks it.
    assert all(c["exception_type"] != "IndexError" for c in document["crashes"])
    still_open = [c for c in document["crashes"] if c["status"] == "open"]
    assert result.returncode == (1 if still_open else 0)


def test_an_unknown_branch_exits_2(example: tuple[Path, Path]) -> None:
    source, home = example
    result = fuzzorch(home, "run", str(source), "--branch", "release/9.9", "--duration", "10")
    assert result.returncode == 2
    assert "'release/9.9'" in result.stderr

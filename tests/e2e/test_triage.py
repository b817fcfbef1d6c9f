"""Triage end to end: ``fuzzorch run`` on a repository with a scripted history.

Bug A enters at c2 (before its harness exists: bisection transplants the harness; c4 cannot
be built and is skipped); release/1.0 keeps it, main fixes it at c10. Bug B enters main at
c8 through a Hypothesis test. A flaky harness arrives at c11 with the module it needs. One
campaign on the release branch, then one on main, must name every introducing commit, mark
A fixed on main (with its fix commit) and still open on the release branch, and report the
flaky crash as flaky, within the bisection step bound.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.e2e.test_run_cli import SCHEMA, fuzzorch
from tests.support.triage_repo import RELEASE, build_triage_repo
from workers.git import Git


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, str]]:
    """The repository, a home shared by the module's campaigns, and the commits by label."""
    root = tmp_path_factory.mktemp("triage")
    shas = build_triage_repo(root / "calc")
    return root / "calc", root / "home", shas


@pytest.fixture(scope="module")
def campaigns(history: tuple[Path, Path, dict[str, str]]) -> dict[str, Any]:
    """The release campaign, then the main campaign: their summaries and exit codes."""
    source, home, _shas = history
    results: dict[str, Any] = {}
    for branch in (RELEASE, "main"):
        out = home.parent / f"{branch.replace('/', '-')}.json"
        # Short slices: every harness gets its turn on the two workers.
        result = fuzzorch(
            home, "run", str(source), "--branch", branch, "--duration", "24", "--workers", "2",
            "--json", str(out), slice_seconds=6,
        )  # fmt: skip
        assert out.exists(), result.stderr[-6000:]
        document = json.loads(out.read_text())
        jsonschema.validate(document, SCHEMA)
        results[branch] = {"summary": document, "code": result.returncode, "run": result}
    return results


def _by_type(document: dict[str, Any], exception_type: str) -> dict[str, Any]:
    found = [c for c in document["crashes"] if c["exception_type"] == exception_type]
    assert len(found) == 1, [c["title"] for c in document["crashes"]]
    return found[0]


def _bound(distance: int) -> int:
    return 2 * math.ceil(math.log2(distance)) + 3


def _distance(source: Path, newest: str, last_good: str) -> int:
    history = Git(allow_local=True).first_parent_history(source / ".git", newest)
    return history.index(last_good)


def test_the_release_campaign_bisects_bug_a_to_its_commit(
    history: tuple[Path, Path, dict[str, str]], campaigns: dict[str, Any]
) -> None:
    source, _home, shas = history
    release = campaigns[RELEASE]
    assert release["code"] == 1, release["run"].stderr[-4000:]  # bug A is open: the gate fails
    bug_a = _by_type(release["summary"], "IndexError")
    assert bug_a["new"] is True
    assert bug_a["status"] == "open"
    assert bug_a["reliability"] == 1.0
    introduced = bug_a["introduced"]
    assert (introduced["commit"], introduced["last_good"]) == (shas["c2"], shas["c1"])
    assert introduced["confidence"] == "high"
    # r1 c7 c6 c5 c4 c3 c2 c1: gallop 1, 2, 4 (c4 cannot be built: skipped), 8; binary
    # search c3, c2, c1; two re-tests of c1.
    distance = _distance(source, shas["r1"], shas["c1"])
    assert distance == 7
    assert introduced["steps"] == 8 <= _bound(distance)
    # The crashing line, blamed at the crash commit: unchanged since the first commit (the
    # bug is a removed check), as git blame says.
    assert bug_a["blame"]["path"] == "calc/parse.py"
    assert bug_a["blame"]["line"] == 8
    assert bug_a["blame"]["commit"] == shas["c0"]
    assert bug_a["minimized"] is not None
    # The report says the same.
    report = Path(release["run"].stdout.strip().splitlines()[-1]).read_text()
    assert shas["c2"][:12] in report


def test_the_main_campaign_finds_bug_b_and_the_flaky_crash_and_marks_a_fixed(
    history: tuple[Path, Path, dict[str, str]], campaigns: dict[str, Any]
) -> None:
    source, _home, shas = history
    main = campaigns["main"]["summary"]
    bug_b = _by_type(main, "ZeroDivisionError")
    assert bug_b["status"] == "open"
    assert (bug_b["introduced"]["commit"], bug_b["introduced"]["last_good"]) == (
        shas["c8"], shas["c7"],
    )  # fmt: skip
    distance = _distance(source, shas["c11"], shas["c7"])
    assert bug_b["introduced"]["steps"] <= _bound(distance)
    assert bug_b["introduced"]["steps"] == 6  # c10, c9, c7 (gallop), c8, c7 twice

    flaky = _by_type(main, "RuntimeError")
    assert flaky["status"] == "flaky"
    assert flaky["reliability"] is not None
    assert flaky["reliability"] < 0.5
    assert flaky["introduced"]["commit"] == shas["c11"]
    assert flaky["introduced"]["confidence"] == "low"
    assert "harness absent before" in flaky["introduced"]["note"]

    bug_a = _by_type(main, "IndexError")
    assert bug_a["new"] is False
    assert bug_a["found_after_s"] is None  # re-checked, not found by fuzzing
    assert bug_a["status"] == "fixed"
    assert (bug_a["fixed"]["commit"], bug_a["fixed"]["last_crashing"]) == (
        shas["c10"], shas["c9"],
    )  # fmt: skip
    assert bug_a["fixed"]["confidence"] == "high"
    # Bug B is open on main: the gate fails there too.
    assert campaigns["main"]["code"] == 1


def test_bug_a_stays_open_on_the_release_branch(
    history: tuple[Path, Path, dict[str, str]], campaigns: dict[str, Any]
) -> None:
    _source, home, _shas = history
    bug_a = _by_type(campaigns["main"]["summary"], "IndexError")
    shown = fuzzorch(home, "crash", "show", bug_a["id"], "--json")
    assert shown.returncode == 0, shown.stderr
    document = json.loads(shown.stdout)
    assert document["branches"][RELEASE]["status"] == "open"
    assert document["branches"]["main"]["status"] == "fixed"


def test_the_hypothesis_bug_keeps_its_falsifying_example(
    history: tuple[Path, Path, dict[str, str]], campaigns: dict[str, Any]
) -> None:
    _source, home, _shas = history
    bug_b = _by_type(campaigns["main"]["summary"], "ZeroDivisionError")
    shown = fuzzorch(home, "crash", "show", bug_b["id"], "--json")
    document = json.loads(shown.stdout)
    assert "test_ratio_is_a_number(" in document["falsifying_example"]
    assert "b=0" in document["falsifying_example"]
    assert document["minimized"] is not None


def test_every_report_format_comes_out_of_fuzzorch_report(
    history: tuple[Path, Path, dict[str, str]], campaigns: dict[str, Any], tmp_path: Path
) -> None:
    _source, home, shas = history
    campaign_id = campaigns["main"]["summary"]["campaign"]["id"]
    sarif_schema = json.loads(
        (Path(__file__).parents[1] / "data/sarif-schema-2.1.0.json").read_text()
    )
    outputs = {}
    for fmt, name in (("json", "s.json"), ("md", "s.md"), ("sarif", "s.sarif")):
        result = fuzzorch(home, "report", campaign_id, "--format", fmt, "--out",
                          str(tmp_path / name))  # fmt: skip
        assert result.returncode == 0, result.stderr
        outputs[fmt] = (tmp_path / name).read_text()
    jsonschema.validate(json.loads(outputs["json"]), SCHEMA)
    sarif = json.loads(outputs["sarif"])
    jsonschema.Draft4Validator(sarif_schema).validate(sarif)
    results = sarif["runs"][0]["results"]
    assert {r["ruleId"] for r in results} == {
        c["signature"] for c in campaigns["main"]["summary"]["crashes"]
    }
    zero = next(r for r in results if "ZeroDivisionError" in r["message"]["text"])
    location = zero["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == "calc/num.py"
    assert "| ZeroDivisionError in ratio (calc/num.py)" in outputs["md"].replace("\\", "")
    folder = tmp_path / "html"
    html = fuzzorch(home, "report", campaign_id, "--format", "html", "--out", str(folder))
    assert html.returncode == 0, html.stderr
    index = (folder / "index.html").read_text()
    assert shas["c10"][:12] in index  # bug A's fix commit
    crash_pages = sorted(folder.glob("crash-*.html"))
    assert len(crash_pages) == 3
    assert any("Failing test case" in page.read_text() for page in crash_pages)

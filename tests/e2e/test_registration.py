"""Registering fixture repositories through the installed CLI, checked through ``--json``."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support import fixture_repos
from tests.support.fixture_repos import Fixture

FUZZORCH = str(Path(sys.executable).with_name("fuzzorch"))


def run(
    args: list[str], home: Path, *, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the installed CLI on an embedded home; never inherit FUZZORCH_* settings."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("FUZZORCH_")}
    return subprocess.run(
        [FUZZORCH, *args],
        env={**base, "FUZZORCH_HOME": str(home), **(env or {})},
        cwd=home.parent,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def run_json(args: list[str], home: Path) -> Any:
    """Run a verb with --json and parse its stdout; fail with stderr if it failed."""
    result = run([*args, "--json"], home)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def _found(document: dict[str, Any]) -> dict[str, str]:
    return {h["name"]: h["kind"] for h in document["harnesses"]}


def _skipped(document: dict[str, Any]) -> dict[str, str]:
    return {s["name"]: s["reason"] for s in document["skipped"]}


def test_oss_fuzz_style_repository(tmp_path: Path, home: Path) -> None:
    fixture = fixture_repos.oss_fuzz_style(tmp_path)
    added = run_json(["repo", "add", str(fixture.path)], home)
    assert added["name"] == "oss-fuzz-style"
    assert added["source"] == str(fixture.path.resolve())
    assert (added["default_branch"], added["head_commit"]) == ("main", fixture.commits[1])
    assert _found(added) == {
        "fuzz/helpers.py": "atheris",
        "fuzz/records_fuzzer.py": "atheris",
        "fuzz_parse.py": "atheris",
    }
    # Two seeds from fuzz_parse's folder, three from records_fuzzer's zip: corpora are per
    # harness, so the zip's copy of a folder seed is new there.
    assert added["seeds"] == {"added": 5, "present": 0}

    at_first = run_json(["harness", "list", "oss-fuzz-style", "--ref", fixture.commits[0]], home)
    assert at_first["commit"] == fixture.commits[0]
    assert _found(at_first) == {"fuzz_parse.py": "atheris"}
    assert "skipped" not in at_first

    listed = run_json(["repo", "list"], home)
    assert [r["name"] for r in listed] == ["oss-fuzz-style"]


def test_mixed_tests_repository(tmp_path: Path, home: Path) -> None:
    fixture = fixture_repos.mixed_tests(tmp_path)
    run_json(["repo", "add", str(fixture.path), "--name", "mixed"], home)
    everything = run_json(["harness", "list", "mixed", "--all"], home)
    props = "tests/test_props.py::"
    assert _found(everything) == {
        f"{props}test_parse_never_fails": "hypothesis",
        f"{props}test_stacked": "hypothesis",
        f"{props}test_aliased": "hypothesis",
        f"{props}TestParser::test_method": "hypothesis",
    }
    assert _skipped(everything) == {
        f"{props}test_parametrized": "unsupported",
        f"{props}test_needs_fixture": "unsupported",
        "tests/test_stateful.py::Stack": "unsupported",
    }
    details = {s["name"]: s["detail"] for s in everything["skipped"]}
    assert "tmp_path" in details[f"{props}test_needs_fixture"]


def test_configured_repository(tmp_path: Path, home: Path) -> None:
    fixture = fixture_repos.configured(tmp_path)
    added = run_json(["repo", "add", str(fixture.path)], home)
    options = {h["name"]: h["options"] for h in added["harnesses"]}
    assert options == {
        "checks/parse_check.py": {"max_len": 256, "timeout": 5.0, "seeds": "checks/seeds"},
        "tests/test_props.py::test_parse_never_fails": {"timeout": 5.0},
    }
    assert _skipped(added) == {"tests/test_props.py::test_stacked": "disabled"}
    assert added["seeds"]["added"] == 1


def test_hostile_repository_is_collected_with_reasons(tmp_path: Path, home: Path) -> None:
    fixture = fixture_repos.hostile(tmp_path)
    added = run_json(["repo", "add", str(fixture.path)], home)
    assert _found(added) == {"fuzz_good.py": "atheris"}
    assert _skipped(added) == {
        "fuzz_syntax.py": "syntax-error",
        "fuzz_binary.py": "not-utf8",
        "fuzz_huge.py": "too-large",
        "fuzz_etc.py": "symlink-outside",
        "fuzz/escape.py": "symlink-outside",
        "tests/test_bad.py": "syntax-error",
    }


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("--upload-pack=touch /tmp/fuzzorch-pwned", "--upload-pack"),
        ("ext::sh -c touch% /tmp/fuzzorch-pwned", "ext::"),
        ("/no/such/repository", "/no/such/repository"),
        ("https://127.0.0.1:1/repo.git", "127.0.0.1:1"),
    ],
)
def test_hostile_and_missing_sources_are_refused(home: Path, source: str, message: str) -> None:
    result = run(["repo", "add", source], home)
    assert result.returncode in (2, 3), result.stderr
    assert message in result.stderr
    assert not Path("/tmp/fuzzorch-pwned").exists()
    listed = run_json(["repo", "list"], home)
    assert listed == []
    assert not any((home / "git").glob("*")) if (home / "git").exists() else True


def test_option_injection_sources_exit_2(home: Path) -> None:
    result = run(["repo", "add", "--", "--upload-pack=id"], home)
    assert result.returncode == 2
    assert "'--upload-pack=id'" in result.stderr


@pytest.mark.parametrize("name", ["has space", "a/b", "-x", "UPPER"])
def test_bad_names_are_refused_and_nothing_is_stored(tmp_path: Path, home: Path, name: str) -> None:
    fixture = fixture_repos.mixed_tests(tmp_path)
    result = run(["repo", "add", str(fixture.path), "--name", name], home)
    assert result.returncode == 2
    assert repr(name) in result.stderr
    assert run_json(["repo", "list"], home) == []


def test_bad_refs_are_refused(tmp_path: Path, home: Path) -> None:
    fixture = fixture_repos.mixed_tests(tmp_path)
    run_json(["repo", "add", str(fixture.path), "--name", "mixed"], home)
    for ref in ["--output=/tmp/x", "main..other", "no-such-branch"]:
        result = run(["harness", "list", "mixed", "--ref", ref], home)
        assert result.returncode == 2, (ref, result.stderr)
        assert repr(ref) in result.stderr


def test_a_second_registration_of_the_same_source_conflicts(tmp_path: Path, home: Path) -> None:
    fixture = fixture_repos.mixed_tests(tmp_path)
    run_json(["repo", "add", str(fixture.path)], home)
    result = run(["repo", "add", str(fixture.path) + "/", "--name", "other"], home)
    assert result.returncode == 2
    assert "registered already as 'mixed-tests'" in result.stderr


def test_a_bad_configuration_fails_registration_and_stores_nothing(
    tmp_path: Path, home: Path
) -> None:
    fixture: Fixture = fixture_repos.mixed_tests(tmp_path)
    fixture.repo.commit({"pyproject.toml": "[tool.fuzzorch]\ninstal = ['pip install .']\n"})
    result = run(["repo", "add", str(fixture.path)], home)
    assert result.returncode == 2
    assert "unknown key 'instal'" in result.stderr
    assert run_json(["repo", "list"], home) == []
    assert not (home / "git" / "mixed-tests.git").exists()


def test_corpus_import_and_export_round_trip(tmp_path: Path, home: Path) -> None:
    fixture = fixture_repos.oss_fuzz_style(tmp_path)
    run_json(["repo", "add", str(fixture.path), "--name", "ossf"], home)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "a").write_bytes(b"first")
    (mine / "b").write_bytes(b"first")  # a duplicate by content
    (mine / "sub").mkdir()
    (mine / "sub" / "c").write_bytes(b"x" * 10)
    (mine / "big").write_bytes(b"y" * 5000)
    (mine / "link").symlink_to("/etc/passwd")
    imported = run_json(
        [
            "corpus",
            "import",
            "ossf",
            str(mine),
            "--harness",
            "fuzz_parse.py",
            "--max-unit-bytes",
            "1000",
        ],
        home,
    )
    assert imported == {"added": 2, "present": 1, "skipped": 0}
    out = tmp_path / "out"
    exported = run_json(["corpus", "export", "ossf", str(out), "--harness", "fuzz_parse.py"], home)
    # The two seeds from registration plus the two new inputs.
    assert exported["added"] == 4
    contents = {p.name: p.read_bytes() for p in out.iterdir()}
    assert all(hashlib.sha1(v).hexdigest() == k for k, v in contents.items())
    assert set(contents.values()) == {b"a,b", b"c", b"first", b"x" * 10}
    again = run_json(["corpus", "export", "ossf", str(out), "--harness", "fuzz_parse.py"], home)
    assert again == {"added": 0, "present": 4, "skipped": 0}


def test_corpus_verbs_name_an_unknown_harness(tmp_path: Path, home: Path) -> None:
    fixture = fixture_repos.oss_fuzz_style(tmp_path)
    run_json(["repo", "add", str(fixture.path), "--name", "ossf"], home)
    result = run(["corpus", "export", "ossf", str(tmp_path / "o"), "--harness", "nope.py"], home)
    assert result.returncode == 2
    assert "no harness 'nope.py'" in result.stderr
    assert "'fuzz_parse.py'" in result.stderr

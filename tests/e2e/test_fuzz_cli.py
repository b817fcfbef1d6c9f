"""``fuzzorch fuzz`` end to end: real git, sandbox, environment build and engines."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from textwrap import dedent
from typing import Any

import jsonschema
import pytest

from tests.support.gitrepo import GitRepo

FUZZORCH = str(Path(sys.executable).with_name("fuzzorch"))
SCHEMA = json.loads(
    (Path(__file__).parents[2] / "orchestrator/schemas/fuzz-result.schema.json").read_text()
)

PARSER = dedent(
    """
    def unescape(s: bytes) -> bytes:
        out = bytearray()
        i = 0
        while i < len(s):
            if s[i] == 92:
                out.append(s[i + 1])  # a trailing backslash reads past the end
                i += 2
            else:
                out.append(s[i])
                i += 1
        return bytes(out)


    def parse(data: bytes) -> list[bytes]:
        return [unescape(field) for field in data.split(b",")]


    def classify(data: bytes) -> str:
        if data.startswith(b"{"):
            return "object" if data.endswith(b"}") else "broken"
        if data[:1].isdigit():
            return "number"
        return "text" if data.isascii() else "binary"
    """
)
HARNESS = dedent(
    """
    import sys

    import atheris

    with atheris.instrument_imports():
        import minipkg.parser


    def TestOneInput(data):
        minipkg.parser.{function}(data)


    if __name__ == "__main__":
        atheris.Setup(sys.argv, TestOneInput)
        atheris.Fuzz()
    """
)
PROPERTIES = dedent(
    """
    from hypothesis import given, strategies as st

    from minipkg.parser import parse


    @given(st.binary())
    def test_parse(data):
        parse(data)
    """
)


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A target repository with a planted bug, and a FUZZORCH_HOME shared by the tests."""
    root = tmp_path_factory.mktemp("fuzz-cli")
    repo = GitRepo.init(root / "minipkg")
    repo.commit(
        {
            "pyproject.toml": dedent(
                """
                [project]
                name = "minipkg"
                version = "0.1"
                [tool.setuptools]
                packages = ["minipkg"]
                """
            ),
            "minipkg/__init__.py": "",
            "minipkg/parser.py": PARSER,
            "fuzz_parse.py": HARNESS.format(function="parse"),
            "fuzz_classify.py": HARNESS.format(function="classify"),
            "tests/test_props.py": PROPERTIES,
        }
    )
    return repo.path, root / "home"


def fuzz(target: tuple[Path, Path], *args: str) -> tuple[subprocess.CompletedProcess[str], Any]:
    """Run ``fuzzorch fuzz`` on the target; return the process and its --json document."""
    source, home = target
    out = home.parent / "result.json"
    out.unlink(missing_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FUZZORCH_")}
    result = subprocess.run(
        [FUZZORCH, "fuzz", str(source), *args, "--json", str(out)],
        env={**env, "FUZZORCH_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    document = json.loads(out.read_text()) if out.exists() else None
    if document is not None:
        jsonschema.validate(document, SCHEMA)
    return result, document


def test_an_atheris_harness_finds_the_planted_bug(target: tuple[Path, Path]) -> None:
    result, document = fuzz(target, "--harness", "fuzz_parse.py", "--duration", "15")
    assert result.returncode == 1, result.stderr[-3000:]
    assert document["outcome"] == "crashed"
    (crash,) = document["crashes"]
    assert crash["kind"] == "exception"
    assert crash["exception_type"] == "IndexError"
    assert crash["frames"][0] == "minipkg/parser.py:unescape"
    assert crash["title"] == "IndexError in unescape (minipkg/parser.py)"
    assert crash["testcase"].startswith("crashes/minipkg/")
    assert 0 < crash["found_after_s"] < 15
    assert document["protections"]["network_isolated"] is True
    # stdout: the summary, naming the crash.
    assert "IndexError in unescape" in result.stdout


def test_a_hypothesis_test_finds_the_same_bug(target: tuple[Path, Path]) -> None:
    atheris_result, atheris_doc = fuzz(target, "--harness", "fuzz_parse.py", "--runs", "20000")
    result, document = fuzz(
        target, "--harness", "tests/test_props.py::test_parse", "--duration", "15"
    )
    assert result.returncode == 1, result.stderr[-3000:]
    (crash,) = document["crashes"]
    assert document["harness"]["kind"] == "hypothesis"
    assert crash["frames"][0] == "minipkg/parser.py:unescape"
    # One bug, one signature, whichever kind of harness hit it.
    assert atheris_result.returncode == 1
    assert crash["signature"] == atheris_doc["crashes"][0]["signature"]


def test_a_clean_harness_exits_0_and_grows_its_corpus(target: tuple[Path, Path]) -> None:
    result, document = fuzz(
        target, "--harness", "fuzz_classify.py", "--runs", "3000", "--seed", "3"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert document["outcome"] == "ok"
    assert document["crashes"] == []
    assert document["harness"]["execs"] >= 3000
    assert document["harness"]["corpus_size"] >= 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--harness", "nope.py", "--runs", "10"], "no harness 'nope.py'"),
        (["--harness", "fuzz_parse.py"], "exactly one of --duration"),
        (["--harness", "fuzz_parse.py", "--runs", "5", "--duration", "5"], "exactly one of"),
        (["--harness", "fuzz_parse.py", "--runs", "5", "--ref", "-x"], "'-x'"),
    ],
)
def test_bad_usage_exits_2_naming_the_value(
    target: tuple[Path, Path], args: list[str], message: str
) -> None:
    result, document = fuzz(target, *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert document is None

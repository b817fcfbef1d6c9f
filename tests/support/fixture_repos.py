"""Fixture repositories that look like real projects, built with real git.

Each builder returns the repository and the commits it made, so tests can ask for the
harnesses at any point of its history.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path
from textwrap import dedent

from tests.support.gitrepo import GitRepo, Symlink

PARSER_MODULE = dedent(
    """
    def parse(data: bytes) -> list[bytes]:
        '''Split a record into fields.'''
        return data.split(b",")
    """
)

ATHERIS_SCRIPT = dedent(
    """
    import sys

    import atheris

    with atheris.instrument_imports():
        import minipkg.parser


    def TestOneInput(data):
        minipkg.parser.parse(data)


    if __name__ == "__main__":
        atheris.Setup(sys.argv, TestOneInput)
        atheris.Fuzz()
    """
)

PLAIN_TESTS = dedent(
    """
    import pytest

    def test_split():
        assert True

    @pytest.mark.parametrize("x", [1, 2])
    def test_param(x):
        assert x
    """
)

PROPERTY_TESTS = dedent(
    """
    import pytest
    import hypothesis
    import hypothesis as hyp
    from hypothesis import example, settings, strategies as st
    from hypothesis import given
    from hypothesis import given as for_all

    from minipkg.parser import parse


    @given(st.binary())
    def test_parse_never_fails(data):
        parse(data)


    @settings(max_examples=50)
    @example(b"a,b")
    @hyp.given(st.binary())
    @pytest.mark.slow
    def test_stacked(data):
        parse(data)


    @for_all(data=st.binary())
    def test_aliased(data):
        parse(data)


    class TestParser:
        @hypothesis.given(st.binary())
        def test_method(self, data):
            parse(data)


    @given(st.integers())
    @pytest.mark.parametrize("n", [1, 2])
    def test_parametrized(x, n):
        pass


    @given(st.integers())
    def test_needs_fixture(tmp_path, x):
        pass
    """
)

STATEFUL_TESTS = dedent(
    """
    from hypothesis import given
    from hypothesis.stateful import RuleBasedStateMachine, rule


    class Stack(RuleBasedStateMachine):
        @rule()
        def push(self):
            pass


    TestStack = Stack.TestCase
    """
)


def zip_bytes(members: dict[str, bytes]) -> bytes:
    """A zip archive holding ``members``."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


@dataclass(frozen=True)
class Fixture:
    """A fixture repository and its commits, oldest first."""

    repo: GitRepo
    commits: list[str]

    @property
    def path(self) -> Path:
        """The repository's working folder."""
        return self.repo.path


def oss_fuzz_style(root: Path) -> Fixture:
    """``fuzz_*.py`` at the top level and in ``fuzz/``, with seed corpora and a dictionary."""
    repo = GitRepo.init(root / "oss-fuzz-style")
    first = repo.commit(
        {
            "pyproject.toml": "[project]\nname = 'minipkg'\nversion = '0.1'\n",
            "minipkg/__init__.py": "",
            "minipkg/parser.py": PARSER_MODULE,
            "fuzz_parse.py": ATHERIS_SCRIPT,
            "fuzz_parse_seed_corpus/one": b"a,b",
            "fuzz_parse_seed_corpus/two": b"c",
            "fuzz_parse.dict": '"a"\n","\n',
        },
        message="Add the parser and its first fuzzer",
    )
    second = repo.commit(
        {
            "fuzz/records_fuzzer.py": ATHERIS_SCRIPT,
            "fuzz/records_fuzzer_seed_corpus.zip": zip_bytes(
                {"r1": b"x,y,z", "r2": b"", "dup": b"a,b"}
            ),
            "fuzz/helpers.py": "def TestOneInput(data):\n    pass\n",  # in fuzz/: a harness too
            "docs/conf.py": "project = 'minipkg'\n",
        },
        message="Fuzz records too",
    )
    return Fixture(repo, [first, second])


def mixed_tests(root: Path) -> Fixture:
    """A package whose ``tests/`` mixes plain pytest, Hypothesis and stateful tests."""
    repo = GitRepo.init(root / "mixed-tests")
    first = repo.commit(
        {
            "pyproject.toml": "[project]\nname = 'minipkg'\nversion = '0.1'\n",
            "minipkg/__init__.py": "",
            "minipkg/parser.py": PARSER_MODULE,
            "tests/test_plain.py": PLAIN_TESTS,
            "tests/test_props.py": PROPERTY_TESTS,
            "tests/test_stateful.py": STATEFUL_TESTS,
            "tests/conftest.py": "import pytest\n",
        },
        message="Tests of every kind",
    )
    return Fixture(repo, [first])


def configured(root: Path) -> Fixture:
    """A repository whose ``[tool.fuzzorch]`` lists its harnesses and install commands."""
    repo = GitRepo.init(root / "configured")
    first = repo.commit(
        {
            "pyproject.toml": dedent(
                """
                [project]
                name = "minipkg"
                version = "0.1"

                [tool.fuzzorch]
                install = ["pip install -e ."]

                [tool.fuzzorch.defaults]
                timeout = 5

                [[tool.fuzzorch.harness]]
                path = "checks/parse_check.py"
                max_len = 256
                seeds = "checks/seeds"

                [[tool.fuzzorch.harness]]
                test = "tests/test_props.py::test_parse_never_fails"

                [[tool.fuzzorch.harness]]
                test = "tests/test_props.py::test_stacked"
                enabled = false
                """
            ),
            "minipkg/__init__.py": "",
            "minipkg/parser.py": PARSER_MODULE,
            "checks/parse_check.py": ATHERIS_SCRIPT,
            "checks/seeds/s1": b"seed,one",
            "fuzz_ignored.py": ATHERIS_SCRIPT,
            "tests/test_props.py": PROPERTY_TESTS,
        },
        message="Configure fuzzorch",
    )
    return Fixture(repo, [first])


def hostile(root: Path, *, huge_bytes: int = 50 * 1024 * 1024) -> Fixture:
    """Syntax errors, binary ``.py``, a huge file and a symlink to /etc, beside one good harness."""
    repo = GitRepo.init(root / "hostile")
    first = repo.commit(
        {
            "fuzz_good.py": ATHERIS_SCRIPT,
            "fuzz_syntax.py": "import atheris\ndef TestOneInput(data:\n    pass\n",
            "fuzz_binary.py": b"import atheris\n\x00\xff\xfe\x80 binary garbage",
            "fuzz_huge.py": b"import atheris\n" + b"#" * huge_bytes,
            "fuzz_etc.py": Symlink("/etc/passwd"),
            "fuzz/escape.py": Symlink("../../../etc/hostname"),
            "tests/test_bad.py": "from hypothesis import given\n@given(\n",
            ".venv/lib/fuzz_vendored.py": ATHERIS_SCRIPT,
        },
        message="Hostile content",
    )
    return Fixture(repo, [first])

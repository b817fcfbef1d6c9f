"""Exported regression tests, run by pytest in a tiny project: red with the bug, green without.

The project (``src/`` layout) has ``ratio(a, b)`` dividing by zero when ``b == 0``; atheris
harnesses call ``atheris.Setup``/``Fuzz`` under ``__main__``, at module level, and one
decodes its input with ``FuzzedDataProvider``; a Hypothesis test file has a module-level
test and a class-based one. Each crash is exported the way ``fuzzorch crash export-test``
does, into ``tests/fuzzorch/``, and the project's own pytest runs them in a subprocess.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from textwrap import dedent

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harnesses.model import HarnessKind
from orchestrator.regression import default_test_path, regression_test

BUGGY = "def ratio(a, b):\n    return a / b\n"
FIXED = "def ratio(a, b):\n    return a / b if b else 0.0\n"

HARNESS_MAIN = dedent(
    """
    import sys

    import atheris

    with atheris.instrument_imports():
        from mylib.ratio import ratio


    def TestOneInput(data):
        if len(data) >= 2:
            ratio(data[0], data[1])


    def main():
        atheris.Setup(sys.argv, TestOneInput)
        atheris.Fuzz()


    if __name__ == "__main__":
        main()
    """
)
# Without the no-ops, importing this would start fuzzing (and exit the process).
HARNESS_MODULE_LEVEL = dedent(
    """
    import sys

    import atheris
    from mylib.ratio import ratio


    @atheris.instrument_func
    def TestOneInput(data):
        if len(data) >= 2:
            ratio(data[0], data[1])


    atheris.instrument_all()
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()
    """
)
HARNESS_PROVIDER = dedent(
    """
    import sys

    import atheris

    with atheris.instrument_imports(include=["mylib"]):
        from mylib.ratio import ratio

    atheris.enabled_hooks.add("RegEx")


    def TestOneInput(data):
        provider = atheris.FuzzedDataProvider(data)
        ratio(provider.ConsumeIntInRange(0, 10), provider.ConsumeIntInRange(0, 10))


    if __name__ == "__main__":
        atheris.Setup(sys.argv, TestOneInput)
        atheris.Fuzz()
    """
)
TESTS = dedent(
    """
    from hypothesis import given, strategies as st

    from mylib.ratio import ratio


    @given(st.integers(0, 10), st.integers(0, 10))
    def test_ratio_is_a_number(a, b):
        assert ratio(a, b) >= 0


    class TestRatio:
        @given(a=st.integers(0, 10), b=st.integers(0, 10))
        def test_ratio_method(self, a, b):
            assert ratio(a, b) >= 0
    """
)
EXAMPLE = "Failing test case: {}(\n    a=0,\n    b=0,\n)\n"
METHOD_EXAMPLE = (
    "Failing test case: test_ratio_method(\n"
    "    self=<test_ratio.TestRatio object at 0x7f0000000000>,\n"
    "    a=0,\n"
    "    b=0,  # or any other generated value\n"
    ")\n"
    "Explanation:\n"
    "    These lines were always and only run by failing examples:"
)


@settings(database=None)
@given(st.integers(0, 10), st.integers(0, 10))
def _same_strategy(a: int, b: int) -> None:
    # fuzz_one_input reads a buffer by the strategy alone: this finds the target's testcases.
    assert a / b >= 0


def _crashing_buffer() -> bytes:
    fuzz_one_input = _same_strategy.hypothesis.fuzz_one_input  # type: ignore[attr-defined]
    rng = random.Random(0)
    for _ in range(10_000):
        buffer = rng.randbytes(16)
        try:
            fuzz_one_input(buffer)
        except ZeroDivisionError:
            return buffer
    raise AssertionError("no crashing buffer found")


@dataclass(frozen=True)
class Crash:
    group_id: str
    kind: HarnessKind
    harness: str
    testcase: bytes
    example: str | None = None

    @property
    def path(self) -> str:
        return self.harness.split("::")[0]


def _crashes() -> list[Crash]:
    buffer = _crashing_buffer()
    function = "tests/test_ratio.py::test_ratio_is_a_number"
    method = "tests/test_ratio.py::TestRatio::test_ratio_method"
    return [
        Crash("crash-main", HarnessKind.ATHERIS, "fuzz/fuzz_main.py", b"\x05\x00"),
        Crash("crash-module", HarnessKind.ATHERIS, "fuzz/fuzz_module_level.py", b"\x05\x00"),
        Crash("crash-provider", HarnessKind.ATHERIS, "fuzz/fuzz_provider.py", b"\x00" * 8),
        Crash(
            "crash-function-example",
            HarnessKind.HYPOTHESIS,
            function,
            b"minimized choices",
            EXAMPLE.format("test_ratio_is_a_number"),
        ),
        Crash("crash-method-example", HarnessKind.HYPOTHESIS, method, b"", METHOD_EXAMPLE),
        Crash("crash-function-buffer", HarnessKind.HYPOTHESIS, function, buffer),
        # Not a literal call: replayed from the buffer, and never pasted into the test.
        Crash(
            "crash-method-buffer",
            HarnessKind.HYPOTHESIS,
            method,
            buffer,
            "Failing test case: test_ratio_method(a=__import__('os').getpid(), b=0)",
        ),
    ]


@dataclass(frozen=True)
class Project:
    root: Path
    crashes: list[Crash]

    def run(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """The project's pytest (this interpreter, as the developer's venv) in a subprocess."""
        return subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rA", *args],
            capture_output=True,
            text=True,
            cwd=self.root,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **(env or {})},
            timeout=120,
            check=False,
        )

    def fix(self) -> None:
        (self.root / "src" / "mylib" / "ratio.py").write_text(FIXED)


@pytest.fixture
def project(tmp_path: Path) -> Project:
    root = tmp_path / "project"
    files = {
        # The project's own pytest configuration (rootdir), not fuzzorch's.
        "pyproject.toml": "[tool.pytest.ini_options]\naddopts = []\n",
        "src/mylib/__init__.py": "",
        "src/mylib/ratio.py": BUGGY,
        "fuzz/fuzz_main.py": HARNESS_MAIN,
        "fuzz/fuzz_module_level.py": HARNESS_MODULE_LEVEL,
        "fuzz/fuzz_provider.py": HARNESS_PROVIDER,
        "tests/test_ratio.py": TESTS,
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    crashes = _crashes()
    for crash in crashes:
        source = regression_test(
            kind=crash.kind,
            harness=crash.harness,
            path=crash.path,
            testcase=crash.testcase,
            falsifying_example=crash.example,
            group_id=crash.group_id,
            title=f'ZeroDivisionError in ratio """ {crash.group_id}\nimport os',
            signature="0" * 40,
        )
        target = root / default_test_path(crash.group_id)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(source)
    return Project(root, crashes)


def _outcomes(result: subprocess.CompletedProcess[str]) -> dict[str, str]:
    """Each generated test's outcome, from ``-rA``'s short summary."""
    outcomes = {}
    for line in result.stdout.splitlines():
        word, _, rest = line.partition(" ")
        if word in ("PASSED", "FAILED", "SKIPPED", "ERROR") and "test_crash_" in rest:
            outcomes[rest.split("test_crash_")[1].split(".py")[0]] = word
    return outcomes


def test_the_exported_tests_fail_with_the_bug_and_pass_once_fixed(project: Project) -> None:
    names = {c.group_id.removeprefix("crash-").replace("-", "_") for c in project.crashes}
    red = project.run("tests/fuzzorch")
    assert _outcomes(red) == dict.fromkeys(names, "FAILED"), red.stdout + red.stderr
    for crash in project.crashes:
        assert f"fuzzorch crash group {crash.group_id} reproduces" in red.stdout
    assert "ZeroDivisionError" in red.stdout
    assert "getpid" not in (project.root / default_test_path("crash-method-buffer")).read_text()

    project.fix()
    green = project.run("tests/fuzzorch")
    assert _outcomes(green) == dict.fromkeys(names, "PASSED"), green.stdout + green.stderr


def test_without_atheris_the_harnesses_import_a_stub(project: Project, tmp_path: Path) -> None:
    # Shadows the installed atheris: ``import atheris`` fails as if it were not installed.
    hidden = tmp_path / "hidden"
    hidden.mkdir()
    (hidden / "atheris.py").write_text("raise ImportError('atheris hidden by the test')\n")
    env = {"PYTHONPATH": str(hidden)}
    atheris_tests = [
        default_test_path(c.group_id) for c in project.crashes if c.kind is HarnessKind.ATHERIS
    ]
    red = project.run(*atheris_tests, env=env)
    expected = {"main": "FAILED", "module": "FAILED", "provider": "SKIPPED"}
    assert _outcomes(red) == expected, red.stdout + red.stderr
    # The skip names the reason: only atheris can decode a FuzzedDataProvider input.
    assert "decodes its input with atheris" in red.stdout

    project.fix()
    green = project.run(*atheris_tests, env=env)
    assert _outcomes(green) == {"main": "PASSED", "module": "PASSED", "provider": "SKIPPED"}


def test_the_root_can_be_given_when_the_test_lives_elsewhere(
    project: Project, tmp_path: Path
) -> None:
    outside = tmp_path / "elsewhere" / "test_crash_moved.py"
    outside.parent.mkdir()
    outside.write_text((project.root / default_test_path("crash-main")).read_text())
    lost = project.run(str(outside))
    assert "set FUZZORCH_REPO_ROOT" in lost.stdout
    found = project.run(str(outside), env={"FUZZORCH_REPO_ROOT": str(project.root)})
    assert "fuzzorch crash group crash-main reproduces" in found.stdout


def test_the_exported_tests_pass_the_linter(project: Project) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "ruff",
            "check",
            "--isolated",
            "--no-cache",
            "--select",
            "E,F,W,I,B,UP,SIM,RUF,PL",
            str(project.root / "tests" / "fuzzorch"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr

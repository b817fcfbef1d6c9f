"""Discovery rules on small in-memory trees: what is found, what is skipped and why."""

from __future__ import annotations

from textwrap import dedent

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harnesses.discovery import discover
from harnesses.errors import ConfigError
from harnesses.model import Collection, HarnessKind, HarnessOptions, SkipReason
from harnesses.tree import MemoryTree, Symlink

ATHERIS_SCRIPT = b"""\
import sys
import atheris

with atheris.instrument_imports():
    import json

def TestOneInput(data):
    json.loads(data)

if __name__ == "__main__":
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()
"""


def _src(text: str) -> bytes:
    return dedent(text).encode()


def _found(collection: Collection) -> dict[str, HarnessKind]:
    return {h.name: h.kind for h in collection.harnesses}


def _skipped(collection: Collection) -> dict[str, SkipReason]:
    return {s.name: s.reason for s in collection.skipped}


@pytest.mark.parametrize(
    "path",
    ["fuzz_json.py", "json_fuzzer.py", "fuzz/json.py", "fuzzing/a/b.py", "fuzzers/x.py"],
)
def test_a_test_one_input_file_named_like_oss_fuzz_is_a_harness(path: str) -> None:
    tree = MemoryTree({path: b"def TestOneInput(data):\n    pass\n"})
    assert _found(discover(tree)) == {path: HarnessKind.ATHERIS}


def test_test_one_input_elsewhere_needs_atheris_setup() -> None:
    tree = MemoryTree(
        {
            "pkg/helpers.py": b"def TestOneInput(data):\n    pass\n",
            "tools/check.py": ATHERIS_SCRIPT,
        }
    )
    assert _found(discover(tree)) == {"tools/check.py": HarnessKind.ATHERIS}


@pytest.mark.parametrize(
    "imports",
    [
        "import atheris as fz\nfz.Setup([], f)",
        "from atheris import Setup\nSetup([], f)",
        "from atheris import Setup as S\nS([], f)",
        "def main():\n    import atheris\n    atheris.Setup([], f)",
    ],
)
def test_atheris_setup_is_recognised_in_every_import_form(imports: str) -> None:
    tree = MemoryTree({"tool.py": f"def f(d): pass\n{imports}\n".encode()})
    assert _found(discover(tree)) == {"tool.py": HarnessKind.ATHERIS}


def test_a_module_that_only_imports_atheris_is_not_a_harness() -> None:
    tree = MemoryTree({"pkg/util.py": b"import atheris\nX = atheris.FuzzedDataProvider\n"})
    assert discover(tree) == Collection((), ())


HYPOTHESIS_TESTS = _src(
    """
    import pytest
    import hypothesis
    import hypothesis as h
    from hypothesis import given, settings, example, strategies as st
    from hypothesis import given as g

    @given(st.integers())
    def test_plain(x):
        pass

    @hypothesis.given(st.text())
    def test_module_form(s):
        pass

    @settings(max_examples=10)
    @example(b"")
    @h.given(data=st.binary())
    @pytest.mark.slow
    def test_stacked(data):
        pass

    @g(st.integers(), st.integers(), st.integers())
    def test_alias(a, b, c=1, *, d=2):
        pass

    def test_not_hypothesis():
        pass

    @given(st.integers())
    def helper_not_collected(x):
        pass

    class TestParser:
        @given(st.text())
        def test_method(self, text):
            pass

    class Helper:
        @given(st.text())
        def test_not_collected(self, text):
            pass

    @given(st.integers())
    @pytest.mark.parametrize("y", [1, 2])
    def test_parametrized(x, y):
        pass

    @given(x=st.integers())
    def test_fixture(x, tmp_path):
        pass

    @given(st.integers())
    def test_rightmost(monkeypatch, x):
        pass

    @given(st.integers())
    async def test_async(x):
        pass
    """
)


def test_given_tests_are_found_in_every_decorator_form() -> None:
    collection = discover(MemoryTree({"tests/test_props.py": HYPOTHESIS_TESTS}))
    prefix = "tests/test_props.py::"
    assert _found(collection) == {
        f"{prefix}test_plain": HarnessKind.HYPOTHESIS,
        f"{prefix}test_module_form": HarnessKind.HYPOTHESIS,
        f"{prefix}test_stacked": HarnessKind.HYPOTHESIS,
        f"{prefix}test_alias": HarnessKind.HYPOTHESIS,
        f"{prefix}TestParser::test_method": HarnessKind.HYPOTHESIS,
    }
    details = {s.name: s.detail for s in collection.skipped}
    assert details == {
        f"{prefix}test_parametrized": "a pytest-parametrized @given test: not supported yet",
        f"{prefix}test_fixture": "needs pytest fixtures (tmp_path): not supported yet",
        f"{prefix}test_rightmost": "needs pytest fixtures (monkeypatch): not supported yet",
        f"{prefix}test_async": "an async test: not supported yet",
    }


def test_given_tests_outside_test_files_are_not_collected() -> None:
    tree = MemoryTree({"pkg/props.py": HYPOTHESIS_TESTS, "tests/conftest.py": HYPOTHESIS_TESTS})
    assert discover(tree) == Collection((), ())


def test_state_machines_are_listed_as_unsupported() -> None:
    tree = MemoryTree(
        {
            "tests/test_machine.py": _src(
                """
                from hypothesis import given
                from hypothesis.stateful import RuleBasedStateMachine, rule

                class Counter(RuleBasedStateMachine):
                    @rule()
                    def inc(self):
                        pass

                TestCounter = Counter.TestCase
                """
            )
        }
    )
    collection = discover(tree)
    assert _skipped(collection) == {"tests/test_machine.py::Counter": SkipReason.UNSUPPORTED}
    assert "stateful" in collection.skipped[0].detail


def test_a_file_that_does_not_parse_is_skipped_with_the_line() -> None:
    tree = MemoryTree({"fuzz_broken.py": b"import atheris\ndef TestOneInput(data:\n"})
    (skipped,) = discover(tree).skipped
    assert (skipped.reason, skipped.path) == (SkipReason.SYNTAX_ERROR, "fuzz_broken.py")
    assert skipped.detail.startswith("line 2:")


def test_binary_and_oversized_files_are_skipped_with_reasons() -> None:
    tree = MemoryTree(
        {
            "fuzz_binary.py": b"import atheris\n\xff\xfe\x00\x01",
            "fuzz_huge.py": b"import atheris\n" + b"#" * 2_000_000,
        }
    )
    collection = discover(tree)
    assert _skipped(collection) == {
        "fuzz_binary.py": SkipReason.NOT_UTF8,
        "fuzz_huge.py": SkipReason.TOO_LARGE,
    }


def test_symlinks_inside_are_followed_and_outside_are_refused() -> None:
    tree = MemoryTree(
        {
            "real/fuzz_a.py": ATHERIS_SCRIPT,
            "fuzz_link.py": Symlink("real/fuzz_a.py"),
            "fuzz_etc.py": Symlink("/etc/passwd"),
            "fuzz_up.py": Symlink("../../outside.py"),
        }
    )
    collection = discover(tree)
    assert _found(collection) == {
        "fuzz_link.py": HarnessKind.ATHERIS,
        "real/fuzz_a.py": HarnessKind.ATHERIS,
    }
    assert _skipped(collection) == {
        "fuzz_etc.py": SkipReason.SYMLINK_OUTSIDE,
        "fuzz_up.py": SkipReason.SYMLINK_OUTSIDE,
    }


@pytest.mark.parametrize(
    "folder",
    [".venv", "venv", "build", "dist", "vendor", "third_party", "node_modules", "x.egg-info"],
)
def test_dependency_and_build_folders_are_not_walked(folder: str) -> None:
    tree = MemoryTree({f"{folder}/fuzz_dep.py": ATHERIS_SCRIPT, "fuzz_own.py": ATHERIS_SCRIPT})
    assert _found(discover(tree)) == {"fuzz_own.py": HarnessKind.ATHERIS}


def test_configured_harnesses_replace_discovery() -> None:
    tree = MemoryTree(
        {
            "pyproject.toml": _src(
                """
                [tool.fuzzorch]
                install = ["pip install -e .[fuzz]"]
                [tool.fuzzorch.defaults]
                timeout = 5
                [[tool.fuzzorch.harness]]
                path = "checks/json_check.py"
                max_len = 4096
                dictionary = "checks/json.dict"
                [[tool.fuzzorch.harness]]
                test = "tests/test_props.py::TestParser::test_method"
                """
            ),
            "checks/json_check.py": b"def check(data):\n    pass\n",
            "fuzz_ignored.py": ATHERIS_SCRIPT,
            "tests/test_props.py": HYPOTHESIS_TESTS,
        }
    )
    collection = discover(tree)
    assert collection.configured
    assert collection.install == ("pip install -e .[fuzz]",)
    assert {h.name: h.options for h in collection.harnesses} == {
        "checks/json_check.py": HarnessOptions(
            max_len=4096, timeout=5.0, dictionary="checks/json.dict"
        ),
        "tests/test_props.py::TestParser::test_method": HarnessOptions(timeout=5.0),
    }
    assert collection.skipped == ()


def test_configuration_can_add_options_to_discovery_and_disable_harnesses() -> None:
    tree = MemoryTree(
        {
            "pyproject.toml": _src(
                """
                [tool.fuzzorch]
                discover = true
                exclude = ["bench/**"]
                [[tool.fuzzorch.harness]]
                path = "fuzz_a.py"
                rss_limit_mb = 512
                [[tool.fuzzorch.harness]]
                path = "fuzz_b.py"
                enabled = false
                [[tool.fuzzorch.harness]]
                path = "fuzz_gone.py"
                """
            ),
            "fuzz_a.py": ATHERIS_SCRIPT,
            "fuzz_b.py": ATHERIS_SCRIPT,
            "fuzz_c.py": ATHERIS_SCRIPT,
            "bench/fuzz_bench.py": ATHERIS_SCRIPT,
        }
    )
    collection = discover(tree)
    assert {h.name: h.options for h in collection.harnesses} == {
        "fuzz_a.py": HarnessOptions(rss_limit_mb=512),
        "fuzz_c.py": HarnessOptions(),
    }
    assert _skipped(collection) == {
        "fuzz_b.py": SkipReason.DISABLED,
        "fuzz_gone.py": SkipReason.UNSUPPORTED,
    }


def test_a_bad_configuration_is_an_error_naming_key_and_value() -> None:
    toml = b'[[tool.fuzzorch.harness]]\npath = "a.py"\nmax_len = "big"\n'
    tree = MemoryTree({"pyproject.toml": toml})
    with pytest.raises(ConfigError, match=r"max_len = 'big'"):
        discover(tree)


def test_prefilter_and_full_parse_agree() -> None:
    tree = MemoryTree(
        {
            "fuzz_a.py": ATHERIS_SCRIPT,
            "tests/test_props.py": HYPOTHESIS_TESTS,
            "pkg/plain.py": b"def f():\n    return 1\n",
            "pkg/broken.py": b"def f(:\n",
        }
    )
    assert discover(tree, prefilter=True) == discover(tree, prefilter=False)


PATHS = st.sampled_from(
    ["fuzz_a.py", "fuzz/x.py", "tests/test_p.py", "pkg/m.py", "a_test.py", "pyproject.toml"]
)
SOURCES = st.one_of(
    st.binary(max_size=300),
    st.sampled_from([ATHERIS_SCRIPT, HYPOTHESIS_TESTS]).flatmap(
        lambda base: st.integers(0, len(base)).map(lambda cut: base[:cut])
    ),
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(PATHS, SOURCES, max_size=5))
def test_discovery_never_fails_on_arbitrary_sources(entries: dict[str, bytes]) -> None:
    # The project fuzzes its own parsers: any tree gives a collection or a ConfigError.
    tree = MemoryTree(dict(entries))
    try:
        collection = discover(tree)
    except ConfigError:
        assert "pyproject.toml" in entries
        return
    assert discover(tree, prefilter=False) == collection
    for harness in collection.harnesses:
        assert harness.path in entries

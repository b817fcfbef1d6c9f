"""orchestrator.regression: crash groups as pytest regression tests, whatever the crash holds.

The generated tests are run for real in tests/integration/test_regression_export.py; here
the generated source is checked as source: it parses, it is deterministic, and hostile crash
data changes nothing in it but string and bytes constants.
"""

from __future__ import annotations

import ast
import keyword
import math
import re
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from harnesses.model import HarnessKind
from orchestrator.errors import UsageError
from orchestrator.regression import (
    MAX_TESTCASE_BYTES,
    default_test_path,
    example_kwargs,
    regression_test,
    short_id,
)

ATHERIS = HarnessKind.ATHERIS
HYPOTHESIS = HarnessKind.HYPOTHESIS
FUNCTION = "tests/test_num.py::test_ratio"
METHOD = "tests/test_num.py::TestNum::test_ratio"
EXAMPLE = "Failing test case: test_ratio(\n    a=0,\n    b=0,\n)"
HOSTILE = [
    '"""; import os; os.system("x") #',
    "x'\nimport os\nos.system('x')\n#",
    "__import__('os').system('x')",
    "\\N{BOM}\u202e\ufeff\x00\ud800 '''\r\n\x0c",
]
CONSTANTS = ("GROUP_ID", "TITLE", "SIGNATURE", "HARNESS", "PATH")


def _generate(**changes: Any) -> str:
    arguments: dict[str, Any] = {
        "kind": ATHERIS,
        "harness": "fuzz/fuzz_parse.py",
        "path": "fuzz/fuzz_parse.py",
        "testcase": b"\x00crash",
        "falsifying_example": None,
        "group_id": "crash-0192a3b4c5d6e7f8091a2b",
        "title": "ZeroDivisionError in ratio",
        "signature": "0" * 40,
    }
    if changes.get("kind") is HYPOTHESIS:
        arguments.update(harness=FUNCTION, path="tests/test_num.py", falsifying_example=EXAMPLE)
    arguments.update(changes)
    return regression_test(**arguments)


VARIANTS: dict[str, dict[str, Any]] = {
    "atheris": {},
    "function-example": {"kind": HYPOTHESIS},
    "method-example": {"kind": HYPOTHESIS, "harness": METHOD},
    "function-buffer": {"kind": HYPOTHESIS, "falsifying_example": None},
    "method-buffer": {"kind": HYPOTHESIS, "harness": METHOD, "falsifying_example": None},
}


class _Shape(ast.NodeTransformer):
    """Blanks what crash data may change: constants and the test's name."""

    def visit_Constant(self, node: ast.Constant) -> ast.Constant:
        return ast.Constant(value=None)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.FunctionDef:
        self.generic_visit(node)
        if node.name.startswith("test_crash_"):
            node.name = "test_crash_"
        return node


def _shape(source: str) -> str:
    return ast.dump(_Shape().visit(ast.parse(source)))


def _constants(source: str) -> dict[str, Any]:
    """The module-level ``NAME = literal`` assignments, evaluated."""
    values = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
            if name in (*CONSTANTS, "DATA"):
                values[name] = ast.literal_eval(node.value)
    return values


def _called(source: str) -> set[str]:
    return {ast.unparse(n.func) for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Call)}


def _test_functions(source: str) -> list[str]:
    tree = ast.parse(source)
    functions = [n.name for n in tree.body if isinstance(n, ast.FunctionDef)]
    return [name for name in functions if name.startswith("test_")]


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_variant_parses_is_ascii_and_deterministic(variant: str) -> None:
    source = _generate(**VARIANTS[variant])
    ast.parse(source)
    assert source.isascii()
    assert source == _generate(**VARIANTS[variant])
    assert _test_functions(source) == ["test_crash_0192a3b4c5d6e7f8091a2b"]
    assert max(map(len, source.splitlines())) <= 88


def test_the_falsifying_example_becomes_a_direct_call() -> None:
    source = _generate(kind=HYPOTHESIS)
    assert "test.hypothesis.inner_test(\n            a=0,\n            b=0,\n        )" in source
    assert "DATA" not in source  # the testcase is not needed
    assert "inner_test(\n            cls(),\n" in _generate(kind=HYPOTHESIS, harness=METHOD)


def test_without_a_usable_example_the_buffer_is_replayed() -> None:
    source = _generate(kind=HYPOTHESIS, falsifying_example=None)
    assert "test.hypothesis.fuzz_one_input(DATA)" in source
    assert "not a minimized Hypothesis choice sequence" in source  # the caveat is stated
    assert _constants(source)["DATA"] == b"\x00crash"


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_crash_data_only_changes_constants(variant: str, hostile: str) -> None:
    benign = _generate(**VARIANTS[variant])
    source = _generate(
        **VARIANTS[variant],
        group_id=hostile,
        title=hostile,
        signature=hostile,
        testcase=hostile.encode("utf-8", "surrogatepass"),
    )
    assert _shape(source) == _shape(benign)
    constants = _constants(source)
    assert constants["GROUP_ID"] == constants["TITLE"] == constants["SIGNATURE"] == hostile
    assert source.isascii()


@pytest.mark.parametrize("hostile", HOSTILE)
def test_a_hostile_falsifying_example_is_never_pasted(hostile: str) -> None:
    allowed = _called(_generate(kind=HYPOTHESIS)) | _called(
        _generate(kind=HYPOTHESIS, falsifying_example=None)
    )
    for text in (
        hostile,
        f"Failing test case: test_ratio(\n    a={hostile},\n)",
        "Failing test case: test_ratio(\n    a=os.system('x'),\n)",
        "Falsifying example: test_ratio(a=__import__('os').system('x'))",
        "Failing test case: test_ratio(\n    a=0,\n)\nos.system('x')\n)",
        "Failing test case: test_ratio(**{'a': 0})",
        "Failing test case: test_ratio(0, b=1)",
        "Failing test case: os.system(a=0)",
        "Failing test case: test_ratio(a=(lambda: 0)())",
        f"Failing test case: test_ratio(\n    a=0,\n    b={'[' * 5000}\n)",
    ):
        source = _generate(kind=HYPOTHESIS, falsifying_example=text)
        assert _called(source) <= allowed, text
        assert "system" not in source, text
        assert "__import__" not in source, text


def test_an_example_that_is_not_a_literal_call_falls_back_to_the_buffer() -> None:
    benign = _generate(kind=HYPOTHESIS, falsifying_example=None)
    for text in (
        "Failing test case: test_ratio(\n    a=os.system('x'),\n)",
        "Failing test case: test_ratio(a=data(...))",
        '"""; import os; os.system("x") #',
    ):
        assert _shape(_generate(kind=HYPOTHESIS, falsifying_example=text)) == _shape(benign)


def test_a_literal_example_adds_nothing_but_literals() -> None:
    text = (
        "Failing test case: test_ratio(\n"
        "    a=[1, (2,), {'k': b'\\x00'}, {'z', 'y'}, set(), -0.0, 1j, None, True],\n"
        '    b=\'"""; import os\',  # or any other generated value\n'
        ")\n"
        "Explanation:\n    These lines were always and only run by failing examples:"
    )
    source = _generate(kind=HYPOTHESIS, falsifying_example=text)
    assert _called(source) <= _called(_generate(kind=HYPOTHESIS)) | {"set"}
    call = next(
        n
        for n in ast.walk(ast.parse(source))
        if isinstance(n, ast.Call) and ast.unparse(n.func) == "test.hypothesis.inner_test"
    )
    values = {k.arg: ast.literal_eval(k.value) for k in call.keywords}
    assert values == {
        "a": [1, (2,), {"k": b"\x00"}, {"z", "y"}, set(), -0.0, 1j, None, True],
        "b": '"""; import os',
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (EXAMPLE, {"a": "0", "b": "0"}),
        ("Falsifying example: test_ratio(\n    a=0,\n    b=0.5,\n)", {"a": "0", "b": "0.5"}),
        ("Falsifying example: test_ratio(a=0, b='x')", {"a": "0", "b": "'x'"}),
        ("test_ratio(a=0)", {"a": "0"}),
        ("Falsifying explicit example: test_ratio(\n    a=0,\n)", {"a": "0"}),
        ("Failing test case: test_ratio()", {}),
        # A Hypothesis report of a method: ``self`` cannot be repeated, and is dropped.
        (
            "Failing test case: test_ratio(\n    self=<t.TestNum object at 0x7f>,\n"
            "    a=5,\n    s='',  # or any other generated value\n)",
            {"a": "5", "s": "''"},
        ),
        ("Failing test case: TestNum.test_ratio(a=1)", {"a": "1"}),
        # Notes after the call, including one that looks like code, are not part of it.
        (EXAMPLE + "\nDraw 1: 5\n)\nos.system('x')", {"a": "0", "b": "0"}),
        ("Failing test case: test_ratio(\n    a={'b', 'a', 'c'},\n)", {"a": "{'a', 'b', 'c'}"}),
        ("Failing test case: test_ratio(a='\u00fc\u202e')", {"a": "'\\xfc\\u202e'"}),
    ],
)
def test_examples_that_are_literal_calls(text: str, expected: dict[str, str]) -> None:
    assert example_kwargs(text, "test_ratio") == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Failing test case:",
        "Failing test case: test_ratio(\n    a=0,",  # truncated
        "Failing test case: test_other(a=0)",
        "Failing test case: test_ratio(a=inf)",
        "Failing test case: test_ratio(a=1e999)",  # evaluates to inf, which reads back as a name
        "Failing test case: test_ratio(a=nan)",
        "Failing test case: test_ratio(a=Decimal('1'))",
        "Failing test case: test_ratio(a=data(...))",
        "Failing test case: test_ratio(a=os.system('x'))",
        "Failing test case: test_ratio(a=0, a=1)",
        "Failing test case: test_ratio(*args)",
        "Failing test case: test_ratio(a=" + "9" * 5000 + ")",
        "Failing test case: test_ratio(a=" + "[" * 100_000 + ")",
        "Failing test case: test_ratio(\n    self=<x>,\n    a=<object at 0x1>,\n)",
        "Failing test case: test_ratio(a=0)" + " " * 70_000,  # over the parsing bound
    ],
)
def test_examples_that_are_not_used(text: str) -> None:
    assert example_kwargs(text, "test_ratio") is None


@pytest.mark.parametrize(
    "path",
    [
        "",
        "/etc/passwd.py",
        "../outside.py",
        "fuzz/../../outside.py",
        "fuzz\\x.py",
        "fuzz/x.txt",
        "./fuzz/x.py",
        "fuzz//x.py",
        "fuzz/x.py\n",
        'x.py"; import os',
    ],
)
@pytest.mark.parametrize("kind", [ATHERIS, HYPOTHESIS])
def test_bad_paths_are_refused_naming_them(path: str, kind: HarnessKind) -> None:
    harness = f"{path}::test_ratio" if kind is HYPOTHESIS else path
    with pytest.raises(ValueError, match=re.escape(repr(path))):
        _generate(kind=kind, harness=harness, path=path)


@pytest.mark.parametrize(
    "harness",
    [
        "tests/test_num.py",
        "tests/test_num.py::",
        "tests/test_num.py::test-ratio",
        "tests/test_num.py::A::B::test_ratio",
        "tests/test_num.py::class",
        "tests/test_num.py::test_ratio()",
        "tests/test_num.py::test_ratio; import os",
        "tests/other.py::test_ratio",
    ],
)
def test_bad_qualnames_are_refused_naming_them(harness: str) -> None:
    with pytest.raises(UsageError, match=re.escape(repr(harness))):
        _generate(kind=HYPOTHESIS, harness=harness)


def test_oversized_inputs_are_refused() -> None:
    with pytest.raises(UsageError, match=str(MAX_TESTCASE_BYTES + 1)):
        _generate(testcase=b"x" * (MAX_TESTCASE_BYTES + 1))
    with pytest.raises(UsageError, match="title"):
        _generate(title="x" * 100_000)


def test_an_unknown_kind_is_refused() -> None:
    with pytest.raises(UsageError, match="'libfuzzer'"):
        _generate(kind="libfuzzer")


def test_the_largest_testcase_is_embedded_exactly() -> None:
    data = bytes(range(256)) * (MAX_TESTCASE_BYTES // 256)
    assert _constants(_generate(testcase=data))["DATA"] == data


@pytest.mark.parametrize(
    ("group_id", "expected"),
    [
        ("crash-0192a3b4c5d6e7f8091a2b", "0192a3b4c5d6e7f8091a2b"),
        ("../../etc/x y", "etc_x_y"),
        ("CRASH-AB", "ab"),
    ],
)
def test_short_ids_are_safe_name_parts(group_id: str, expected: str) -> None:
    assert short_id(group_id) == expected
    assert default_test_path(group_id) == f"tests/fuzzorch/test_crash_{expected}.py"


@given(st.text())
def test_every_group_id_gives_a_safe_file_name(group_id: str) -> None:
    assert re.fullmatch(
        r"tests/fuzzorch/test_crash_[a-z0-9_]{1,32}\.py", default_test_path(group_id)
    )


@example(title="", group_id="", signature="", example_text="", testcase=b"")
@given(
    title=st.text(),
    group_id=st.text(),
    signature=st.text(max_size=50),
    example_text=st.text()
    | st.builds("Failing test case: test_ratio(\n    a={},\n)".format, st.text()),
    testcase=st.binary(max_size=300),
)
def test_any_crash_data_gives_a_parsing_test(
    title: str, group_id: str, signature: str, example_text: str, testcase: bytes
) -> None:
    for variant in VARIANTS.values():
        replaces_example = variant.get("kind") is HYPOTHESIS and "falsifying_example" not in variant
        source = _generate(
            **{**variant, **({"falsifying_example": example_text} if replaces_example else {})},
            title=title,
            group_id=group_id,
            signature=signature,
            testcase=testcase,
        )
        assert source.isascii()
        constants = _constants(source)
        assert (constants["TITLE"], constants["GROUP_ID"], constants["SIGNATURE"]) == (
            title,
            group_id,
            signature,
        )
        assert constants.get("DATA", testcase) == testcase
        assert len(_test_functions(source)) == 1


LITERALS = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.complex_numbers()
    | st.text()
    | st.binary(),
    lambda inner: (
        st.lists(inner)
        | st.lists(inner).map(tuple)
        | st.dictionaries(st.text() | st.integers(), inner)
        | st.sets(st.text() | st.integers() | st.binary())
    ),
    max_leaves=20,
)


def _finite(value: object) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, complex):
        return math.isfinite(value.real) and math.isfinite(value.imag)
    if isinstance(value, list | tuple | set):
        return all(map(_finite, value))
    if isinstance(value, dict):
        return all(map(_finite, value.values()))
    return True


NAMES = st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True).filter(
    lambda name: not keyword.iskeyword(name)
)


@given(st.dictionaries(NAMES, LITERALS))
def test_literal_arguments_round_trip(kwargs: dict[str, Any]) -> None:
    # As Hypothesis prints them: one argument a line, repr()ed.
    lines = "".join(f"    {key}={value!r},\n" for key, value in kwargs.items())
    sources = example_kwargs(f"Failing test case: test_ratio(\n{lines})", "test_ratio")
    if not all(map(_finite, kwargs.values())):
        assert sources is None  # inf and nan have no literal form
        return
    assert sources is not None
    assert {key: ast.literal_eval(source) for key, source in sources.items()} == kwargs
    assert all(source.isascii() for source in sources.values())

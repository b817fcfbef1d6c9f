"""A crash group as a pytest regression test: fails while the bug is there, passes once fixed.

Everything about the crash (ids, title, paths, the testcase, Hypothesis' falsifying example)
is hostile. It enters the generated source only as literals regenerated here with
``ascii()`` (pure-ASCII source: no encoding or bidirectional-text tricks), never as raw text:
the falsifying example is parsed with ``ast`` and only a call of keyword arguments whose
values are Python literals is used, each value rebuilt from its evaluated form.

The generated test replays the crash the way fuzzorch's runs did:

- an atheris script is loaded by path with ``Setup``, ``Fuzz`` and the instrumentation
  helpers as no-ops (an ``atheris`` stub stands in when atheris is not installed), and
  ``TestOneInput`` gets the testcase;
- a Hypothesis test is imported as pytest imports it (its folder, the root and ``src/`` on
  ``sys.path``), and its inner function is called with the falsifying example's arguments,
  or else ``fuzz_one_input`` gets the testcase (as the Hypothesis shim does).

This module validates the crash's data and assembles the file; its fixed text is in
``orchestrator.regression_templates``.
"""

from __future__ import annotations

import ast
import hashlib
import keyword
import re
from collections.abc import Iterator

from harnesses.errors import InvalidPathError
from harnesses.model import HarnessKind
from harnesses.paths import validate_repo_path
from orchestrator import regression_templates as templates
from orchestrator.errors import UsageError

#: The largest testcase embedded in a test (libFuzzer's default -max_len is 4 KiB).
MAX_TESTCASE_BYTES = 1 << 20
#: The largest id, title, signature or harness name embedded in a test.
MAX_TEXT_CHARS = 4096
#: A falsifying example longer than this is not parsed (the shim caps its own at 64 KiB).
MAX_EXAMPLE_CHARS = 64 * 1024
#: The folder ``fuzzorch crash export-test`` writes to by default.
DEFAULT_FOLDER = "tests/fuzzorch"

_EXAMPLE_PREFIXES = ("Failing test case:", "Falsifying example:", "Falsifying explicit example:")
# Hypothesis prints a method's ``self`` as ``self=<pkg.Class object at 0x…>,``: not a literal.
_SELF_LINE = re.compile(r"\s*self=<.*>,?\s*(#.*)?")
_LITERAL_ERRORS = (SyntaxError, ValueError, TypeError, MemoryError, RecursionError)
# Generated lines stay within ruff's and black's default 88 columns.
_LINE = 88
_PIECE = _LINE - 12  # a literal's content per line: indent, prefix, quotes and a margin


def short_id(group_id: str) -> str:
    """The group id as a name part: ``crash-0192abc`` gives ``0192abc``."""
    short = re.sub(r"[^a-z0-9]+", "_", group_id.lower().removeprefix("crash-")).strip("_")[:32]
    return short or hashlib.sha256(group_id.encode("utf-8", "surrogatepass")).hexdigest()[:12]


def default_test_path(group_id: str) -> str:
    """Where ``fuzzorch crash export-test`` writes the group's test in the repository."""
    return f"{DEFAULT_FOLDER}/test_crash_{short_id(group_id)}.py"


def regression_test(
    *,
    kind: HarnessKind,
    harness: str,
    path: str,
    testcase: bytes,
    falsifying_example: str | None,
    group_id: str,
    title: str,
    signature: str,
) -> str:
    """The source of a pytest file that fails while the crash reproduces."""
    kind = _kind(kind)
    for name, text in (
        ("group id", group_id),
        ("title", title),
        ("signature", signature),
        ("harness", harness),
    ):
        if len(text) > MAX_TEXT_CHARS:
            raise UsageError(f"The crash's {name} is {len(text)} characters, over {MAX_TEXT_CHARS}")
    if len(testcase) > MAX_TESTCASE_BYTES:
        raise UsageError(
            f"The testcase of crash group {group_id!r} is {len(testcase)} bytes, over "
            f"{MAX_TESTCASE_BYTES}: too large to embed in a test"
        )
    path = _script_path(path)
    constants = [
        _assign("GROUP_ID", group_id),
        _assign("TITLE", title),
        _assign("SIGNATURE", signature),
        _assign("HARNESS", harness),
        _assign("PATH", path),
    ]
    test_name = f"test_crash_{short_id(group_id)}"
    if kind is HarnessKind.ATHERIS:
        source = _atheris_test(constants, testcase, test_name)
    else:
        owner, name = _qualname(harness, path)
        kwargs = None if falsifying_example is None else example_kwargs(falsifying_example, name)
        source = _hypothesis_test(
            constants, testcase, test_name, owner=owner, name=name, kwargs=kwargs
        )
    try:
        ast.parse(source)
    except SyntaxError as exc:  # a bug here, never the crash's data: that is only literals
        raise AssertionError(f"generated test for {group_id!r} does not parse: {exc}") from exc
    return source


def example_kwargs(example: str, test_name: str) -> dict[str, str] | None:
    """The falsifying example's arguments as literal source, or None unless it is that simple.

    Accepts only ``test_name(name=literal, ...)`` after Hypothesis' "Failing test case:" (or
    older "Falsifying example:") prefix; a method's unprintable ``self=<…>`` is dropped.
    """
    if len(example) > MAX_EXAMPLE_CHARS:
        return None
    call = _call_text(example)
    if call is None:
        return None
    try:
        node = ast.parse(call, mode="eval").body
    except _LITERAL_ERRORS:
        return None
    if not isinstance(node, ast.Call) or node.args or _called_name(node.func) != test_name:
        return None
    return _keyword_sources(node.keywords)


def _keyword_sources(keywords: list[ast.keyword]) -> dict[str, str] | None:
    """Each ``name=literal`` as regenerated source; None if one is anything else."""
    kwargs: dict[str, str] = {}
    for argument in keywords:
        if argument.arg is None or argument.arg in kwargs:
            return None  # ``**mapping``, or a name repeated (ast.parse lets that through)
        try:
            source = _literal_source(ast.literal_eval(argument.value))
            ast.literal_eval(source)  # what is embedded must read back (no inf, nan…)
        except _LITERAL_ERRORS:
            return None
        kwargs[argument.arg] = source
    return kwargs


def _kind(kind: HarnessKind | str) -> HarnessKind:
    try:
        return HarnessKind(kind)
    except ValueError as exc:
        raise UsageError(f"Unknown harness kind {kind!r}") from exc


def _script_path(path: str) -> str:
    try:
        valid = validate_repo_path(path)
    except InvalidPathError as exc:
        raise UsageError(str(exc)) from exc
    if valid != path or not valid.endswith(".py"):
        raise UsageError(
            f"Invalid harness path {path!r}: expected a normalized relative path to a .py file"
        )
    return valid


def _qualname(harness: str, path: str) -> tuple[str | None, str]:
    """The class (if any) and the function of a ``path.py::[Class::]function`` test."""
    file, *parts = harness.split("::")
    if file != path or len(parts) not in (1, 2) or not all(map(_is_name, parts)):
        raise UsageError(
            f"Invalid Hypothesis test {harness!r}: expected '{path}::[Class::]function' "
            "with Python identifiers"
        )
    return (parts[0], parts[1]) if len(parts) == 2 else (None, parts[0])


def _is_name(text: str) -> bool:
    return text.isidentifier() and not keyword.iskeyword(text)


def _attribute(owner: str, name: str) -> str:
    """``owner.name``; through getattr when ``name`` is not ASCII (the source stays ASCII)."""
    return f"{owner}.{name}" if name.isascii() else f"getattr({owner}, {name!a})"


def _call_text(example: str) -> str | None:
    """The call Hypothesis printed, from after its prefix to the ``)`` that ends it."""
    lines = example.splitlines()
    for index, line in enumerate(lines):
        stripped = line.lstrip()
        prefix = next((p for p in _EXAMPLE_PREFIXES if stripped.startswith(p)), None)
        if prefix is not None:
            lines = [stripped[len(prefix) :], *lines[index + 1 :]]
            break
    lines = [line for line in lines if not _SELF_LINE.fullmatch(line)]
    if not lines:
        return None
    if lines[0].rstrip().endswith(")"):  # the one-line form: ``test(a=0)``
        return lines[0].strip()
    # The multi-line form ends at the first unindented ")": arguments are indented.
    for end, line in enumerate(lines):
        if line.rstrip() == ")":
            return "\n".join(lines[: end + 1]).strip()
    return None


def _called_name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):  # ``Class.test`` or ``Class().test``
        return func.attr
    return None


def _literal_source(value: object) -> str:
    """Source for a literal_eval result, deterministic (sets sorted) and pure ASCII."""
    if isinstance(value, list):
        return "[" + ", ".join(_literal_source(v) for v in value) + "]"
    if isinstance(value, tuple):
        items = [_literal_source(v) for v in value]
        return f"({items[0]},)" if len(items) == 1 else "(" + ", ".join(items) + ")"
    if isinstance(value, set):
        items = sorted(_literal_source(v) for v in value)
        return "{" + ", ".join(items) + "}" if items else "set()"
    if isinstance(value, dict):
        pairs = (f"{_literal_source(k)}: {_literal_source(v)}" for k, v in value.items())
        return "{" + ", ".join(pairs) + "}"
    return ascii(value)


def _assign(name: str, value: str | bytes) -> str:
    """``NAME = <literal>``, split over lines when long (implicit concatenation)."""
    literal = ascii(value)
    if len(name) + 3 + len(literal) <= _LINE:
        return f"{name} = {literal}\n"
    pieces = "".join(f"    {piece!a}\n" for piece in _pieces(value))
    return f"{name} = (\n{pieces})\n"


def _pieces(value: str | bytes) -> Iterator[str | bytes]:
    """``value`` in consecutive pieces whose literals fit on a line."""
    quotes = 3 if isinstance(value, bytes) else 2
    start = width = 0
    for index in range(len(value)):
        item = value[index : index + 1]
        # An escaped quote takes one more column when a piece holds both kinds.
        cost = len(ascii(item)) - quotes + (item in ("'", '"', b"'", b'"'))
        if width + cost > _PIECE:
            yield value[start:index]
            start, width = index, 0
        width += cost
    yield value[start:]


def _header(
    stdlib: tuple[str, ...], third_party: tuple[str, ...], constants: list[str], extra: str = ""
) -> str:
    """The docstring, the imports (grouped and sorted as isort does) and the constants."""
    return "".join(
        [
            templates.DOCSTRING,
            *(f"{line}\n" for line in stdlib),
            *(["\n", *(f"{line}\n" for line in third_party)] if third_party else []),
            extra,
            "\n",
            *constants,
        ]
    )


def _atheris_test(constants: list[str], testcase: bytes, test_name: str) -> str:
    return "".join(
        [
            _header(
                templates.ATHERIS_STDLIB,
                ("import pytest",),
                [*constants, _assign("DATA", testcase)],
                extra=templates.OPTIONAL_ATHERIS,
            ),
            templates.COMMON_HELPERS,
            templates.ATHERIS_HELPERS,
            templates.ATHERIS_TEST.replace("TEST_NAME", test_name),
        ]
    )


def _hypothesis_test(
    constants: list[str],
    testcase: bytes,
    test_name: str,
    *,
    owner: str | None,
    name: str,
    kwargs: dict[str, str] | None,
) -> str:
    stdlib: tuple[str, ...] = templates.HYPOTHESIS_STDLIB
    third_party: tuple[str, ...] = ()
    helpers = templates.HYPOTHESIS_HELPERS
    body = ["    module = _import_test_module(_repository_root())\n"]
    if owner is not None:
        body.append(f"    cls = {_attribute('module', owner)}\n")
    if kwargs is not None:
        body.append(f"    test = {_attribute('module' if owner is None else 'cls', name)}\n")
        args = ["cls()"] if owner is not None else []
        args += [f"{key}={value}" for key, value in kwargs.items() if key.isascii()]
        if others := [f"{key!a}: {value}" for key, value in kwargs.items() if not key.isascii()]:
            args.append("**{" + ", ".join(others) + "}")
        call = "".join(f"            {arg},\n" for arg in args)
        body.append(templates.CALL.replace("CALL", f"test.hypothesis.inner_test(\n{call}        )"))
    else:
        constants = [*constants, templates.FUZZ_ONE_INPUT_NOTE, _assign("DATA", testcase)]
        if owner is None:
            body.append(f"    test = {_attribute('module', name)}\n")
        else:
            # A method needs its instance: rebuilt as its own @given test, as the shim does.
            stdlib = (*stdlib, "from typing import Any")
            third_party = ("import hypothesis",)
            helpers += templates.METHOD_HELPER
            body.append(f"    test = _method_test(cls, {name!a})\n")
        body.append(templates.CALL.replace("CALL", "test.hypothesis.fuzz_one_input(DATA)"))
    return "".join(
        [
            _header(stdlib, third_party, constants),
            templates.COMMON_HELPERS,
            helpers,
            f"\n\ndef {test_name}() -> None:\n",
            templates.HYPOTHESIS_DOC,
            *body,
        ]
    )

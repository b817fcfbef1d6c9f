"""Recognise harnesses in a parsed module: atheris scripts and Hypothesis ``@given`` tests.

Pure functions over an ``ast.Module``; nothing is imported or executed.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass

FUZZ_DIRS = frozenset({"fuzz", "fuzzing", "fuzzers"})


@dataclass(frozen=True)
class FoundTest:
    """A Hypothesis test in a module: collectable, or not with the reason why."""

    qualname: str  # "function" or "Class::function"
    unsupported: str | None = None


def is_test_file(path: str) -> bool:
    """pytest's default test file names: ``test_*.py`` and ``*_test.py``."""
    name = path.rsplit("/", 1)[-1]
    return name.endswith(".py") and (name.startswith("test_") or name.endswith("_test.py"))


def follows_fuzz_naming(path: str) -> bool:
    """OSS-Fuzz conventions: ``fuzz_*.py``, ``*_fuzzer.py``, or a file in a fuzz folder."""
    *folders, name = path.split("/")
    return (
        name.startswith("fuzz_")
        or name.endswith("_fuzzer.py")
        or any(folder in FUZZ_DIRS for folder in folders)
    )


def is_atheris_script(module: ast.Module, path: str) -> bool:
    """An atheris harness: imports atheris and calls ``Setup``, or defines TestOneInput
    in a file that follows the fuzz naming conventions."""
    modules, setups = _atheris_names(module)
    if modules or setups:
        for node in ast.walk(module):
            if isinstance(node, ast.Call) and _is_setup_call(node.func, modules, setups):
                return True
    defines_entry = any(
        isinstance(node, ast.FunctionDef) and node.name == "TestOneInput" for node in module.body
    )
    return defines_entry and follows_fuzz_naming(path)


def _atheris_names(module: ast.Module) -> tuple[set[str], set[str]]:
    modules: set[str] = set()
    setups: set[str] = set()
    for node in ast.walk(module):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "atheris":
                    modules.add(alias.asname or "atheris")
        elif isinstance(node, ast.ImportFrom) and node.module == "atheris" and node.level == 0:
            for alias in node.names:
                if alias.name in ("Setup", "*"):
                    setups.add(alias.asname or "Setup")
    return modules, setups


def _is_setup_call(func: ast.expr, modules: set[str], setups: set[str]) -> bool:
    if isinstance(func, ast.Name):
        return func.id in setups
    return (
        isinstance(func, ast.Attribute)
        and func.attr == "Setup"
        and isinstance(func.value, ast.Name)
        and func.value.id in modules
    )


def hypothesis_tests(module: ast.Module) -> list[FoundTest]:
    """The ``@given`` tests pytest would collect from a module, in source order."""
    given = _GivenNames.of(module)
    if not given.any():
        return []
    found: list[FoundTest] = []
    for node in module.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith(
            "test"
        ):
            test = _test(node, node.name, given, method=False)
            if test is not None:
                found.append(test)
        elif isinstance(node, ast.ClassDef):
            found.extend(_class_tests(node, given))
    return found


def _class_tests(cls: ast.ClassDef, given: _GivenNames) -> Iterator[FoundTest]:
    if _is_state_machine(cls):
        yield FoundTest(
            cls.name, "a Hypothesis stateful machine (RuleBasedStateMachine): not supported yet"
        )
        return
    if not cls.name.startswith("Test"):
        return
    for node in cls.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith(
            "test"
        ):
            test = _test(node, f"{cls.name}::{node.name}", given, method=True)
            if test is not None:
                yield test


def _is_state_machine(cls: ast.ClassDef) -> bool:
    for base in cls.bases:
        name = base.attr if isinstance(base, ast.Attribute) else getattr(base, "id", "")
        if name == "RuleBasedStateMachine":
            return True
    return False


def _test(
    node: ast.FunctionDef | ast.AsyncFunctionDef, qualname: str, given: _GivenNames, *, method: bool
) -> FoundTest | None:
    given_call = None
    parametrized = False
    for decorator in node.decorator_list:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        if given.matches(target):
            given_call = decorator
        elif isinstance(target, ast.Attribute) and target.attr == "parametrize":
            parametrized = True
    if given_call is None:
        return None
    if isinstance(node, ast.AsyncFunctionDef):
        return FoundTest(qualname, "an async test: not supported yet")
    if parametrized:
        return FoundTest(qualname, "a pytest-parametrized @given test: not supported yet")
    fixtures = _uncovered_parameters(node, given_call, method=method)
    if fixtures:
        return FoundTest(
            qualname, f"needs pytest fixtures ({', '.join(fixtures)}): not supported yet"
        )
    return FoundTest(qualname)


def _uncovered_parameters(
    node: ast.FunctionDef, given_call: ast.expr, *, method: bool
) -> list[str]:
    """Parameters that neither @given nor a default value provides: pytest fixtures."""
    args = node.args
    positional = [a.arg for a in args.posonlyargs + args.args]
    if method and positional:
        positional = positional[1:]
    if not isinstance(given_call, ast.Call):
        return []
    if any(isinstance(a, ast.Starred) for a in given_call.args) or any(
        k.arg is None for k in given_call.keywords
    ):
        return []  # *strategies or **strategies: cannot tell statically; trust the author
    by_keyword = {k.arg for k in given_call.keywords}
    # Positional strategies fill the rightmost positional parameters (Hypothesis' rule).
    by_position = (
        set(positional[len(positional) - len(given_call.args) :]) if given_call.args else set()
    )
    defaults = len(args.defaults)
    with_default = set(positional[len(positional) - defaults :]) if defaults else set()
    kwonly_default = {a.arg for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True) if d}
    return [
        name
        for name in positional + [a.arg for a in args.kwonlyargs]
        if name not in by_keyword | by_position | with_default | kwonly_default
    ]


@dataclass(frozen=True)
class _GivenNames:
    """How a module can spell ``hypothesis.given``: bare names and module aliases."""

    bare: frozenset[str]
    modules: frozenset[str]

    @classmethod
    def of(cls, module: ast.Module) -> _GivenNames:
        bare: set[str] = set()
        modules: set[str] = set()
        for node in ast.walk(module):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name == "hypothesis":
                        modules.add(alias.asname or "hypothesis")
            elif isinstance(node, ast.ImportFrom) and node.module == "hypothesis":
                for alias in node.names:
                    if alias.name in ("given", "*"):
                        bare.add(alias.asname or "given")
        return cls(frozenset(bare), frozenset(modules))

    def any(self) -> bool:
        return bool(self.bare or self.modules)

    def matches(self, target: ast.expr) -> bool:
        if isinstance(target, ast.Name):
            return target.id in self.bare
        return (
            isinstance(target, ast.Attribute)
            and target.attr == "given"
            and isinstance(target.value, ast.Name)
            and target.value.id in self.modules
        )

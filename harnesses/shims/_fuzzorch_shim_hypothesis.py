"""Drive one Hypothesis test with atheris: ``ROOT TEST_PATH QUALNAME -- LIBFUZZER_ARGS``.

Runs inside the sandbox with the target's interpreter, so it imports nothing from fuzzorch.
The test module is imported the way pytest's default ("prepend") import mode does, under
atheris instrumentation of the repository's own top-level packages, and every input goes
through ``test.hypothesis.fuzz_one_input``. Deadlines are off (instrumented code is slower
and a deadline would turn into a flaky crash) and the example database is not written.
"""

import importlib
import os
import sys
import traceback
from collections.abc import Callable
from types import ModuleType
from typing import Any

import atheris
import hypothesis

# Copied from harnesses/pytraceback.py (a shim imports nothing from fuzzorch): the parser
# takes the traceback after this marker, which, unlike atheris' own report, keeps the
# causes and contexts of chained exceptions and the members of exception groups.
SHIM_EXCEPTION_MARKER = "=== fuzzorch: uncaught exception ==="


def _import_roots(root: str) -> list[str]:
    roots = [root]
    src = os.path.join(root, "src")
    if os.path.isdir(src):
        roots.insert(0, src)
    return roots


def _package_names(roots: list[str]) -> list[str]:
    names: set[str] = set()
    for base in roots:
        for entry in os.listdir(base):
            path = os.path.join(base, entry)
            if entry.endswith(".py") and entry != "setup.py":
                names.add(entry[:-3])
            elif os.path.isdir(path) and not entry.startswith(".") and entry.isidentifier():
                names.add(entry)
    return sorted(names)


def _module_name(test_file: str) -> tuple[str, str]:
    # pytest "prepend": the first folder up without __init__.py goes on sys.path.
    folder, name = os.path.split(test_file)
    parts = [name[:-3]]
    while os.path.exists(os.path.join(folder, "__init__.py")):
        folder, package = os.path.split(folder)
        parts.insert(0, package)
    return folder, ".".join(parts)


def _fuzz_target(module: ModuleType, qualname: str) -> Callable[[bytes], Any]:
    owner, _, name = qualname.rpartition("::")
    test: Any
    if not owner:
        test = getattr(module, name)
    else:
        cls = getattr(module, owner)
        method = getattr(cls, name)
        instance = cls()
        inner = method.hypothesis.inner_test

        def bound(**kwargs: Any) -> Any:
            return inner(instance, **kwargs)

        # A method's fuzz target needs ``self``: rebuild the test around a bound call.
        test = hypothesis.given(**method.hypothesis._given_kwargs)(bound)
        test._hypothesis_internal_use_settings = method._hypothesis_internal_use_settings
    base = getattr(test, "_hypothesis_internal_use_settings", None)
    test._hypothesis_internal_use_settings = hypothesis.settings(base, deadline=None, database=None)
    fuzz: Callable[[bytes], Any] = test.hypothesis.fuzz_one_input
    return fuzz


def main() -> None:
    root, test_path, qualname, separator, *engine_args = sys.argv[1:]
    if separator != "--":
        raise SystemExit("usage: ROOT TEST_PATH QUALNAME -- LIBFUZZER_ARGS")
    roots = _import_roots(root)
    test_dir, module_name = _module_name(os.path.join(root, test_path))
    for path in [test_dir, *reversed(roots)]:
        if path not in sys.path:
            sys.path.insert(0, path)
    # The repository's own packages and the test module itself carry the coverage signal.
    include = [*_package_names(roots), module_name.split(".")[0]]
    with atheris.instrument_imports(include=include):
        module = importlib.import_module(module_name)
    fuzz_one_input = _fuzz_target(module, qualname)

    def test_one_input(data: bytes) -> None:
        try:
            fuzz_one_input(data)
        except Exception as exc:
            sys.stdout.flush()
            sys.stderr.write(f"\n{SHIM_EXCEPTION_MARKER}\n")
            traceback.print_exception(exc)
            sys.stderr.flush()
            raise

    atheris.Setup([sys.argv[0], *engine_args], test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()

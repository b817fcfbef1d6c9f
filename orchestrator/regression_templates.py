"""The fixed text of the regression tests ``orchestrator.regression`` writes, in pieces.

Nothing here is formatted with crash data: ``regression`` joins these pieces with the
constants it regenerates as literals, and the only substitutions are ``TEST_NAME`` (the
test's name, ``test_crash_`` + [a-z0-9_]) and ``CALL`` (a call built from validated
identifiers and regenerated literals). What the generated file does is described in
``orchestrator.regression``'s docstring.
"""

from __future__ import annotations

DOCSTRING = '''\
"""Regression test for a fuzzorch crash group (GROUP_ID and TITLE below).

Written by ``fuzzorch crash export-test``: it fails while the crash reproduces and
passes once the bug is fixed. The repository root is the nearest parent folder holding
PATH, or the FUZZORCH_REPO_ROOT environment variable.
"""

from __future__ import annotations

'''

ATHERIS_STDLIB = (
    "import contextlib",
    "import importlib.util",
    "import os",
    "import sys",
    "import types",
    "from pathlib import Path",
    "from typing import Any",
    "from unittest import mock",
)
HYPOTHESIS_STDLIB = (
    "import importlib",
    "import os",
    "import sys",
    "from pathlib import Path",
    "from types import ModuleType",
)
OPTIONAL_ATHERIS = """
try:
    import atheris
except ImportError:  # replayed without atheris: the harness imports a stub instead
    atheris = None
"""

COMMON_HELPERS = '''

def _repository_root() -> Path:
    """FUZZORCH_REPO_ROOT, else the nearest folder above this file that holds PATH."""
    override = os.environ.get("FUZZORCH_REPO_ROOT")
    if override:
        return Path(override).resolve()
    here = Path(__file__).resolve().parent
    for folder in (here, *here.parents):
        if (folder / PATH).is_file():
            return folder
    message = f"no folder above {here} holds {PATH}: set FUZZORCH_REPO_ROOT"
    raise FileNotFoundError(message)


def _reproduced() -> str:
    """The failure message: which crash group came back."""
    return (
        f"fuzzorch crash group {GROUP_ID} reproduces ({HARNESS}): {TITLE}\\n"
        f"signature: {SIGNATURE}"
    )
'''

ATHERIS_HELPERS = '''

def _no_op(*args: Any, **kwargs: Any) -> None:
    """Stands in for atheris.Setup, atheris.Fuzz and atheris.instrument_all."""


def _no_instrumentation(*args: Any, **kwargs: Any) -> contextlib.nullcontext[None]:
    """Stands in for atheris.instrument_imports, used as a context manager."""
    return contextlib.nullcontext()


def _not_instrumented(func: Any) -> Any:
    """Stands in for atheris.instrument_func."""
    return func


class _NeedsAtheris:
    """Stands in for atheris.FuzzedDataProvider, which only atheris can provide."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pytest.skip("the harness decodes its input with atheris: it is not installed")


_NO_FUZZING = {
    "Setup": _no_op,
    "Fuzz": _no_op,
    "instrument_all": _no_op,
    "instrument_imports": _no_instrumentation,
    "instrument_func": _not_instrumented,
}


def _without_fuzzing() -> contextlib.AbstractContextManager[Any]:
    """Harnesses call Setup and Fuzz at import time or under ``__main__`` (not run)."""
    if atheris is not None:
        return mock.patch.multiple(atheris, create=True, **_NO_FUZZING)
    stub = types.ModuleType("atheris")
    vars(stub).update(_NO_FUZZING, FuzzedDataProvider=_NeedsAtheris)
    stub.enabled_hooks = set()  # for ``atheris.enabled_hooks.add("RegEx")``
    return mock.patch.dict(sys.modules, {"atheris": stub})


def _load_harness(root: Path) -> types.ModuleType:
    """Import the script as ``python PATH`` would, with the root and src/ importable."""
    script = root / PATH
    for folder in (root, root / "src", script.parent):
        if folder.is_dir() and str(folder) not in sys.path:
            sys.path.insert(0, str(folder))
    name = "_fuzzorch_harness_" + script.stem
    spec = importlib.util.spec_from_file_location(name, script)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load the harness {script}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module
'''

ATHERIS_TEST = '''

def TEST_NAME() -> None:
    """The harness's TestOneInput must not raise on the crashing input."""
    with _without_fuzzing():
        harness = _load_harness(_repository_root())
        try:
            harness.TestOneInput(DATA)
        except (Exception, SystemExit) as exc:
            raise AssertionError(_reproduced()) from exc
'''

HYPOTHESIS_HELPERS = '''

def _import_test_module(root: Path) -> ModuleType:
    """Import PATH as pytest's default ("prepend") import mode does."""
    test_file = root / PATH
    folder, parts = test_file.parent, [test_file.stem]
    while (folder / "__init__.py").is_file():
        parts.insert(0, folder.name)
        folder = folder.parent
    roots = [root / "src", root] if (root / "src").is_dir() else [root]
    for path in [folder, *reversed(roots)]:
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))
    return importlib.import_module(".".join(parts))
'''

METHOD_HELPER = '''

def _method_test(cls: type, name: str) -> Any:
    """The method as a @given test of its own on an instance, as fuzzorch ran it."""
    method = getattr(cls, name)
    instance = cls()

    def bound(**kwargs: object) -> None:
        method.hypothesis.inner_test(instance, **kwargs)

    bound.__name__, bound.__qualname__ = name, f"{cls.__name__}.{name}"
    test = hypothesis.given(**method.hypothesis._given_kwargs)(bound)
    settings = getattr(method, "_hypothesis_internal_use_settings", None)
    # The fuzzer's failing buffer is not saved to the project's example database.
    settings = hypothesis.settings(settings, database=None)
    test._hypothesis_internal_use_settings = settings
    return test
'''

HYPOTHESIS_DOC = '    """The Hypothesis test must pass on the falsifying example."""\n'

CALL = """\
    try:
        CALL
    except Exception as exc:
        raise AssertionError(_reproduced()) from exc
"""

FUZZ_ONE_INPUT_NOTE = """\
# Replayed with fuzz_one_input, which reads DATA as the fuzzer's raw buffer (the
# falsifying example was not a call with literal arguments): it reproduces the crash
# only if DATA is that buffer, not a minimized Hypothesis choice sequence.
"""

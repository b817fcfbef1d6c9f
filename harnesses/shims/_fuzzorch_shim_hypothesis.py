"""Run one Hypothesis test for fuzzorch: ``ROOT TEST_PATH QUALNAME MODE...``.

Runs inside the sandbox with the target's interpreter, so it imports nothing from fuzzorch.
The test module is imported the way pytest's default ("prepend") import mode does. Modes:

``-- LIBFUZZER_ARGS``
    Fuzz (or run testcase files once) with atheris: the repository's own top-level
    packages are instrumented and every input goes through
    ``test.hypothesis.fuzz_one_input``. Deadlines are off (instrumented code is slower and a
    deadline would turn into a flaky crash) and the example database is not written.
``--shrink TESTCASE OUT``
    Minimize a crashing fuzzer testcase with Hypothesis' own shrinker and write the minimal
    example's choice sequence (Hypothesis' database format) to OUT.
``--replay-choices FILE``
    Run the test once on a choice sequence written by ``--shrink``.

The triage modes import the test without instrumentation. They exit 77 when the test fails
(after the falsifying example, for ``--shrink``, and the shim's traceback marker), 0 with a
"did not reproduce" marker when it passes, and 3 when Hypothesis itself gives up (a flaky
or unsatisfiable replay): see ``harnesses/shim_output.py`` for the markers.
"""

from __future__ import annotations

import base64
import importlib
import os
import re
import sys
import traceback
import unittest
import zlib
from collections.abc import Callable, Iterable
from types import ModuleType
from typing import Any, NoReturn

import atheris
import hypothesis
import hypothesis.errors
from hypothesis import HealthCheck, Phase
from hypothesis.database import ExampleDatabase

# Copied from harnesses/pytraceback.py (a shim imports nothing from fuzzorch): the parser
# takes the traceback after this marker, which, unlike atheris' own report, keeps the
# causes and contexts of chained exceptions and the members of exception groups.
SHIM_EXCEPTION_MARKER = "=== fuzzorch: uncaught exception ==="
# Copied from harnesses/shim_output.py (tests/unit/harnesses/test_shim_output.py compares).
FALSIFYING_EXAMPLE_MARKER = "=== fuzzorch: falsifying example ==="
END_FALSIFYING_EXAMPLE_MARKER = "=== fuzzorch: end falsifying example ==="
DID_NOT_REPRODUCE_MARKER = "=== fuzzorch: did not reproduce ==="
TRUNCATED_MARKER = "[fuzzorch: falsifying example truncated]"
MAX_EXAMPLE_CHARS = 64 * 1024

#: The largest choice sequence --shrink writes or --replay-choices reads.
MAX_CHOICES_BYTES = 1 << 20
#: The largest fuzzer testcase --shrink reads (libFuzzer's -max_len bounds real ones).
MAX_TESTCASE_BYTES = 16 << 20
EXIT_CRASH = 77  # libFuzzer's -error_exitcode in fuzzorch's runs
EXIT_NOT_REPRODUCED = 0
EXIT_INCONCLUSIVE = 3

USAGE = (
    "usage: ROOT TEST_PATH QUALNAME -- LIBFUZZER_ARGS\n"
    "       ROOT TEST_PATH QUALNAME --shrink TESTCASE OUT\n"
    "       ROOT TEST_PATH QUALNAME --replay-choices FILE"
)

# Errors about the run rather than the test: the replay or shrink proved nothing.
_RUN_ERRORS: tuple[type[BaseException], ...] = (
    hypothesis.errors.Flaky,
    hypothesis.errors.Unsatisfiable,
    hypothesis.errors.DidNotReproduce,
    hypothesis.errors.FailedHealthCheck,
    unittest.SkipTest,  # no example ran: an undecodable choice sequence, or the test skips
)
# The note --shrink asks for with print_blob=True: the reported example's exact choices.
_BLOB_NOTE = re.compile(r"@reproduce_failure\([^,]*, b'(?P<blob>[A-Za-z0-9+/=]*)'\)")
_EXAMPLE_NOTE_PREFIXES = ("Failing test case", "Falsifying example", "Falsifying explicit")
_SECONDARY_SUFFIXES = (b".secondary", b".pareto")


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


def _hypothesis_test(module: ModuleType, qualname: str) -> Any:
    """The ``@given`` test for ``qualname``, callable without arguments."""
    owner, _, name = qualname.rpartition("::")
    if not owner:
        return getattr(module, name)
    cls = getattr(module, owner)
    method = getattr(cls, name)
    instance = cls()
    inner = method.hypothesis.inner_test

    def bound(**kwargs: Any) -> Any:
        return inner(instance, **kwargs)

    # Hypothesis names the test by these in its "Failing test case: NAME(...)" report.
    bound.__name__, bound.__qualname__ = name, f"{owner}.{name}"
    # A method needs ``self``: rebuild the test around a bound call.
    test: Any = hypothesis.given(**method.hypothesis._given_kwargs)(bound)
    test._hypothesis_internal_use_settings = method._hypothesis_internal_use_settings
    return test


def _use_settings(test: Any, **changes: Any) -> None:
    base = getattr(test, "_hypothesis_internal_use_settings", None)
    test._hypothesis_internal_use_settings = hypothesis.settings(base, **changes)


def _fuzz_target(module: ModuleType, qualname: str) -> Callable[[bytes], Any]:
    test = _hypothesis_test(module, qualname)
    _use_settings(test, deadline=None, database=None)
    fuzz: Callable[[bytes], Any] = test.hypothesis.fuzz_one_input
    return fuzz


class _ChoicesDatabase(ExampleDatabase):
    """Serves one choice sequence under the keys ending in ``serve_suffix``, stores nothing,
    and remembers the last sequence Hypothesis saved as a failure (primary or secondary)."""

    def __init__(self, choices: bytes | None = None, serve_suffix: bytes = b"") -> None:
        super().__init__()
        self.choices = choices
        self.serve_suffix = serve_suffix
        self.last_primary: bytes | None = None
        self.last_secondary: bytes | None = None

    def save(self, key: bytes, value: bytes) -> None:
        """Remember ``value`` by the kind of key it is saved under."""
        if key.endswith(b".secondary"):
            self.last_secondary = value
        elif not key.endswith(_SECONDARY_SUFFIXES):
            self.last_primary = value

    def fetch(self, key: bytes) -> Iterable[bytes]:
        """The served sequence, whatever the test's key: it may not match the original."""
        if self.choices is not None and key.endswith(self.serve_suffix):
            yield self.choices

    def delete(self, key: bytes, value: bytes) -> None:
        """Nothing is stored, so nothing is deleted."""

    def move(self, src: bytes, dest: bytes, value: bytes) -> None:
        """A move is a save under ``dest``."""
        self.save(dest, value)


def _fail(message: str) -> NoReturn:
    sys.stdout.flush()
    sys.stderr.write(f"fuzzorch shim: {message}\n")
    raise SystemExit(EXIT_INCONCLUSIVE)


def _read_bounded(path: str, limit: int) -> bytes:
    with open(path, "rb") as file:
        data = file.read(limit + 1)
    if len(data) > limit:
        _fail(f"{path!r} is larger than {limit} bytes")
    return data


def _report_crash(exc: BaseException) -> None:
    sys.stdout.flush()
    sys.stderr.write(f"\n{SHIM_EXCEPTION_MARKER}\n")
    traceback.print_exception(exc)
    sys.stderr.flush()


def _not_reproduced() -> NoReturn:
    sys.stdout.flush()
    sys.stderr.write(f"{DID_NOT_REPRODUCE_MARKER}\n")
    raise SystemExit(EXIT_NOT_REPRODUCED)


def _run_once(test: Any) -> Exception | None:
    """Call the test; its exception, or None if it passed. Hypothesis' own give-ups exit."""
    try:
        test()
    except _RUN_ERRORS as exc:
        # Shown for diagnosis, without the crash marker: this is not the test's failure.
        traceback.print_exception(exc)
        _fail(f"Hypothesis could not replay the example: {type(exc).__name__}: {str(exc)[:500]}")
    except Exception as exc:
        return exc
    return None


def format_falsifying_example(example: str) -> str:
    """Copy of harnesses.shim_output.format_falsifying_example."""
    if len(example) > MAX_EXAMPLE_CHARS:
        example = example[:MAX_EXAMPLE_CHARS] + "\n" + TRUNCATED_MARKER
    lines = ["\\" + line if _marker_like(line) else line for line in example.split("\n")]
    return "\n".join([FALSIFYING_EXAMPLE_MARKER, *lines, END_FALSIFYING_EXAMPLE_MARKER])


def _marker_like(line: str) -> bool:
    stripped = line.strip()
    return stripped.startswith("===") and stripped.endswith("===")


def _falsifying_example(notes: list[str]) -> str:
    """Hypothesis' notes from its "Failing test case" line on (all of them if none is)."""
    start = 0
    for index, note in enumerate(notes):
        if note.startswith(_EXAMPLE_NOTE_PREFIXES):
            start = index
            break
    return "\n".join(notes[start:])


def _decode_blob(blob: str) -> bytes | None:
    """The choice bytes in a ``@reproduce_failure`` blob (hypothesis.core.encode_failure)."""
    try:
        raw = base64.b64decode(blob, validate=True)
        if raw[:1] == b"\0":
            return raw[1:]
        if raw[:1] == b"\1":
            inflater = zlib.decompressobj()
            choices = inflater.decompress(raw[1:], MAX_CHOICES_BYTES + 1)
            return choices if inflater.eof and len(choices) <= MAX_CHOICES_BYTES else None
    except (ValueError, zlib.error):
        pass
    return None


def _minimal_choices(exc: BaseException, database: _ChoicesDatabase) -> bytes | None:
    """The reported example's choices, taken out of ``exc``'s notes.

    The blob names exactly the example Hypothesis reports. The last save under the primary
    key is usually the same one, but a failure of another kind met while shrinking is
    saved too, so it is only the fallback (for versions that word the note differently).
    """
    notes = getattr(exc, "__notes__", None)
    if isinstance(notes, list):
        for index in reversed(range(len(notes))):
            note = notes[index]
            match = _BLOB_NOTE.search(note) if isinstance(note, str) else None
            if match:
                # The blob was asked for only to be read here; the traceback goes without it.
                del notes[index]
                decoded = _decode_blob(match.group("blob"))
                if decoded is not None:
                    return decoded
                break
    return database.last_primary


def shrink(test: Any, testcase: bytes, out: str) -> NoReturn:
    """Minimize the failure ``testcase`` causes, write its choices to ``out`` and exit."""
    # fuzz_one_input saves a failing buffer as a choice sequence under the ".secondary" key.
    recorder = _ChoicesDatabase()
    _use_settings(test, deadline=None, database=recorder)
    try:
        test.hypothesis.fuzz_one_input(testcase)
    except Exception:  # noqa: S110  # the failure is reported after shrinking
        pass
    else:
        _not_reproduced()
    if recorder.last_secondary is None:
        _fail("the test failed but Hypothesis saved no example to shrink")
    # Served under ".secondary" only: served as a primary (already shrunk) example, the
    # reuse phase would end the run before shrinking.
    database = _ChoicesDatabase(recorder.last_secondary, serve_suffix=b".secondary")
    hypothesis.seed(0)(test)  # a fixed shrink; seed() turns the database off, so it comes first
    _use_settings(
        test,
        database=database,
        phases=[Phase.reuse, Phase.shrink],
        deadline=None,
        report_multiple_bugs=False,
        print_blob=True,
        suppress_health_check=list(HealthCheck),
    )
    exc = _run_once(test)
    if exc is None:
        _fail("the test failed under fuzz_one_input but passed when Hypothesis replayed it")
    choices = _minimal_choices(exc, database)
    if choices is None:
        sys.stderr.write("fuzzorch shim: no minimal example reported; writing the testcase's\n")
        choices = recorder.last_secondary
    if len(choices) > MAX_CHOICES_BYTES:
        _fail(f"the minimal example has {len(choices)} bytes, over {MAX_CHOICES_BYTES}")
    with open(out, "wb") as file:
        file.write(choices)
    notes = getattr(exc, "__notes__", None)
    example = _falsifying_example([n for n in notes if isinstance(n, str)] if notes else [])
    sys.stdout.flush()
    sys.stderr.write(f"{format_falsifying_example(example)}\n")
    _report_crash(exc)
    raise SystemExit(EXIT_CRASH)


def replay_choices(test: Any, choices: bytes) -> NoReturn:
    """Run the test on one choice sequence; report a failure and exit."""
    hypothesis.seed(0)(test)  # choices past the end of the sequence are drawn from the seed
    _use_settings(
        test,
        database=_ChoicesDatabase(choices),
        phases=[Phase.reuse],
        deadline=None,
        report_multiple_bugs=False,
        print_blob=False,
        suppress_health_check=list(HealthCheck),
    )
    exc = _run_once(test)
    if exc is None:
        _not_reproduced()
    _report_crash(exc)
    raise SystemExit(EXIT_CRASH)


def fuzz(module: ModuleType, qualname: str, engine_args: list[str]) -> None:
    """Hand the test's fuzz target to atheris (which exits the process)."""
    fuzz_one_input = _fuzz_target(module, qualname)

    def test_one_input(data: bytes) -> None:
        try:
            fuzz_one_input(data)
        except Exception as exc:
            _report_crash(exc)
            raise

    atheris.Setup([sys.argv[0], *engine_args], test_one_input)
    atheris.Fuzz()


def _import_test_module(root: str, test_path: str, instrument: bool) -> ModuleType:
    roots = _import_roots(root)
    test_dir, module_name = _module_name(os.path.join(root, test_path))
    for path in [test_dir, *reversed(roots)]:
        if path not in sys.path:
            sys.path.insert(0, path)
    if not instrument:
        return importlib.import_module(module_name)
    # The repository's own packages and the test module itself carry the coverage signal.
    include = [*_package_names(roots), module_name.split(".")[0]]
    with atheris.instrument_imports(include=include):
        return importlib.import_module(module_name)


def main() -> None:
    """Parse the command line and run one mode."""
    if len(sys.argv) < 5:
        raise SystemExit(USAGE)
    root, test_path, qualname, mode, *rest = sys.argv[1:]
    if mode == "--":
        module = _import_test_module(root, test_path, instrument=True)
        fuzz(module, qualname, rest)
    elif mode == "--shrink" and len(rest) == 2:
        testcase = _read_bounded(rest[0], MAX_TESTCASE_BYTES)
        module = _import_test_module(root, test_path, instrument=False)
        shrink(_hypothesis_test(module, qualname), testcase, rest[1])
    elif mode == "--replay-choices" and len(rest) == 1:
        choices = _read_bounded(rest[0], MAX_CHOICES_BYTES)
        module = _import_test_module(root, test_path, instrument=False)
        replay_choices(_hypothesis_test(module, qualname), choices)
    else:
        raise SystemExit(USAGE)


if __name__ == "__main__":
    main()

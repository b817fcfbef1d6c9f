"""Regenerate the traceback corpus: run small programs and record what Python printed.

Run once from the repository root with the project's interpreter (it needs hypothesis and
pyyaml): ``.venv/bin/python tests/data/tracebacks/generate.py``. Each case below is a
small project written to a temporary directory and run there; its merged stdout and stderr
become ``<case>.txt`` with machine-specific prefixes rewritten (see ``_rewrite``), and
``<case>.json`` records the command, the roots and harness the signature needs, and the
expected signature.

The expected canonical strings and titles are written here by hand from the programs, not
computed by fuzzorch: ``tests/unit/harnesses/test_signature_corpus.py`` checks the code
against them. Cases taken from ``tests/data/engine_output/`` only get a sidecar.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import sysconfig
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent

ROOT = "/work/repo"
SITE = "/venv/lib/python3.11/site-packages"
STDLIB = "/usr/lib/python3.11"


@dataclass(frozen=True)
class Case:
    """A program to run from a fresh project root, and the signature it should get."""

    name: str
    description: str
    argv: tuple[str, ...]  # after the interpreter, run with the project root as cwd
    kind: str
    harness_path: str | None
    canonical: str
    title: str
    files: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Captured:
    """A capture already in ``tests/data/engine_output/``: only its sidecar is written."""

    name: str
    description: str
    source: str
    kind: str
    harness_path: str
    canonical: str
    title: str
    roots: tuple[str, ...] = ("/src/target",)


PARSER_FILES = {
    "pkg/__init__.py": "",
    "pkg/errors.py": (
        'class ParseError(Exception):\n    """The input is not a valid document."""\n'
    ),
    "pkg/parser.py": """\
from pkg.errors import ParseError

ESCAPES = {b"n": "\\n", b"t": "\\t"}


def lookup(table, key):
    return table[key]


def parse(data):
    try:
        return lookup(ESCAPES, data[1:2])
    except KeyError as error:
        raise ParseError(f"bad escape {data[:2]!r}") from error
""",
    "pkg/api.py": """\
from pkg.parser import parse


def load_document(data):
    return parse(data)
""",
    "fuzz/fuzz_parse.py": """\
from pkg.api import load_document


def TestOneInput(data):
    load_document(data)


if __name__ == "__main__":
    TestOneInput(b"\\\\q")
""",
}

NUMBERS_FILES = {
    "pkg/__init__.py": "",
    "pkg/numbers.py": """\
UNITS = {"k": 1000, "M": 1000000}


def unit_factor(suffix):
    return UNITS[suffix]


def parse_size(text):
    try:
        return int(text)
    except ValueError:
        # The bug: a suffix that is not a unit escapes from the handler as a KeyError.
        return int(text[:-1]) * unit_factor(text[-1])
""",
    "fuzz/fuzz_size.py": """\
from pkg.numbers import parse_size


def TestOneInput(data):
    parse_size(data.decode("ascii", "replace"))


if __name__ == "__main__":
    TestOneInput(b"12x")
""",
}

GROUP_FILES = {
    "pkg/__init__.py": "",
    "pkg/batch.py": """\
def check_item(item):
    if len(item) > 3:
        raise OverflowError(f"item too long: {len(item)}")
    if not item:
        raise ValueError("empty item")


def validate_all(items):
    errors = []
    for item in items:
        try:
            check_item(item)
        except (OverflowError, ValueError) as error:
            errors.append(error)
    if errors:
        raise ExceptionGroup("invalid items", errors)
""",
    "fuzz/fuzz_batch.py": """\
from pkg.batch import validate_all


def TestOneInput(data):
    validate_all(data.split(b","))


if __name__ == "__main__":
    TestOneInput(b"abcdef,,x")
""",
}

HYPOTHESIS_FILES = {
    "pkg/__init__.py": "",
    "pkg/validate.py": """\
def check(x):
    if x < 0:
        raise ValueError(f"negative: {x}")
    if x > 10:
        raise TypeError(f"too big: {x}")
""",
    "fuzz/test_validate.py": """\
from hypothesis import given, settings
from hypothesis import strategies as st

from pkg.validate import check


@settings(report_multiple_bugs=True, database=None, derandomize=True)
@given(st.integers())
def test_check(x):
    check(x)


if __name__ == "__main__":
    test_check()
""",
}

RECURSION_FILES = {
    "pkg/__init__.py": "",
    "pkg/tree.py": """\
def nesting(node):
    \"\"\"How deeply lists nest in ``node``: a list that contains itself never ends.\"\"\"
    if isinstance(node, list) and node:
        return 1 + nesting(node[0])
    return 0


def depth(node):
    \"\"\"The same through a generator expression: two functions alternate on the stack.\"\"\"
    if not isinstance(node, list) or not node:
        return 0
    return 1 + max(depth(child) for child in node)
""",
    "fuzz/fuzz_tree.py": """\
import sys

from pkg.tree import depth, nesting


def TestOneInput(data):
    node = []
    node.append(node)
    (depth if data == b"depth" else nesting)(node)


if __name__ == "__main__":
    TestOneInput(sys.argv[1].encode())
""",
}

YAML_CONFIG_FILES = {
    "pkg/__init__.py": "",
    "pkg/config.py": """\
import yaml


def load_config(text):
    return yaml.safe_load(text)
""",
    "fuzz/fuzz_config.py": """\
from pkg.config import load_config


def TestOneInput(data):
    load_config(data.decode("utf-8", "replace"))


if __name__ == "__main__":
    TestOneInput(b"key: !!binary 'a'\\n")
""",
}

STORE_FILES = {
    "pkg/__init__.py": "",
    "pkg/store.py": """\
RECORDS = {"a": 1}


def read_record(key):
    return RECORDS[key]


def fetch(key):
    try:
        return read_record(key)
    except KeyError as error:
        raise LookupError(f"no record {key!r}") from error


def fallback(key):
    raise RuntimeError(f"no fallback for {key!r}")


def load(key):
    try:
        return fetch(key)
    except LookupError:
        return fallback(key)


def parse_item(item):
    return int(item)


def parse_all(items):
    errors = []
    for item in items:
        try:
            parse_item(item)
        except ValueError as error:
            errors.append(error)
    if errors:
        raise ExceptionGroup("bad items", errors)


def load_batch(text):
    try:
        return parse_all(text.split(","))
    except ExceptionGroup as group:
        raise RuntimeError("bad batch") from group


def check_all(keys):
    try:
        return [RECORDS[key] for key in keys]
    except KeyError as error:
        raise ExceptionGroup("unchecked", [ValueError(str(error))]) from error
""",
    "pkg/api.py": """\
from pkg.store import check_all, load, load_batch


def handle(request):
    kind, _, argument = request.partition(":")
    if kind == "get":
        return load(argument)
    if kind == "batch":
        return load_batch(argument)
    return check_all(argument.split(","))
""",
    "fuzz/fuzz_store.py": """\
import sys

from pkg.api import handle


def TestOneInput(data):
    handle(data.decode("utf-8", "replace"))


if __name__ == "__main__":
    TestOneInput(sys.argv[1].encode())
""",
}

HARNESS_FILES = {
    "fuzz/fuzz_checksum.py": """\
def checksum(data):
    return sum(data) // (len(data) - 4)


def TestOneInput(data):
    checksum(data)


if __name__ == "__main__":
    TestOneInput(b"abcd")
""",
}

CASES: tuple[Case | Captured, ...] = (
    Case(
        name="chain_from",
        description="`raise ParseError(...) from error` around a KeyError in repository code",
        files=PARSER_FILES,
        argv=("fuzz/fuzz_parse.py",),
        kind="exception",
        harness_path="fuzz/fuzz_parse.py",
        # The cause's traceback starts at parse; load_document is printed with ParseError.
        canonical=(
            "exception|KeyError|pkg/parser.py:lookup|pkg/parser.py:parse|pkg/api.py:load_document"
        ),
        title="KeyError in lookup (pkg/parser.py)",
    ),
    Case(
        name="chain_context",
        description="a KeyError raised while handling a ValueError (implicit __context__)",
        files=NUMBERS_FILES,
        argv=("fuzz/fuzz_size.py",),
        kind="exception",
        harness_path="fuzz/fuzz_size.py",
        # The first exception printed wins, as for `raise ... from` (see the README).
        canonical="exception|ValueError|pkg/numbers.py:parse_size||",
        title="ValueError in parse_size (pkg/numbers.py)",
    ),
    Case(
        name="exception_group",
        description="a built-in ExceptionGroup of two leaves raised by repository code",
        files=GROUP_FILES,
        argv=("fuzz/fuzz_batch.py",),
        kind="exception",
        harness_path="fuzz/fuzz_batch.py",
        # validate_all raised the group and caught the leaf: one call, one frame.
        canonical="exception|OverflowError|pkg/batch.py:check_item|pkg/batch.py:validate_all|",
        title="OverflowError in check_item (pkg/batch.py)",
    ),
    Case(
        name="hypothesis_multiple_failures",
        description="Hypothesis 6.170 with report_multiple_bugs=True finding two distinct bugs",
        files=HYPOTHESIS_FILES,
        argv=("fuzz/test_validate.py",),
        kind="exception",
        harness_path="fuzz/test_validate.py",
        canonical="exception|TypeError|pkg/validate.py:check||",
        title="TypeError in check (pkg/validate.py)",
    ),
    Case(
        name="recursion_repeated",
        description="unbounded self-recursion: '[Previous line repeated N more times]'",
        files=RECURSION_FILES,
        argv=("fuzz/fuzz_tree.py", "nesting"),
        kind="exception",
        harness_path="fuzz/fuzz_tree.py",
        canonical=(
            "exception|RecursionError|pkg/tree.py:nesting|pkg/tree.py:nesting|pkg/tree.py:nesting"
        ),
        title="RecursionError in nesting (pkg/tree.py)",
    ),
    Case(
        name="recursion_alternating",
        description="recursion through a generator expression: ~1000 distinct frames printed",
        files=RECURSION_FILES,
        argv=("fuzz/fuzz_tree.py", "depth"),
        kind="exception",
        harness_path="fuzz/fuzz_tree.py",
        canonical=(
            "exception|RecursionError|pkg/tree.py:depth|pkg/tree.py:<genexpr>|pkg/tree.py:depth"
        ),
        title="RecursionError in depth (pkg/tree.py)",
    ),
    Case(
        name="stdlib_only",
        description="json.loads on truncated input from `python -c`: only stdlib frames",
        argv=("-c", "import json, sys; json.loads(sys.argv[1])", '{"size": '),
        kind="exception",
        harness_path=None,
        canonical=(
            "exception|json.decoder.JSONDecodeError|json/decoder.py:raw_decode"
            "|json/decoder.py:decode|json/__init__.py:loads"
        ),
        title="json.decoder.JSONDecodeError in raw_decode (json/decoder.py)",
    ),
    Case(
        name="site_packages_only",
        description="yaml.safe_load on an unclosed flow sequence from `python -c`",
        argv=("-c", "import sys, yaml; yaml.safe_load(sys.argv[1])", "a: [1, 2"),
        kind="exception",
        harness_path=None,
        canonical=(
            "exception|yaml.parser.ParserError|yaml/parser.py:parse_flow_sequence_entry"
            "|yaml/parser.py:check_event|yaml/composer.py:compose_sequence_node"
        ),
        title="yaml.parser.ParserError in parse_flow_sequence_entry (yaml/parser.py)",
    ),
    Case(
        name="library_chain_stdlib_site",
        description="PyYAML turning base64's binascii.Error into a ConstructorError",
        argv=("-c", "import yaml; yaml.safe_load(\"key: !!binary 'a'\")"),
        kind="exception",
        harness_path=None,
        # construct_object called construct_yaml_binary, whose handler raised the
        # ConstructorError: it is printed with that one only.
        canonical=(
            "exception|binascii.Error|base64.py:decodebytes"
            "|yaml/constructor.py:construct_yaml_binary|yaml/constructor.py:construct_object"
        ),
        title="binascii.Error in decodebytes (base64.py)",
    ),
    Case(
        name="library_chain_through_repo",
        description="the same PyYAML chain reached through repository code",
        files=YAML_CONFIG_FILES,
        argv=("fuzz/fuzz_config.py",),
        kind="exception",
        harness_path="fuzz/fuzz_config.py",
        # Every frame printed for the cause is PyYAML's or base64's: load_config, on its
        # stack, is printed with the ConstructorError.
        canonical="exception|binascii.Error|pkg/config.py:load_config||",
        title="binascii.Error in load_config (pkg/config.py)",
    ),
    Case(
        name="chain_three",
        description="KeyError -> (from) LookupError -> (while handling) RuntimeError, "
        "each caught in a different function",
        files=STORE_FILES,
        argv=("fuzz/fuzz_store.py", "get:b"),
        kind="exception",
        harness_path="fuzz/fuzz_store.py",
        # fetch caught the KeyError; load, which called fetch, caught the LookupError.
        canonical=(
            "exception|KeyError|pkg/store.py:read_record|pkg/store.py:fetch|pkg/store.py:load"
        ),
        title="KeyError in read_record (pkg/store.py)",
    ),
    Case(
        name="group_cause",
        description="an ExceptionGroup, the direct cause of the RuntimeError that ends the run",
        files=STORE_FILES,
        argv=("fuzz/fuzz_store.py", "batch:1,x"),
        kind="exception",
        harness_path="fuzz/fuzz_store.py",
        # The leaf's stack: RuntimeError's down to load_batch (which caught the group), the
        # group's down to parse_all (which caught the leaf), the leaf's own.
        canonical=(
            "exception|ValueError|pkg/store.py:parse_item|pkg/store.py:parse_all"
            "|pkg/store.py:load_batch"
        ),
        title="ValueError in parse_item (pkg/store.py)",
    ),
    Case(
        name="group_from_cause",
        description="an ExceptionGroup of a never-raised leaf, raised from a KeyError",
        files=STORE_FILES,
        argv=("fuzz/fuzz_store.py", "check:a,b"),
        kind="exception",
        harness_path="fuzz/fuzz_store.py",
        # The KeyError (printed first) was caught in check_all, which handle called.
        canonical=(
            "exception|KeyError|pkg/store.py:<listcomp>|pkg/store.py:check_all|pkg/api.py:handle"
        ),
        title="KeyError in <listcomp> (pkg/store.py)",
    ),
    Case(
        name="harness_only",
        description="a ZeroDivisionError with every frame in the harness file",
        files=HARNESS_FILES,
        argv=("fuzz/fuzz_checksum.py",),
        kind="exception",
        harness_path="fuzz/fuzz_checksum.py",
        canonical=(
            "exception|ZeroDivisionError|fuzz/fuzz_checksum.py:checksum"
            "|fuzz/fuzz_checksum.py:TestOneInput|fuzz/fuzz_checksum.py:<module>"
        ),
        title="ZeroDivisionError in checksum (fuzz/fuzz_checksum.py)",
    ),
    Captured(
        name="atheris_timeout",
        description="atheris -timeout=1 on a `while True` in repository code",
        source="engine_output/atheris_timeout.txt",
        kind="timeout",
        harness_path="h_timeout.py",
        canonical="timeout||pkg/parser.py:spin||",
        title="Timeout in spin (pkg/parser.py)",
    ),
    Captured(
        name="atheris_oom",
        description="atheris -rss_limit_mb=300: libFuzzer prints no Python stack",
        source="engine_output/atheris_oom.txt",
        kind="oom",
        harness_path="h_oom.py",
        canonical="oom||||",
        title="Out of memory",
    ),
    Captured(
        name="atheris_sys_exit",
        description="sys.exit(2) in the harness: atheris reports an uncaught SystemExit",
        source="engine_output/atheris_sys_exit.txt",
        kind="exit",
        harness_path="h_sysexit.py",
        canonical="exit||h_sysexit.py:TestOneInput||",
        title="Exit in TestOneInput (h_sysexit.py)",
    ),
    Captured(
        name="atheris_segv",
        description="ctypes.string_at(0) under atheris: 'deadly signal', no name, no stack",
        source="engine_output/atheris_segv.txt",
        kind="signal",
        harness_path="h_segv.py",
        canonical="signal||||",
        title="Signal",
    ),
    Captured(
        name="atheris_segv_faulthandler",
        description="the same with PYTHONFAULTHANDLER=1: faulthandler names SIGSEGV",
        source="engine_output/atheris_segv_faulthandler.txt",
        kind="signal",
        harness_path="h_segv.py",
        # The harness outranks the standard library, so ctypes' frame is skipped.
        canonical="signal|SIGSEGV|h_segv.py:TestOneInput|h_segv.py:<module>|",
        title="SIGSEGV in TestOneInput (h_segv.py)",
    ),
)


def _rewrite(text: str, root: Path) -> str:
    """Machine-independent paths: the project root, site-packages and the stdlib."""
    replacements = [
        (sysconfig.get_paths()["purelib"], SITE),
        (sysconfig.get_paths()["stdlib"], STDLIB),
        (str(root), ROOT),
    ]
    for real, fake in replacements:
        text = text.replace(real.rstrip("/") + "/", fake + "/")
    return text


def _run(case: Case) -> tuple[str, int]:
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch).resolve() / "repo"
        for relative, source in case.files.items():
            path = root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(source, encoding="utf-8")
        root.mkdir(exist_ok=True)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": str(root),
            "PYTHONHASHSEED": "0",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONIOENCODING": "utf-8",
            "HOME": scratch,
        }
        done = subprocess.run(
            [sys.executable, *case.argv],
            cwd=root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=120,
            check=False,
        )
        return _rewrite(done.stdout, root), done.returncode


def _sidecar(case: Case | Captured, output: str, extra: dict[str, object]) -> dict[str, object]:
    sidecar: dict[str, object] = {
        "case": case.name,
        "description": case.description,
        "output": output,
        **extra,
        "kind": case.kind,
        "harness_path": case.harness_path,
        "canonical": case.canonical,
        "sha1": hashlib.sha1(case.canonical.encode("utf-8"), usedforsecurity=False).hexdigest(),
        "title": case.title,
    }
    return sidecar


def main() -> None:
    """Write every case's output (when it runs a program) and its sidecar."""
    for case in CASES:
        if isinstance(case, Captured):
            sidecar = _sidecar(case, case.source, {"command": None, "roots": list(case.roots)})
        else:
            text, code = _run(case)
            (HERE / f"{case.name}.txt").write_text(text, encoding="utf-8")
            extra = {"command": ["python", *case.argv], "exit_code": code, "roots": [ROOT]}
            sidecar = _sidecar(case, f"tracebacks/{case.name}.txt", extra)
        (HERE / f"{case.name}.json").write_text(
            json.dumps(sidecar, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        print(f"{case.name}: {case.canonical}")


if __name__ == "__main__":
    main()

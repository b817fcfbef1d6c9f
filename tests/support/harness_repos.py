"""Small target repositories for job-level tests: a package with a planted bug, and hostiles.

Every repository here shares one ``pyproject.toml`` (and the ``pkg`` package it installs),
so they all have one dependency fingerprint and one environment build serves every test
of a session (``workers.envcache.fingerprint`` reads only the dependency files and the
install commands). The hostile harnesses act only on inputs of two bytes or more: with no
corpus, libFuzzer runs the empty input and a one-byte ``"\\n"`` before it prints ``INITED``,
so the worker has seen the harness start before it misbehaves.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from string import Template
from textwrap import dedent
from typing import Any

from harnesses.model import HarnessKind, HarnessOptions
from tests.support.gitrepo import Content, GitRepo
from workers.contract import JobSpec

# The shared dependency file: no [tool.fuzzorch] install, so the worker's default
# (``pip install --no-input -e .``) builds the environment, as for an unconfigured target.
PYPROJECT = dedent(
    """
    [build-system]
    requires = ["setuptools>=61"]
    build-backend = "setuptools.build_meta"

    [project]
    name = "pkg"
    version = "0.1"

    [tool.setuptools]
    packages = ["pkg"]
    """
).lstrip()

PARSER = dedent(
    '''
    """A tiny record parser with a planted bug."""


    def unescape(field: bytes) -> bytes:
        """Resolve backslash escapes; a trailing backslash reads past the end (the bug)."""
        out = bytearray()
        i = 0
        while i < len(field):
            if field[i] == 0x5C:
                out.append(field[i + 1])
                i += 2
            else:
                out.append(field[i])
                i += 1
        return bytes(out)


    def parse(data: bytes) -> list[bytes]:
        """Split a record on commas and unescape each field."""
        fields = []
        for raw in data.split(b","):
            fields.append(unescape(raw))
        return fields


    def classify(data: bytes) -> dict[str, int]:
        """Count the kinds of bytes in a record (correct, with branches to cover)."""
        counts = {"digit": 0, "upper": 0, "lower": 0, "space": 0, "punct": 0, "other": 0}
        for byte in data:
            if 0x30 <= byte <= 0x39:
                counts["digit"] += 1
            elif 0x41 <= byte <= 0x5A:
                counts["upper"] += 1
            elif 0x61 <= byte <= 0x7A:
                counts["lower"] += 1
            elif byte in b" \\t\\r\\n":
                counts["space"] += 1
            elif byte in b",.;:!?":
                counts["punct"] += 1
            else:
                counts["other"] += 1
        if counts["digit"] and counts["upper"] and counts["lower"]:
            counts["mixed"] = 1
        return counts
    '''
).lstrip()

# An atheris script around a TestOneInput body; ``imports`` go before the instrumented ones.
_ATHERIS = """\
import sys

import atheris
{imports}
with atheris.instrument_imports():
    import pkg.parser


def TestOneInput(data):
{body}


if __name__ == "__main__":
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()
"""


def atheris_script(body: str, imports: str = "") -> str:
    """An atheris harness whose TestOneInput runs ``body`` (indented for it here)."""
    indented = "\n".join("    " + line if line else "" for line in dedent(body).splitlines())
    return _ATHERIS.format(imports=dedent(imports), body=indented)


FUZZ_PARSE = atheris_script("pkg.parser.parse(data)")
FUZZ_CLASSIFY = atheris_script("pkg.parser.classify(data)")
# Harnesses that fail while importing, before atheris starts: an ImportError, and a crash
# of native code (which kills the interpreter with SIGSEGV, so no traceback is printed).
FUZZ_BROKEN = atheris_script("pkg.parser.parse(data)", "from pkg.parser import no_such_function\n")
FUZZ_NATIVE_CRASH = atheris_script(
    "pkg.parser.parse(data)", "import ctypes\n\nctypes.string_at(0)\n"
)

PROPERTY_TESTS = dedent(
    """
    from hypothesis import given, strategies as st

    from pkg.parser import parse


    @given(st.binary())
    def test_parse(data):
        parse(data)


    class TestParser:
        @given(st.binary())
        def test_parse_method(self, data):
            parse(data)
    """
).lstrip()

# Harness names, as discovery names them.
PARSE = "fuzz/fuzz_parse.py"
CLASSIFY = "fuzz/fuzz_classify.py"
BROKEN = "fuzz/fuzz_broken.py"
NATIVE_CRASH = "fuzz/fuzz_native_crash.py"
TEST_FUNCTION = "tests/test_parser.py::test_parse"
TEST_METHOD = "tests/test_parser.py::TestParser::test_parse_method"


@dataclass(frozen=True)
class TargetRepo:
    """A target repository at one commit, and the job specs for its harnesses."""

    name: str
    repo: GitRepo
    commit: str

    @property
    def source(self) -> str:
        """Where a worker clones it from."""
        return str(self.repo.path)

    def spec(self, harness: str, job_id: str, **fields: Any) -> JobSpec:
        """A job on ``harness`` (an atheris path, or ``path::test`` for Hypothesis)."""
        path, _, test = harness.partition("::")
        fields.setdefault("options", HarnessOptions(timeout=1))
        return JobSpec(
            job_id=job_id,
            repo=self.name,
            source=self.source,
            commit=self.commit,
            harness=harness,
            kind=HarnessKind.HYPOTHESIS if test else HarnessKind.ATHERIS,
            path=path,
            **fields,
        )

    def change(self, files: Mapping[str, Content], message: str = "change") -> TargetRepo:
        """Commit ``files`` on top and return the repository at the new commit."""
        return TargetRepo(self.name, self.repo, self.repo.commit(files, message=message))


def base_files() -> dict[str, Content]:
    """The files every repository here starts from: so any of them builds the shared env."""
    return {"pyproject.toml": PYPROJECT, "pkg/__init__.py": "", "pkg/parser.py": PARSER}


def parser_repo(root: Path, name: str = "parser") -> TargetRepo:
    """The package with the planted bug, fuzzed by atheris scripts and Hypothesis tests."""
    repo = GitRepo.init(root / name)
    commit = repo.commit(
        {
            **base_files(),
            PARSE: FUZZ_PARSE,
            CLASSIFY: FUZZ_CLASSIFY,
            BROKEN: FUZZ_BROKEN,
            NATIVE_CRASH: FUZZ_NATIVE_CRASH,
            "tests/test_parser.py": PROPERTY_TESTS,
        },
        message="A parser, its fuzzers and its property tests",
    )
    return TargetRepo(name, repo, commit)


HOSTILE = "fuzz/fuzz_hostile.py"

# One harness per hostile behaviour. Each acts on a non-empty input; those that survive
# what they tried raise ``Contained`` with what they saw, so the test can read it back
# from the crash report.
_CONTAINED = "\nclass Contained(Exception):\n    pass\n\n"

HOSTILE_BODIES: dict[str, tuple[str, str]] = {
    # Everything the harness can see of any environment: its own and other processes'.
    "environment": (
        "import os\n",
        """
        if len(data) < 2:
            return
        print("OWN ENVIRONMENT", dict(os.environ), flush=True)
        for pid in os.listdir("/proc"):
            try:
                with open(f"/proc/{pid}/environ", "rb") as handle:
                    print("ENVIRONMENT OF", pid, handle.read(), flush=True)
            except OSError:
                pass
        raise Contained("environment names: " + " ".join(sorted(os.environ)))
        """,
    ),
    "network": (
        "import socket\n",
        """
        if len(data) < 2:
            return
        try:
            connection = socket.create_connection(("127.0.0.1", $port), timeout=1)
        except OSError as exc:
            raise Contained(f"no connection: {exc!r}") from None
        connection.sendall(b"ESCAPED")
        raise RuntimeError("ESCAPED: connected to the host")
        """,
    ),
    "infinite_loop": (
        "",
        """
        if len(data) < 2:
            return
        while True:
            pass
        """,
    ),
    # Slowly enough (about 400 MB/s) for libFuzzer's once-a-second RSS check to see it
    # before the address-space limit turns the next allocation into a MemoryError.
    "memory": (
        "import time\n",
        """
        if len(data) < 2:
            return
        hoard = []
        while True:
            hoard.append(b"x" * (20 << 20))
            time.sleep(0.05)
        """,
    ),
    "fork_bomb": (
        "import os\nimport time\n",
        """
        if len(data) < 2:
            return
        while True:
            if os.fork() == 0:
                try:
                    while True:
                        os.fork()
                except OSError:
                    time.sleep(3600)
        """,
    ),
    # A sparse write just past the limit: the limit bites without filling the disk.
    "file_size": (
        "import os\n",
        """
        if len(data) < 2:
            return
        with open("big.bin", "wb") as handle:
            handle.seek($offset)
            handle.write(b"x")
        """,
    ),
    "kill": (
        "import os\nimport signal\n",
        """
        if len(data) < 2:
            return
        tried = []
        for pid in (os.getppid(), 1, -1):
            try:
                os.kill(pid, signal.SIGKILL)
                tried.append(f"{pid}: sent")
            except OSError as exc:
                tried.append(f"{pid}: {exc.strerror}")
        raise Contained("still running after kill " + ", ".join(tried))
        """,
    ),
    # Plants code where the next job would run it: its environment, the engines shared by
    # every environment, the worktree, and the corpus cache.
    "tamper": (
        "import os\n",
        """
        if len(data) < 2:
            return
        results = []
        for what, path in [
            ("environment", os.path.join(sys.prefix, "pyvenv.cfg")),
            ("engines", atheris.__file__),
            ("worktree", pkg.parser.__file__),
            ("corpus", os.path.join(sys.argv[-1], "planted")),
        ]:
            try:
                with open(path, "a") as handle:
                    handle.write("planted")
                results.append(f"{what}: written")
            except OSError as exc:
                results.append(f"{what}: {exc.strerror}")
        raise Contained("; ".join(results))
        """,
    ),
    "os_exit": (
        "import os\n",
        """
        if len(data) < 2:
            return
        os._exit(3)
        """,
    ),
    "segfault": (
        "import ctypes\n",
        """
        if len(data) < 2:
            return
        ctypes.string_at(0)
        """,
    ),
    "chatty": (
        "import sys\n",
        """
        sys.stdout.write("x" * 1_000_000 + "\\n")
        pkg.parser.classify(data)
        """,
    ),
}


def hostile_repo(root: Path, behaviour: str, **params: object) -> TargetRepo:
    """A repository whose one harness (``HOSTILE``) does ``behaviour`` on its inputs."""
    imports, body = HOSTILE_BODIES[behaviour]
    script = atheris_script(Template(dedent(body)).substitute(params), imports + "\n" + _CONTAINED)
    name = "hostile-" + re.sub(r"[^a-z0-9]+", "-", behaviour)
    repo = GitRepo.init(root / name)
    commit = repo.commit({**base_files(), HOSTILE: script}, message=f"A {behaviour} harness")
    return TargetRepo(name, repo, commit)

"""Running one crash testcase at one commit, sandboxed, and saying how it ended.

A triage job tests many commits. For each it checks out a worktree, builds (or reuses, by
dependency fingerprint) the environment, puts the harness in place — the crash commit's
harness file when the commit predates it (a transplant) — and runs the testcase through
the same engine command line fuzzing uses, in libFuzzer's run-these-files-once mode. The
crash is described and signed exactly as a fuzz job signs it, so "reproduces" means
"crashes with the same signature".
"""

from __future__ import annotations

import contextlib
import enum
import os
import shutil
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from harnesses.config import parse_pyproject
from harnesses.errors import HarnessError
from harnesses.libfuzzer import EXIT_CRASH, EXIT_OOM, EXIT_TIMEOUT, OutputParser
from harnesses.pytraceback import parse_crash
from harnesses.signature import crash_signature, relative_path
from workers.contract import Frame
from workers.crashes import describe
from workers.engine import (
    DEFAULT_TIMEOUT_S,
    RunFolders,
    engine_run,
    import_roots,
    prepare_folders,
)
from workers.engine_site import engine_site
from workers.envcache import BuildFailure, Environment
from workers.fuzzjob import WorkerCaches
from workers.safefiles import write_new
from workers.sandbox import RunResult
from workers.triage_contract import TriageSpec

MAX_PYPROJECT_BYTES = 1024 * 1024
MAX_HARNESS_BYTES = 1024 * 1024
MAX_OUTPUT_CHARS = 200_000
START_GRACE_S = 60.0
SHRINK_WALL_S = 300.0
_PREFIX_FOR_EXIT = {EXIT_CRASH: "crash", EXIT_TIMEOUT: "timeout", EXIT_OOM: "oom"}


class RunState(enum.StrEnum):
    """How one run of a testcase ended."""

    CRASHED = "crashed"
    CLEAN = "clean"  # ran to its end without a crash
    NO_START = "no_start"  # the harness could not start (import error, missing module …)


@dataclass(frozen=True)
class Attempt:
    """One run: its end, and for a crash its signature and stack."""

    state: RunState
    signature: str | None = None
    kind: str | None = None
    exception_type: str | None = None
    message: str | None = None
    stack: tuple[Frame, ...] = ()
    output: str = ""

    def matches(self, signature: str) -> bool:
        """Whether this run crashed with ``signature``."""
        return self.state is RunState.CRASHED and self.signature == signature


@dataclass(frozen=True)
class Unrunnable:
    """The harness cannot be run at a commit, for a reason that is not the build."""

    reason: str


@dataclass(frozen=True)
class Target:
    """A commit made ready to run the harness: worktree, environment, run folders."""

    commit: str
    worktree: Path
    environment: Environment
    folders: RunFolders
    transplanted: bool


class Reproducer:
    """Runs one triage job's testcases at the commits it needs."""

    def __init__(
        self,
        spec: TriageSpec,
        caches: WorkerCaches,
        run_dir: Path,
        *,
        stop: threading.Event | None = None,
    ) -> None:
        self.spec = spec
        self.caches = caches
        self.run_dir = run_dir
        self.stop = stop
        self.log: list[str] = []
        self._harness_source: bytes | None = None
        self.inputs = run_dir / "inputs"
        self.inputs.mkdir(parents=True, exist_ok=True)
        os.chmod(self.inputs, 0o755)

    def mirror(self) -> Path:
        """The repository's mirror on this worker (fetched up to the job's commit)."""
        return self.caches.workspaces.mirror(self.spec.repo, self.spec.source, self.spec.commit)

    def add_input(self, name: str, data: bytes) -> Path:
        """Store bytes the harness will read (read-only for it)."""
        path = self.inputs / name
        path.write_bytes(data)
        os.chmod(path, 0o644)
        return path

    @contextlib.contextmanager
    def at(self, commit: str) -> Iterator[Target | BuildFailure | Unrunnable]:
        """A target at ``commit`` for the block, or why it cannot be run there."""
        spec = self.spec
        name = f"{spec.job_id}-{spec.attempt}-{commit[:12]}"
        with self.caches.workspaces.checkout(spec.repo, spec.source, commit, name) as worktree:
            transplanted = self._ensure_harness(worktree)
            if isinstance(transplanted, Unrunnable):
                self.log.append(f"--- {commit[:12]}: {transplanted.reason}")
                yield transplanted
                return
            install = self._install(worktree)
            if isinstance(install, BuildFailure):
                yield install
                return
            environment = self.caches.environments.get(worktree, install)
            if isinstance(environment, BuildFailure):
                self.log.append(f"--- {commit}: environment build failed: {environment.reason}")
                yield environment
                return
            run = self.run_dir / commit[:12]
            shutil.rmtree(run, ignore_errors=True)
            corpus = run / "corpus"
            folders = prepare_folders(run, corpus)
            try:
                yield Target(commit, worktree, environment, folders, transplanted)
            finally:
                shutil.rmtree(run, ignore_errors=True)

    def run(self, target: Target, testcase: Path) -> Attempt:
        """Run ``testcase`` once at ``target``."""
        return self._engine(target, inputs=(testcase,), wall_s=self._one_run_wall())

    def replay_choices(self, target: Target, choices: Path) -> Attempt:
        """Replay a Hypothesis example saved by ``shrink`` (its example-database bytes)."""
        return self._engine(
            target,
            shim_mode=("--replay-choices", str(choices)),
            inputs=(choices,),
            wall_s=self._one_run_wall(),
        )

    def _one_run_wall(self) -> float:
        # One input's own timeout, plus the interpreter's and the harness's start-up.
        return float(self.spec.options.timeout or DEFAULT_TIMEOUT_S) + START_GRACE_S

    def shrink(self, target: Target, testcase: Path, out: Path) -> tuple[Attempt, str]:
        """Shrink a Hypothesis crash through Hypothesis; returns the run and its output."""
        out.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(out.parent, 0o755)
        attempt = self._engine(
            target,
            shim_mode=("--shrink", str(testcase), str(out)),
            inputs=(testcase,),
            writable=(out.parent,),
            wall_s=SHRINK_WALL_S,
        )
        return attempt, attempt.output

    def minimize_step(self, target: Target, testcase: Path, out: Path, seed: int) -> bool:
        """One libFuzzer crash-minimization step: True if it wrote something at ``out``
        (read it with ``read_regular``: the harness could have put a link there)."""
        out.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(out.parent, 0o755)
        out.unlink(missing_ok=True)
        self._engine(
            target,
            inputs=(testcase,),
            extra_flags=(
                "-minimize_crash_internal_step=1",
                f"-exact_artifact_path={out}",
                f"-seed={seed}",
            ),
            runs=20_000,
            seconds=10,
            writable=(out.parent,),
        )
        return out.is_symlink() or out.exists()

    def _engine(
        self,
        target: Target,
        *,
        inputs: Sequence[Path],
        shim_mode: Sequence[str] | None = None,
        extra_flags: Sequence[str] = (),
        runs: int | None = 1,
        seconds: float | None = None,
        writable: Sequence[Path] = (),
        wall_s: float | None = None,
    ) -> Attempt:
        spec = self.spec
        run = engine_run(
            kind=spec.kind,
            harness=spec.harness,
            path=spec.path,
            options=spec.options,
            python=target.environment.python,
            worktree=target.worktree,
            env_root=target.environment.root,
            engine_site=engine_site(self.caches.environments.root / ".engines"),
            folders=target.folders,
            seconds=seconds,
            runs=runs,
            seed=None,
            inputs=inputs,
            extra_flags=extra_flags,
            shim_mode=shim_mode,
            writable=writable,
            wall_s=wall_s,
        )
        parser = OutputParser(artifact_prefix=f"{target.folders.artifacts}/")
        result = self.caches.sandbox.run(
            run.argv,
            limits=run.limits,
            policy=run.policy,
            on_line=lambda line: _feed(parser, line),
            stop=self.stop,
        )
        output = result.output.decode("utf-8", "replace")[-MAX_OUTPUT_CHARS:]
        mode = " ".join(shim_mode[:1]) if shim_mode else " ".join(extra_flags[:1]) or "replay"
        self.log.append(f"--- {target.commit[:12]} {mode}: {_status(result)}")
        self.log.append(output[-4000:])
        return self._attempt(target, result, parser, output)

    def _attempt(
        self, target: Target, result: RunResult, parser: OutputParser, output: str
    ) -> Attempt:
        code = result.returncode
        if code == 0 and result.signal is None:
            return Attempt(RunState.CLEAN, output=output)
        summary = parser.final()
        detected = summary.crashes[-1] if summary.crashes else None
        prefix = _PREFIX_FOR_EXIT.get(code or 0)
        if prefix is None and detected is None:
            # No crash report at all: the harness never got going (or died without a word).
            return Attempt(RunState.NO_START, output=output)
        if prefix is None:
            prefix = "crash"
        if prefix == "crash" and detected is None and parse_crash(output) is None:
            return Attempt(RunState.NO_START, output=output)
        described = describe(prefix, detected, output)
        roots = [str(p) for p in import_roots(target.worktree)] + [str(target.worktree)]
        signature = crash_signature(
            described.kind,
            described.exception_type,
            [(f.path, f.function) for f in described.frames],
            roots=roots,
            harness_path=self.spec.path,
        )
        stack = tuple(
            Frame(relative_path(f.path, roots=roots), f.function, f.line) for f in described.frames
        )
        return Attempt(
            RunState.CRASHED,
            signature=signature.sha1,
            kind=described.kind,
            exception_type=described.exception_type or None,
            message=described.message,
            stack=stack,
            output=output,
        )

    def _ensure_harness(self, worktree: Path) -> bool | Unrunnable:
        """Put the crash commit's harness file in place where the commit lacks it.

        The tree comes from the repository, which may be hostile: a link at the harness's
        path (or on the way to it) is refused, never written through.
        """
        path = worktree / self.spec.path
        if path.is_file() and not path.is_symlink():
            return False
        if self._harness_source is None:
            self._harness_source = self.caches.workspaces.git.read_file(
                self.mirror(),
                self.spec.harness_commit or self.spec.commit,
                self.spec.path,
                max_bytes=MAX_HARNESS_BYTES,
            )
        try:
            write_new(worktree, self.spec.path, self._harness_source)
        except OSError as exc:
            return Unrunnable(f"the harness cannot be put in place at this commit: {exc}")
        return True

    def _install(self, worktree: Path) -> tuple[str, ...] | BuildFailure | None:
        """The install commands configured at this commit (the commit's own pyproject)."""
        pyproject = worktree / "pyproject.toml"
        if not pyproject.is_file() or pyproject.is_symlink():
            return None
        try:
            data = pyproject.read_bytes()[: MAX_PYPROJECT_BYTES + 1]
            if len(data) > MAX_PYPROJECT_BYTES:
                raise HarnessError(f"pyproject.toml is larger than {MAX_PYPROJECT_BYTES} bytes")
            return parse_pyproject(data).install
        except HarnessError as exc:
            return BuildFailure("", f"invalid [tool.fuzzorch] configuration: {exc}", str(exc))


def _feed(parser: OutputParser, line: str) -> None:
    parser.feed(line)  # the events are read back from parser.final()


def _status(result: RunResult) -> str:
    if result.signal is not None:
        return f"signal {result.signal}"
    return f"exit {result.returncode}"

"""Executing one fuzz job: workspace, environment, corpus, engine runs, crashes, outcome.

Plan -> execute -> record: this module is the "execute" step. It reads a frozen
``JobSpec``, touches only the object store and local caches, and returns an ``Outcome``;
failures come back as outcome codes, never as exceptions. The engine is restarted on the
corpus after each crash until the job's time (or run count) is used up.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from harnesses.identity import harness_id
from harnesses.libfuzzer import OutputParser, StatsLine
from workers.contract import CrashReport, JobSpec, Outcome, OutcomeCode, Stats
from workers.corpus import TransferStats, corpus_prefix, sync_down, upload_folder
from workers.crashes import CrashCollector, artifact_kind, detected_for
from workers.engine import RunFolders, engine_run, import_roots, prepare_folders
from workers.engine_site import engine_site
from workers.envcache import BuildFailure, EnvironmentCache
from workers.errors import StorageError, WorkerError
from workers.sandbox import RunResult, Sandbox
from workers.spool import Spool
from workers.storage.base import ObjectStore
from workers.workspace import Workspaces

logger = logging.getLogger(__name__)

MAX_LOG_BYTES = 1024 * 1024
# A restart after a crash needs at least this much time left to be worth it.
MIN_RESTART_S = 2.0
# Engine restarts after exits that left no crash report, before the job gives up.
MAX_SILENT_EXITS = 20


@dataclass(frozen=True)
class WorkerCaches:
    """Everything a worker keeps between jobs, and the adapters it uses."""

    store: ObjectStore
    workspaces: Workspaces
    environments: EnvironmentCache
    sandbox: Sandbox
    root: Path  # corpora and run folders live under here

    def spool(self) -> Spool:
        """Objects (testcases, logs) waiting for the store after an outage."""
        return Spool(self.store, self.root / "spool")

    def corpus_dir(self, repo: str, harness: str) -> Path:
        """The local cache of a harness's corpus."""
        return self.root / "corpus" / repo / harness_id(harness)


@dataclass
class JobEvents:
    """Callbacks a job makes while it runs (the queue sends them to the trusted side)."""

    on_crash: Callable[[CrashReport], None] = lambda _report: None
    on_stats: Callable[[float, StatsLine], None] = lambda _elapsed, _line: None


@dataclass
class _Progress:
    execs: int = 0
    last: StatsLine | None = None
    inited: bool = False
    run_execs: int = 0
    silent_exits: int = 0


def run_job(
    spec: JobSpec,
    caches: WorkerCaches,
    *,
    events: JobEvents | None = None,
    stop: threading.Event | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Outcome:
    """Run a fuzz job to its end and describe how it ended."""
    events = events or JobEvents()
    started = clock()
    try:
        with caches.workspaces.checkout(
            spec.repo, spec.source, spec.commit, f"{spec.job_id}-{spec.attempt}"
        ) as worktree:
            return _in_worktree(
                spec, caches, worktree, events=events, stop=stop, clock=clock, started=started
            )
    except WorkerError as exc:
        logger.warning("job %s: infrastructure failure: %s", spec.job_id, exc)
        return Outcome(spec.job_id, spec.attempt, OutcomeCode.INFRA_ERROR, detail=str(exc)[:2000])


def _in_worktree(
    spec: JobSpec,
    caches: WorkerCaches,
    worktree: Path,
    *,
    events: JobEvents,
    stop: threading.Event | None,
    clock: Callable[[], float],
    started: float,
) -> Outcome:
    environment = caches.environments.get(worktree, spec.install)
    log_key = f"logs/{spec.campaign_id or 'local'}/{spec.job_id}-{spec.attempt}.txt"
    if isinstance(environment, BuildFailure):
        caches.store.put_if_absent(log_key, environment.log.encode()[-MAX_LOG_BYTES:])
        return Outcome(
            spec.job_id,
            spec.attempt,
            OutcomeCode.BUILD_FAILED,
            log_key=log_key,
            detail=environment.reason,
            protections=caches.sandbox.capabilities().to_json(),
        )
    corpus = caches.corpus_dir(spec.repo, spec.harness)
    prefix = corpus_prefix(spec.repo, spec.harness)
    corpus.parent.mkdir(parents=True, exist_ok=True)
    sync_down(caches.store, prefix, corpus, max_units=spec.max_corpus_units)
    run_dir = caches.root / "runs" / f"{spec.job_id}-{spec.attempt}"
    shutil.rmtree(run_dir, ignore_errors=True)
    folders = prepare_folders(run_dir, corpus)
    roots = [str(p) for p in import_roots(worktree)] + [str(worktree)]
    spool = caches.spool()
    spool.flush()  # what an earlier outage left behind goes first
    collector = CrashCollector(spool, spec.repo, spec.harness, spec.path, roots)
    progress = _Progress()
    runner = _Runner(
        spec, caches, worktree, environment.root, folders, collector, progress, events, stop,
        clock, started,
    )  # fmt: skip
    try:
        code, detail = runner.fuzz()
        try:
            uploaded = upload_folder(caches.store, prefix, folders.new_units, into=corpus)
        except StorageError as exc:
            # Corpus units are worth less than the job's result: report it without them.
            logger.warning("job %s: new corpus units not uploaded: %s", spec.job_id, exc)
            uploaded = TransferStats()
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    spool.flush()
    spool.put(log_key, "\n".join(runner.log).encode()[-MAX_LOG_BYTES:])
    wall = clock() - started
    last = progress.last
    last_result = runner.last_result
    protections = last_result.protections if last_result else caches.sandbox.capabilities()
    return Outcome(
        spec.job_id,
        spec.attempt,
        code,
        stats=Stats(
            execs=progress.execs,
            exec_per_s=round(progress.execs / wall, 1) if wall > 0 else 0.0,
            coverage=(last.coverage or 0) if last else 0,
            features=(last.features or 0) if last else 0,
            corpus_size=sum(1 for _ in corpus.iterdir()),
            wall_s=round(wall, 3),
        ),
        crashes=collector.reports(),
        new_corpus_units=uploaded.added,
        protections=protections.to_json(),
        log_key=log_key,
        detail=detail,
    )


@dataclass
class _Runner:
    """One job's engine starts, sharing its folders, crash collector and progress."""

    spec: JobSpec
    caches: WorkerCaches
    worktree: Path
    env_root: Path
    folders: RunFolders
    collector: CrashCollector
    progress: _Progress
    events: JobEvents
    stop: threading.Event | None
    clock: Callable[[], float]
    started: float

    log: list[str] = field(default_factory=list)
    last_result: RunResult | None = None

    def fuzz(self) -> tuple[OutcomeCode, str | None]:
        """Start the engine until the job's time or runs are used up; how it ended."""
        spec, progress = self.spec, self.progress
        code, detail = OutcomeCode.OK, None
        while True:
            elapsed = self.clock() - self.started
            seconds = None if spec.duration_s is None else spec.duration_s - elapsed
            runs = None if spec.runs is None else spec.runs - progress.execs
            out_of_time = seconds is not None and seconds < MIN_RESTART_S
            if out_of_time or (runs is not None and runs <= 0):
                break
            if self.stop is not None and self.stop.is_set():
                break
            result, crashed = self.once(seconds, runs)
            self.last_result = result
            self.log.append(result.output.decode("utf-8", "replace"))
            if crashed:
                code = OutcomeCode.CRASHED
                continue
            failure = _start_failure(result)
            if failure is not None and not progress.inited:
                code = OutcomeCode.STARTUP_FAILED if code is OutcomeCode.OK else code
                detail = failure
            elif failure is not None and not result.timed_out:
                # The harness ended its own process (os._exit, a signal libFuzzer did not
                # catch) after it started: no input was saved, so there is no testcase to
                # report. Say so, and go on fuzzing, unless it keeps doing it.
                progress.silent_exits += 1
                detail = (
                    f"the harness ended its own process {progress.silent_exits} time(s) "
                    f"without a crash report (exit status {result.returncode}, signal "
                    f"{result.signal}); no input was saved"
                )
                if progress.silent_exits < MAX_SILENT_EXITS:
                    continue
            elif result.timed_out:
                code = OutcomeCode.TIMED_OUT if code is OutcomeCode.OK else code
                detail = "the engine did not stop by itself at the end of its time"
            break
        return code, detail

    def once(self, seconds: float | None, runs: int | None) -> tuple[RunResult, bool]:
        """Start the engine once; return how it ended and whether it crashed."""
        spec, progress = self.spec, self.progress
        run = engine_run(
            kind=spec.kind,
            harness=spec.harness,
            path=spec.path,
            options=spec.options,
            python=self.env_root / "venv" / "bin" / "python",
            worktree=self.worktree,
            env_root=self.env_root,
            engine_site=engine_site(self.caches.environments.root / ".engines"),
            folders=self.folders,
            seconds=seconds,
            runs=runs,
            seed=spec.seed,
        )
        parser = OutputParser(artifact_prefix=f"{self.folders.artifacts}/")
        progress.run_execs = 0
        before = set(self.folders.artifacts.iterdir())
        result = self.caches.sandbox.run(
            run.argv,
            limits=run.limits,
            policy=run.policy,
            on_line=lambda line: self._on_line(parser, line),
            stop=self.stop,
        )
        summary = parser.final()
        progress.execs += max(progress.run_execs, summary.execs or 0)
        output = result.output.decode("utf-8", "replace")
        crashed = False
        for artifact in sorted(set(self.folders.artifacts.iterdir()) - before):
            if artifact_kind(artifact.name) is None:
                artifact.unlink(missing_ok=True)  # slow-unit- files are not crashes
                continue
            report = self.collector.collect(
                artifact,
                detected=detected_for(artifact, summary.crashes),
                output=output,
                found_after_s=self.clock() - self.started,
            )
            crashed = True
            if report is not None:
                self.events.on_crash(report)
            artifact.unlink(missing_ok=True)
        return result, crashed

    def _on_line(self, parser: OutputParser, line: str) -> None:
        for event in parser.feed(line):
            stats = getattr(event, "stats", None)
            if isinstance(stats, StatsLine):
                self.progress.inited = True
                self.progress.last = stats
                self.progress.run_execs = max(self.progress.run_execs, stats.execs or 0)
                self.events.on_stats(self.clock() - self.started, stats)


def _start_failure(result: RunResult) -> str | None:
    """Why a run that never got going ended, or None if it ended normally or by our hand."""
    # A harness killed by a signal of its own (a native crash while importing) failed to
    # start as surely as one that exited non-zero; our stop or deadline does not count.
    died = result.signal is not None and not (result.stopped or result.timed_out)
    if result.returncode in (0, None) and not died:
        return None
    tail = _tail(result.output)
    return f"{tail}\n(the harness was killed by signal {result.signal})" if died else tail


def _tail(output: bytes, limit: int = 4000) -> str:
    return output[-limit:].decode("utf-8", "replace")

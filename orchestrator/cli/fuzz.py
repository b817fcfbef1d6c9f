"""``fuzzorch fuzz``: one fuzz job, run here through exactly the code path a worker uses."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import typer

from harnesses.libfuzzer import StatsLine
from orchestrator.cli.context import CliContext, context_of
from orchestrator.cli.exitcodes import EXIT_GATE, EXIT_INFRA, EXIT_OK, EXIT_USAGE
from orchestrator.cli.output import out, stderr
from orchestrator.errors import NotFoundError, UsageError
from orchestrator.identity import new_id
from orchestrator.store import repos
from workers.contract import CrashReport, JobSpec, Outcome, OutcomeCode
from workers.fuzzjob import JobEvents, run_job

EXIT_FOR_OUTCOME = {
    OutcomeCode.OK: EXIT_OK,
    OutcomeCode.CRASHED: EXIT_GATE,
    OutcomeCode.STARTUP_FAILED: EXIT_USAGE,
    OutcomeCode.BUILD_FAILED: EXIT_USAGE,
    OutcomeCode.TIMED_OUT: EXIT_INFRA,
    OutcomeCode.INFRA_ERROR: EXIT_INFRA,
}


def fuzz(
    ctx: typer.Context,
    source: str = typer.Argument(..., help="registered repository name, git URL or local path"),
    harness: str = typer.Option(..., "--harness", help="harness name, as 'harness list' shows"),
    ref: str | None = typer.Option(None, "--ref", help="branch, tag or commit (default: head)"),
    duration: float | None = typer.Option(None, "--duration", min=1, help="seconds of fuzzing"),
    runs: int | None = typer.Option(None, "--runs", min=1, help="number of inputs to run"),
    seed: int | None = typer.Option(None, "--seed", min=0, help="libFuzzer's random seed"),
    json_path: Path | None = typer.Option(None, "--json", help="write the result as JSON here"),
) -> None:
    """Fuzz one harness locally; exit 1 if it crashed, 0 if it did not."""
    if (duration is None) == (runs is None):
        raise UsageError("give exactly one of --duration SECONDS and --runs N")
    context = context_of(ctx)
    context.require_embedded("fuzz")
    name, commit = _repository(context, source, ref)
    found = {h.name: h for h in context.registry().collection(name, commit).harnesses}
    if harness not in found:
        known = ", ".join(repr(n) for n in sorted(found)) or "none"
        raise NotFoundError(
            f"no harness {harness!r} in {name!r} at {commit[:12]} (harnesses: {known})"
        )
    chosen = found[harness]
    with context.database().transaction() as conn:
        record = repos.get_repo(conn, name)
    spec = JobSpec(
        job_id=new_id("job"),
        repo=name,
        source=record.source,
        commit=commit,
        harness=chosen.name,
        kind=chosen.kind,
        path=chosen.path,
        options=chosen.options,
        install=context.registry().install_commands(name, commit),
        duration_s=duration,
        runs=runs,
        seed=seed,
    )
    stderr.print(f"fuzzing {harness} in {name} at {commit[:12]}", markup=False)
    outcome = run_job(spec, context.worker_caches(), events=_live_events(), stop=threading.Event())
    document = result_json(spec, outcome)
    if json_path is not None:
        json_path.write_text(json.dumps(document, indent=2) + "\n")
    _summary(outcome)
    raise typer.Exit(EXIT_FOR_OUTCOME[outcome.code])


def _repository(context: CliContext, source: str, ref: str | None) -> tuple[str, str]:
    """The registered repository a source names (registering it first) and the commit."""
    name = context.find_or_register(source)
    return name, context.registry().resolve(name, ref)


def _live_events() -> JobEvents:
    last_print = [0.0]

    def on_stats(elapsed: float, line: StatsLine) -> None:
        now = time.monotonic()
        if now - last_print[0] < 2.0:
            return
        last_print[0] = now
        stderr.print(
            f"  {elapsed:6.1f}s  execs {line.execs or 0:>9}  cov {line.coverage or 0:>5}  "
            f"corpus {line.corpus_units or 0:>5}  exec/s {line.exec_per_s or 0:>6}",
            markup=False,
        )

    def on_crash(report: CrashReport) -> None:
        stderr.print(f"  crash: {report.title} ({report.testcase_key})", markup=False)

    return JobEvents(on_crash=on_crash, on_stats=on_stats)


def result_json(spec: JobSpec, outcome: Outcome) -> dict[str, Any]:
    """The ``fuzz --json`` document (schema: orchestrator/schemas/fuzz-result.schema.json)."""
    return {
        "schema": 1,
        "repo": spec.repo,
        "commit": spec.commit,
        "harness": {
            "name": spec.harness,
            "kind": spec.kind.value,
            "execs": outcome.stats.execs,
            "exec_per_s": outcome.stats.exec_per_s,
            "coverage": outcome.stats.coverage,
            "corpus_size": outcome.stats.corpus_size,
            "status": outcome.code.value,
        },
        "crashes": [_crash_json(spec, c) for c in outcome.crashes],
        "protections": dict(outcome.protections),
        "outcome": outcome.code.value,
        "detail": outcome.detail,
    }


def _crash_json(spec: JobSpec, crash: CrashReport) -> dict[str, Any]:
    # Triage (grouping, reproduction, bisection, blame) has not run on a local fuzz job.
    return {
        "id": None,
        "signature": crash.signature,
        "title": crash.title,
        "kind": crash.kind,
        "exception_type": crash.exception_type,
        "message": crash.message,
        "frames": list(crash.frames),
        "harness": spec.harness,
        "new": None,
        "status": None,
        "found_after_s": crash.found_after_s,
        "reliability": None,
        "introduced": None,
        "fixed": None,
        "blame": None,
        "testcase": crash.testcase_key,
        "minimized": None,
        "count": crash.count,
    }


def _summary(outcome: Outcome) -> None:
    stats = outcome.stats
    out(
        f"{outcome.code.value}: {stats.execs} execs ({stats.exec_per_s}/s), coverage "
        f"{stats.coverage}, corpus {stats.corpus_size}, {len(outcome.crashes)} crash(es)"
    )
    for crash in outcome.crashes:
        out(f"  {crash.title}  [{crash.signature[:12]}]  {crash.testcase_key}")
    if outcome.detail:
        out(f"  {outcome.detail.strip().splitlines()[-1] if outcome.detail.strip() else ''}")

"""Scaling: one ``fuzzorch run`` campaign with 2 workers against 2 bare atheris processes.

Both sides fuzz ``bench/efficiency.py``'s lexer harness for ``--seconds`` from an empty
corpus, side by side on the machine's cores. The bare pair is two
``python fuzz_lexer.py -max_total_time=T`` processes started together (seeds S and S+1),
its exec/s the sum of their executed units over T. The fuzzorch side is
``fuzzorch run --workers 2 --duration T``, its exec/s the summary's execs over T, so start-up,
restarts between jobs and corpus sync all count. Pairs alternate which side goes first.

    .venv/bin/python bench/scaling.py [--pairs 3] [--seconds 60] [--seed 7]

Prints each pair's figures, the median ratio fuzzorch/bare (goal >= 0.9) with its spread
and the best-of ratio, then one 1-worker campaign against one bare process.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

FUZZORCH = str(Path(sys.executable).with_name("fuzzorch"))
HARNESS = "fuzz_lexer.py"
EXIT_INFRA = 3
# Log lines worth showing when a campaign's jobs ran short: failed outcomes, warnings.
SUSPECT = r"WARNING|ERROR|Error|attempt \d+: (?!ok)"


@dataclass(frozen=True)
class Campaign:
    """What one measured ``fuzzorch run`` did."""

    workers: int
    execs: int
    wall_s: float  # the whole command, start-up and report included
    job_wall_s: float  # the jobs' wall time summed: execs over the summary's exec_per_s
    jobs: int  # fuzz jobs dispatched, from the command's log
    log: Path


def load_efficiency() -> ModuleType:
    """Import ``bench/efficiency.py`` from its file, for its repository builder."""
    path = Path(__file__).resolve().with_name("efficiency.py")
    spec = importlib.util.spec_from_file_location("bench_efficiency", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def executed_units(log: str) -> int:
    """Executed units from a libFuzzer log: the final stats, else the last ``#N`` line."""
    stat = re.findall(r"^stat::number_of_executed_units:\s*(\d+)", log, re.MULTILINE)
    if stat:
        return int(stat[-1])
    counts = re.findall(r"^#(\d+)\s", log, re.MULTILINE)
    if counts:
        return int(counts[-1])
    raise SystemExit(f"no execution count in the atheris log:\n{log[-3000:]}")


@contextlib.contextmanager
def reaped(processes: list[subprocess.Popen[bytes]]) -> Iterator[None]:
    """Kill (by pid) whichever of our processes still runs when the block is left."""
    try:
        yield
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()


def bare(repo: Path, seconds: float, seeds: list[int]) -> list[int]:
    """Executed units of one bare atheris process per seed, all started at the same time."""
    env = {**os.environ, "PYTHONPATH": str(repo)}
    with tempfile.TemporaryDirectory() as tmp:
        processes: list[subprocess.Popen[bytes]] = []
        logs = []
        with reaped(processes):
            for index, seed in enumerate(seeds):
                corpus = Path(tmp) / f"corpus{index}"
                corpus.mkdir()
                logs.append(Path(tmp) / f"log{index}.txt")
                command = [sys.executable, str(repo / HARNESS), f"-max_total_time={seconds:g}",
                           f"-seed={seed}", "-print_final_stats=1", str(corpus)]  # fmt: skip
                with logs[-1].open("wb") as sink:
                    process = subprocess.Popen(
                        command, cwd=tmp, env=env, stdin=subprocess.DEVNULL, stdout=sink,
                        stderr=subprocess.STDOUT,
                    )  # fmt: skip
                processes.append(process)
            for process in processes:
                process.wait()
        counts = []
        for process, log in zip(processes, logs, strict=True):
            text = log.read_text(errors="replace")
            if process.returncode != 0:
                raise SystemExit(f"bare atheris exited {process.returncode}:\n{text[-3000:]}")
            counts.append(executed_units(text))
        return counts


def clear_corpus(home: Path) -> None:
    """Delete the stored and the worker's local corpus, so a campaign starts from nothing."""
    for corpus in (home / "objects" / "corpus", home / "worker" / "corpus"):
        shutil.rmtree(corpus, ignore_errors=True)


def fuzzorch(
    repo: Path, home: Path, seconds: float, workers: int, tag: str, *, warm_up: bool = False
) -> Campaign:
    """One ``fuzzorch run`` campaign from an empty corpus; its execs from the JSON summary."""
    clear_corpus(home)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FUZZORCH_")}
    env["FUZZORCH_HOME"] = str(home)
    summary_path = home.parent / f"summary-{tag}.json"  # beside the home, not in it
    summary_path.unlink(missing_ok=True)
    log_path = home.parent / f"run-{tag}.log"
    command = [FUZZORCH, "run", str(repo), "--branch", "main", f"--duration={seconds:g}",
               f"--workers={workers}", f"--json={summary_path}", "--fail-on=none"]  # fmt: skip
    start = time.perf_counter()
    with log_path.open("wb") as sink:
        process = subprocess.Popen(
            command, env=env, stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT
        )
        try:
            process.wait()
        finally:
            if process.poll() is None:  # interrupted: let it cancel the campaign, then kill
                process.send_signal(signal.SIGINT)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
    wall = time.perf_counter() - start
    log = log_path.read_text(errors="replace")
    if process.returncode == EXIT_INFRA:
        raise SystemExit(f"fuzzorch run failed (exit 3: infrastructure/campaign):\n{log[-3000:]}")
    if process.returncode != 0:
        raise SystemExit(f"fuzzorch run exited {process.returncode}:\n{log[-3000:]}")
    if not summary_path.is_file():
        raise SystemExit(f"fuzzorch run wrote no JSON summary at {summary_path}:\n{log[-3000:]}")
    document = json.loads(summary_path.read_text())
    harnesses = document.get("harnesses") or []
    names = [h.get("name") for h in harnesses]
    if len(harnesses) != 1 or not str(names[0]).endswith(HARNESS):
        raise SystemExit(f"expected the one harness {HARNESS} in the summary, got {names}")
    (entry,) = harnesses
    if not warm_up and (entry.get("status") != "ok" or not entry.get("execs")):
        raise SystemExit(f"the campaign's harness did not fuzz: {json.dumps(entry)}\n{log[-3000:]}")
    execs, rate = int(entry["execs"]), float(entry["exec_per_s"])
    return Campaign(
        workers=workers,
        execs=execs,
        wall_s=wall,
        job_wall_s=execs / rate if rate > 0 else 0.0,
        jobs=len(re.findall(r"dispatched job-", log)),
        log=log_path,
    )


def measure_pair(
    repo: Path, home: Path, seconds: float, seeds: list[int], *, bare_first: bool, tag: str
) -> tuple[list[int], Campaign]:
    """The bare processes and one campaign with as many workers, in the given order."""
    if bare_first:
        counts = bare(repo, seconds, seeds)
        campaign = fuzzorch(repo, home, seconds, len(seeds), tag)
    else:
        campaign = fuzzorch(repo, home, seconds, len(seeds), tag)
        counts = bare(repo, seconds, seeds)
    return counts, campaign


def describe(counts: list[int], campaign: Campaign, seconds: float) -> str:
    """One line of figures for a measured pair."""
    bare_rate = sum(counts) / seconds
    rate = campaign.execs / seconds
    each = " + ".join(f"{c / seconds:,.0f}" for c in counts)
    line = (
        f"bare {bare_rate:,.0f} exec/s ({each}); fuzzorch {rate:,.0f} exec/s "
        f"({campaign.execs:,} execs; {campaign.jobs} job(s) with {campaign.job_wall_s:.1f} s "
        f"of job wall; command {campaign.wall_s:.1f} s); ratio {rate / bare_rate:.3f}"
    )
    if campaign.job_wall_s < 0.9 * campaign.workers * seconds:
        line += f"\n  WARNING: jobs' wall < 90% of {campaign.workers} x T; see {campaign.log}"
        log = campaign.log.read_text(errors="replace").splitlines()
        line += "".join(f"\n    {x.strip()}" for x in log if re.search(SUSPECT, x))
    return line


def interrupt(signum: int, _frame: object) -> None:
    """Turn SIGTERM into KeyboardInterrupt, so the ``finally`` blocks reap our processes."""
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> None:
    """Run the benchmark and print its figures."""
    signal.signal(signal.SIGTERM, interrupt)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", type=Path, help="work (and keep logs) here, not in a temp dir")
    args = parser.parse_args()
    if args.seconds < 5 or args.pairs < 1:
        parser.error("--seconds must be >= 5 (fuzzorch run's minimum) and --pairs >= 1")
    efficiency = load_efficiency()
    seeds = [args.seed, args.seed + 1]
    folder = tempfile.TemporaryDirectory() if args.keep is None else None
    with folder or contextlib.nullcontext():
        root = Path(folder.name) if folder else args.keep.resolve()
        repo = efficiency.make_repo(root, "1.0")
        home = root / "home"
        print(f"{os.cpu_count()} CPUs; {args.seconds:g} s per run; seeds {seeds}")

        cold = fuzzorch(repo, home, 5, 2, "warm-up", warm_up=True)  # registers, builds the env
        print(f"warm-up campaign (5 s, 2 workers, cold): {cold.wall_s:.1f} s, {cold.execs:,} execs")
        bare(repo, 5, seeds)

        ratios = []
        for index in range(args.pairs):
            counts, campaign = measure_pair(
                repo, home, args.seconds, seeds, bare_first=index % 2 == 0, tag=f"pair{index + 1}"
            )
            ratios.append(campaign.execs / sum(counts))
            first = "bare" if index % 2 == 0 else "fuzzorch"
            print(f"pair {index + 1} ({first} first): {describe(counts, campaign, args.seconds)}")
        print(
            f"ratio fuzzorch/bare, 2 workers: median {statistics.median(ratios):.3f} "
            f"(min {min(ratios):.3f}, max {max(ratios):.3f}; best-of-{args.pairs} "
            f"{max(ratios):.3f}); goal >= 0.9"
        )

        counts, campaign = measure_pair(
            repo, home, args.seconds, seeds[:1], bare_first=True, tag="1-worker"
        )
        print(f"1 worker: {describe(counts, campaign, args.seconds)}")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        raise SystemExit("interrupted") from None

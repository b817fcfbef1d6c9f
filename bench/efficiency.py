"""Fuzzing efficiency: bare atheris against ``fuzzorch fuzz``, same harness, runs and seed.

Both sides start from an empty corpus. The fuzzorch side includes everything: CLI start,
repository refresh, workspace, sandbox, corpus sync, crash and corpus upload. N is chosen
so the bare run takes at least ``--seconds``; pairs alternate which side goes first.

    .venv/bin/python bench/efficiency.py [--pairs 5] [--seconds 30] [--seed 7]

Prints the median wall-time ratio bare/fuzzorch (goal >= 0.95 with warm caches), its
spread, the best-of ratio, and the cold-start cost of a new dependency fingerprint.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from textwrap import dedent

ROOT = Path(__file__).resolve().parents[1]
FUZZORCH = str(Path(sys.executable).with_name("fuzzorch"))

PARSER = dedent(
    """
    def tokens(data: bytes) -> list[tuple[str, bytes]]:
        out = []
        i = 0
        while i < len(data):
            c = data[i : i + 1]
            if c.isdigit():
                j = i
                while j < len(data) and data[j : j + 1].isdigit():
                    j += 1
                out.append(("number", data[i:j]))
                i = j
            elif c in b"{}[],:":
                out.append(("punct", c))
                i += 1
            elif c == b'"':
                j = data.find(b'"', i + 1)
                if j < 0:
                    out.append(("broken", data[i:]))
                    break
                out.append(("string", data[i + 1 : j]))
                i = j + 1
            elif c.isspace():
                i += 1
            else:
                out.append(("other", c))
                i += 1
        return out
    """
)
HARNESS = dedent(
    """
    import sys

    import atheris

    with atheris.instrument_imports():
        import benchpkg.lexer


    def TestOneInput(data):
        benchpkg.lexer.tokens(data)


    if __name__ == "__main__":
        atheris.Setup(sys.argv, TestOneInput)
        atheris.Fuzz()
    """
)


def git(repo: Path, *args: str) -> None:
    """Run git in the bench repository with a fixed identity."""
    env = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@b",
           "GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@b"}  # fmt: skip
    subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True)


def make_repo(root: Path, version: str) -> Path:
    """A target repository with one atheris harness on a small lexer."""
    repo = root / "benchpkg"
    (repo / "benchpkg").mkdir(parents=True, exist_ok=True)
    (repo / "benchpkg" / "__init__.py").write_text("")
    (repo / "benchpkg" / "lexer.py").write_text(PARSER)
    (repo / "fuzz_lexer.py").write_text(HARNESS)
    (repo / "pyproject.toml").write_text(
        f'[project]\nname = "benchpkg"\nversion = "{version}"\n'
        '[tool.setuptools]\npackages = ["benchpkg"]\n'
    )
    if not (repo / ".git").exists():
        git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--allow-empty", "-m", f"version {version}")
    return repo


def bare(repo: Path, runs: int, seed: int) -> float:
    """Wall seconds of ``python harness.py -runs=N -seed=S`` on an empty corpus."""
    with tempfile.TemporaryDirectory() as corpus:
        env = {**os.environ, "PYTHONPATH": str(repo)}
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, str(repo / "fuzz_lexer.py"), f"-runs={runs}", f"-seed={seed}",
             corpus],
            cwd=corpus, env=env, check=True, capture_output=True,
        )  # fmt: skip
        return time.perf_counter() - start


def fuzzorch(repo: Path, home: Path, runs: int, seed: int) -> float:
    """Wall seconds of ``fuzzorch fuzz --runs N --seed S``, from an empty corpus."""
    for corpus in (home / "objects" / "corpus", home / "worker" / "corpus"):
        shutil.rmtree(corpus, ignore_errors=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FUZZORCH_")}
    env["FUZZORCH_HOME"] = str(home)
    start = time.perf_counter()
    result = subprocess.run(
        [FUZZORCH, "fuzz", str(repo), "--harness", "fuzz_lexer.py", f"--runs={runs}",
         f"--seed={seed}"],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"fuzzorch fuzz failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return elapsed


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        repo = make_repo(root, "1.0")
        home = root / "home"
        probe_runs = 20_000
        rate = probe_runs / bare(repo, probe_runs, args.seed)
        runs = math.ceil(rate * args.seconds)
        print(f"bare rate ~{rate:,.0f} exec/s; N = {runs:,} runs (>= {args.seconds:g} s bare)")

        small = 2_000
        cold = fuzzorch(repo, home, small, args.seed)  # registers and builds the environment
        warm = fuzzorch(repo, home, small, args.seed)
        print(f"cold start (new fingerprint, {small} runs): {cold:.1f} s; warm: {warm:.1f} s; "
              f"cold-start cost {cold - warm:.1f} s")  # fmt: skip

        bare(repo, runs // 10, args.seed)  # warm-up of both sides
        fuzzorch(repo, home, runs // 10, args.seed)
        ratios = []
        for index in range(args.pairs):
            if index % 2 == 0:
                b = bare(repo, runs, args.seed)
                f = fuzzorch(repo, home, runs, args.seed)
            else:
                f = fuzzorch(repo, home, runs, args.seed)
                b = bare(repo, runs, args.seed)
            ratios.append(b / f)
            print(f"pair {index + 1}: bare {b:.1f} s, fuzzorch {f:.1f} s, ratio {b / f:.3f}")
        print(
            f"ratio bare/fuzzorch: median {statistics.median(ratios):.3f} "
            f"(min {min(ratios):.3f}, max {max(ratios):.3f}; best-of-{args.pairs} "
            f"{max(ratios):.3f}); goal >= 0.95"
        )


if __name__ == "__main__":
    main()

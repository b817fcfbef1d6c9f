"""Discovery speed: the byte prefilter against parsing every .py file, side by side.

Generates a 5,000-file repository (realistic module sizes; about 3% of files are harnesses
or Hypothesis test files), then alternates the two strategies over the same folder and
prints files per second and the ratio. Both must give identical results.

    .venv/bin/python bench/discovery.py [--files 5000] [--rounds 3] [--seed 1]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path

from harnesses.discovery import discover
from harnesses.tree import DirectoryTree

MODULE_LINE_TEMPLATES = [
    "def {name}(value, *, strict=False):\n    '''Convert a value.'''\n"
    "    if strict and not value:\n        raise ValueError(value)\n    return value\n",
    "class {cname}:\n    def __init__(self, items):\n        self.items = list(items)\n\n"
    "    def total(self):\n        return sum(len(str(i)) for i in self.items)\n",
    "{name}_TABLE = {{\n" + "".join(f"    'k{i}': {i},\n" for i in range(8)) + "}}\n",
]
ATHERIS = (
    "import sys\nimport atheris\n\nwith atheris.instrument_imports():\n    import pkg\n\n"
    "def TestOneInput(data):\n    pkg.parse(data)\n\n"
    "if __name__ == '__main__':\n    atheris.Setup(sys.argv, TestOneInput)\n    atheris.Fuzz()\n"
)
HYPOTHESIS = (
    "from hypothesis import given, strategies as st\n\n"
    "@given(st.binary())\ndef test_roundtrip(data):\n    assert data == data\n\n"
    "def test_plain():\n    assert True\n"
)


def generate(root: Path, files: int, rng: random.Random) -> int:
    """Write a repository of ``files`` files; return how many harness files it has."""
    harness_files = 0
    for index in range(files):
        package = root / f"pkg{index % 40}" / f"sub{index % 7}"
        roll = rng.random()
        if roll < 0.015:
            path, text = root / "fuzz" / f"fuzz_{index}.py", ATHERIS
            harness_files += 1
        elif roll < 0.03:
            path, text = root / "tests" / f"test_{index}.py", HYPOTHESIS
            harness_files += 1
        elif roll < 0.15:
            # Ordinary tests and non-Python files: docs, data, configs.
            path = root / "tests" / f"test_plain_{index}.py"
            text = "def test_x():\n    assert 1\n" * rng.randint(5, 60)
        elif roll < 0.25:
            path, text = package / f"data_{index}.json", '{"k": 1}\n' * rng.randint(10, 200)
        else:
            path = package / f"mod_{index}.py"
            chunks = [
                rng.choice(MODULE_LINE_TEMPLATES).format(name=f"f{i}", cname=f"C{i}")
                for i in range(rng.randint(10, 120))
            ]
            text = "import os\nimport re\n\n" + "\n".join(chunks)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return harness_files


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        harness_files = generate(root, args.files, random.Random(args.seed))
        tree = DirectoryTree(root)
        py_files = sum(1 for f in tree.files() if f.path.endswith(".py"))
        fast_times, full_times = [], []
        fast = full = None
        discover(tree)  # warm the page cache so both sides read from memory
        for _ in range(args.rounds):
            start = time.perf_counter()
            fast = discover(tree, prefilter=True)
            fast_times.append(time.perf_counter() - start)
            start = time.perf_counter()
            full = discover(tree, prefilter=False)
            full_times.append(time.perf_counter() - start)
        if fast != full:
            raise SystemExit("FAIL: the prefilter changed the result")
        assert fast is not None
        ratios = [b / a for a, b in zip(fast_times, full_times, strict=True)]
        print(f"repository: {args.files} files, {py_files} .py, {harness_files} harness files")
        print(f"found: {len(fast.harnesses)} harnesses, {len(fast.skipped)} skipped (identical)")
        print(
            f"prefilter: median {statistics.median(fast_times):.3f} s "
            f"({args.files / statistics.median(fast_times):,.0f} files/s)"
        )
        print(
            f"parse all: median {statistics.median(full_times):.3f} s "
            f"({args.files / statistics.median(full_times):,.0f} files/s)"
        )
        print(
            f"ratio parse-all / prefilter: median {statistics.median(ratios):.1f}x "
            f"(min {min(ratios):.1f}x, max {max(ratios):.1f}x; goal >= 10x)"
        )


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Fuzz fuzzorch's own discovery and ``[tool.fuzzorch]`` parser with atheris.

    .venv/bin/python fuzz/fuzz_discovery.py -runs=100000 [corpus_dir]

Any input must end in a collection or a ConfigError: never another exception, never a
harness outside the tree.
"""

import sys

import atheris

with atheris.instrument_imports(include=["harnesses"]):
    from harnesses.discovery import discover
    from harnesses.errors import ConfigError
    from harnesses.tree import MemoryTree

PATHS = ["pyproject.toml", "fuzz_a.py", "fuzz/b.py", "tests/test_c.py", "pkg/d.py"]


def TestOneInput(data: bytes) -> None:
    """Split the input into files of a small tree and discover harnesses in it."""
    fdp = atheris.FuzzedDataProvider(data)
    entries = {}
    for path in PATHS:
        if fdp.ConsumeBool():
            entries[path] = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 400))
    tree = MemoryTree(entries)
    try:
        collection = discover(tree)
    except ConfigError:
        return
    for harness in collection.harnesses:
        if harness.path not in entries:
            raise AssertionError(f"harness {harness.name!r} is not in the tree")


if __name__ == "__main__":
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()

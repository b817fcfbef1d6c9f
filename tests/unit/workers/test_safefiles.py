"""Reading and writing where a hostile harness or repository could have left links."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from workers.safefiles import read_regular, write_new
from workers.triage_contract import runs_to_call_fixed


def test_read_regular_reads_a_file_bounded(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x" * 100)
    assert read_regular(tmp_path / "f", 10) == b"x" * 10
    assert read_regular(tmp_path / "f", 1000) == b"x" * 100


@pytest.mark.parametrize("target", ["/proc/self/environ", "/etc/hostname"])
def test_read_regular_never_follows_a_link(tmp_path: Path, target: str) -> None:
    (tmp_path / "link").symlink_to(target)
    assert read_regular(tmp_path / "link", 1 << 20) is None


def test_read_regular_refuses_fifos_and_folders_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    assert read_regular(tmp_path / "fifo", 10) is None
    assert read_regular(tmp_path, 10) is None
    assert read_regular(tmp_path / "missing", 10) is None


def test_write_new_creates_folders_and_the_file(tmp_path: Path) -> None:
    write_new(tmp_path, "a/b/c.py", b"print(1)\n")
    assert (tmp_path / "a/b/c.py").read_bytes() == b"print(1)\n"


@pytest.mark.parametrize(
    ("setup", "relative"),
    [
        (lambda root, out: (root / "h.py").symlink_to(out / "pwned"), "h.py"),
        (lambda root, out: (root / "fuzz").symlink_to(out), "fuzz/h.py"),
        (lambda root, out: (root / "fuzz").write_text("a file"), "fuzz/h.py"),
        (lambda root, out: (root / "h.py").write_text("taken"), "h.py"),
        (lambda root, out: None, "../escape.py"),
        (lambda root, out: None, "/etc/escape.py"),
    ],
)
def test_write_new_refuses_links_files_and_escapes(
    tmp_path: Path, setup: object, relative: str
) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    setup(root, outside)  # type: ignore[operator]
    with pytest.raises(OSError, match=r"refusing|File exists"):
        write_new(root, relative, b"payload")
    assert list(outside.iterdir()) == []


@pytest.mark.parametrize(
    ("reliability", "runs"),
    [(None, 3), (1.0, 3), (0.9, 3), (0.5, 10), (0.3, 20), (0.2, 30), (0.01, 30), (0.0, 30)],
)
def test_fixed_needs_more_misses_the_flakier_the_crash(
    reliability: float | None, runs: int
) -> None:
    assert runs_to_call_fixed(reliability) == runs

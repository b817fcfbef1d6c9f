"""Harness uids: one per concurrent slot, released when the slot ends."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from workers.uidpool import NoFreeUidError, harness_uid

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the pool only hands out uids to root")


def test_concurrent_slots_get_different_uids_and_release_them(tmp_path: Path) -> None:
    locks = tmp_path / "locks"
    with harness_uid(first=70_000, count=3, lock_dir=locks) as a:
        with harness_uid(first=70_000, count=3, lock_dir=locks) as b:
            assert {a, b} == {70_000, 70_001}
        with harness_uid(first=70_000, count=3, lock_dir=locks) as c:
            assert c == 70_001  # released by the slot that ended


def test_an_exhausted_pool_is_a_transient_error(tmp_path: Path) -> None:
    locks = tmp_path / "locks"
    with (
        harness_uid(first=70_000, count=1, lock_dir=locks),
        pytest.raises(NoFreeUidError, match="all 1 harness uids from 70000") as error,
        harness_uid(first=70_000, count=1, lock_dir=locks),
    ):
        pass
    assert error.value.transient

"""Triage results in the store, on SQLite and PostgreSQL: statuses per branch, re-checks,
the gate over them, and a triager's merge / split / wontfix."""

from __future__ import annotations

import pytest

from orchestrator.errors import ConflictError, NotFoundError, UsageError
from orchestrator.store import grouping, triage
from orchestrator.store.campaigns import FailOn, create_campaign
from orchestrator.store.crashes import Sighting, campaign_crashes, record_sighting
from orchestrator.store.database import Database
from orchestrator.store.repos import add_repo
from orchestrator.summary import crash_json, gate_fails
from workers.contract import CrashReport

C1, C2, C3 = "1" * 40, "2" * 40, "3" * 40


def _crash(signature: str, title: str) -> CrashReport:
    return CrashReport(
        signature=signature,
        canonical=f"exception|IndexError|pkg/{title}.py:f||",
        kind="exception",
        exception_type="IndexError",
        message="out of range",
        title=f"IndexError in f (pkg/{title}.py)",
        frames=(f"pkg/{title}.py:f",),
        stack=(),
        testcase_key=f"crashes/r/0000000000000000/{signature}",
        found_after_s=1.0,
    )


def _campaign(database: Database, campaign_id: str, branch: str, commit: str) -> None:
    with database.transaction() as conn:
        create_campaign(
            conn, campaign_id=campaign_id, repo="r", branch=branch, commit=commit,
            duration_s=10, workers=1, fail_on=FailOn.OPEN, now=1.0,
        )  # fmt: skip


def _found(database: Database, campaign_id: str, commit: str, signature: str) -> str:
    with database.transaction() as conn:
        group, _created = record_sighting(
            conn,
            _crash(signature, signature[:4]),
            Sighting("r", campaign_id, "job", 1, commit, "fuzz/h.py", 1.0, now=2.0),
        )
    return group


@pytest.fixture
def store(database: Database) -> Database:
    with database.transaction() as conn:
        add_repo(conn, name="r", source="/src/r", default_branch="main", head_commit=C1, now=0.0)
    return database


def test_a_group_fixed_on_main_stays_open_on_the_release_branch(store: Database) -> None:
    _campaign(store, "rel", "release/1.0", C1)
    bug = _found(store, "rel", C1, "a" * 40)
    with store.transaction() as conn:
        triage.set_branch_status(conn, bug, "release/1.0", status="open", commit=C1,
                                 campaign_id="rel", fixed=None, now=3.0)  # fmt: skip
    _campaign(store, "main", "main", C2)
    with store.transaction() as conn:
        assert triage.record_check(conn, "main", bug, "triage-1", 4.0)
        assert not triage.record_check(conn, "main", bug, "triage-2", 4.0)  # once per campaign
        fixed = {"commit": C2, "last_crashing": C1, "confidence": "high", "steps": 3, "note": None}
        triage.set_branch_status(conn, bug, "main", status="fixed", commit=C2,
                                 campaign_id="main", fixed=fixed, now=5.0)  # fmt: skip
        on_main = campaign_crashes(conn, "main")
        on_release = campaign_crashes(conn, "rel")
        statuses = triage.branch_statuses(conn, bug)
    assert statuses["release/1.0"]["status"] == "open"
    assert statuses["main"]["status"] == "fixed"
    # The main campaign lists the group it only re-checked, fixed, with its fix range.
    assert [(c.id, c.status, c.found, c.found_after_s) for c in on_main] == [
        (bug, "fixed", False, None)
    ]
    assert crash_json(on_main[0])["fixed"]["commit"] == C2
    assert not gate_fails(FailOn.OPEN, on_main)
    # The release campaign still sees it open, and its gate fails.
    assert [c.status for c in on_release] == ["open"]
    assert gate_fails(FailOn.OPEN, on_release)


def test_a_rerun_that_only_re_checks_an_open_bug_still_fails_the_gate(store: Database) -> None:
    _campaign(store, "first", "main", C1)
    bug = _found(store, "first", C1, "b" * 40)
    _campaign(store, "rerun", "main", C1)
    with store.transaction() as conn:
        triage.record_check(conn, "rerun", bug, "triage-1", 4.0)
        triage.set_branch_status(conn, bug, "main", status="open", commit=C1,
                                 campaign_id="rerun", fixed=None, now=5.0)  # fmt: skip
        seen = campaign_crashes(conn, "rerun")
    assert [(c.status, c.new, c.found) for c in seen] == [("open", False, False)]
    assert gate_fails(FailOn.OPEN, seen)  # not found by fuzzing this time: still open
    assert not gate_fails(FailOn.NEW, seen)  # but not new


def test_a_newer_check_wins_and_an_older_one_does_not_overwrite_it(store: Database) -> None:
    _campaign(store, "c", "main", C1)
    bug = _found(store, "c", C1, "c" * 40)
    with store.transaction() as conn:
        triage.set_branch_status(conn, bug, "main", status="fixed", commit=C3, campaign_id="c",
                                 fixed=None, now=10.0)  # fmt: skip
        triage.set_branch_status(conn, bug, "main", status="open", commit=C2, campaign_id="c",
                                 fixed=None, now=5.0)  # fmt: skip
        assert triage.branch_statuses(conn, bug)["main"]["status"] == "fixed"


def test_flaky_groups_gate_only_when_asked(store: Database) -> None:
    _campaign(store, "c", "main", C1)
    bug = _found(store, "c", C1, "d" * 40)
    with store.transaction() as conn:
        triage.record_analysis(
            conn, bug, ok=True, detail=None, crash_commit=C1, reliability=0.2,
            minimized_key=None, falsifying_example=None, introduced=None, blame=None,
        )  # fmt: skip
        triage.set_branch_status(conn, bug, "main", status="open", commit=C1, campaign_id="c",
                                 fixed=None, now=3.0)  # fmt: skip
        seen = campaign_crashes(conn, "c")
    assert [c.status for c in seen] == ["flaky"]
    assert not gate_fails(FailOn.OPEN, seen)
    assert gate_fails(FailOn.OPEN, seen, fail_on_flaky=True)
    assert gate_fails(FailOn.NEW, seen, fail_on_flaky=True)
    # A later analysis that reproduces reliably makes it open again.
    with store.transaction() as conn:
        triage.record_analysis(
            conn, bug, ok=True, detail=None, crash_commit=C1, reliability=0.9,
            minimized_key=None, falsifying_example=None, introduced=None, blame=None,
        )  # fmt: skip
        assert [c.status for c in campaign_crashes(conn, "c")] == ["open"]


def test_merge_split_and_wontfix(store: Database) -> None:
    _campaign(store, "c", "main", C1)
    first = _found(store, "c", C1, "e" * 40)
    second = _found(store, "c", C1, "f" * 40)
    third = _found(store, "c", C1, "0" * 40)
    with store.transaction() as conn:
        assert grouping.merge(conn, [second, second], first) == [second]
        # Nothing merges into a duplicate: chains would hide where the bug lives.
        with pytest.raises(ConflictError, match=second):
            grouping.merge(conn, [third], second)
        with pytest.raises(UsageError, match="itself"):
            grouping.merge(conn, [first], first)
        with pytest.raises(NotFoundError, match="crash-nope"):
            grouping.merge(conn, ["crash-nope"], first)
        detail = grouping.group_detail(conn, first)
        seen = {c.id: c.status for c in campaign_crashes(conn, "c")}
    assert detail["merged"] == [second]
    assert seen[second] == "duplicate"
    with store.transaction() as conn:
        assert grouping.split(conn, second) == first
        with pytest.raises(ConflictError, match="not merged"):
            grouping.split(conn, second)
        grouping.set_status(conn, third, "wontfix")
        with pytest.raises(UsageError, match="'closed'"):
            grouping.set_status(conn, third, "closed")
        seen = {c.id: c.status for c in campaign_crashes(conn, "c")}
    assert seen == {first: "open", second: "open", third: "wontfix"}
    with store.transaction() as conn:
        grouping.set_status(conn, first, "wontfix")
        grouping.merge(conn, [second], first)
        seen_now = campaign_crashes(conn, "c")
    # Nothing left open: a wontfix and its duplicates do not gate.
    assert {c.status for c in seen_now} == {"wontfix", "duplicate"}
    assert not gate_fails(FailOn.OPEN, seen_now)

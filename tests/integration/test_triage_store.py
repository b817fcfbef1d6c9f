"""Triage results in the store, on SQLite and PostgreSQL, through the same function ingest
uses (``record_triage_outcome``): statuses per campaign and per branch, the gate over them,
late results, and a triager's merge / split / wontfix."""

from __future__ import annotations

from typing import Any

import pytest

from harnesses.model import HarnessKind
from orchestrator.errors import ConflictError, NotFoundError, UsageError
from orchestrator.store import grouping, leases, triage
from orchestrator.store.campaigns import CampaignStatus, FailOn, create_campaign, transition
from orchestrator.store.crashes import (
    CampaignCrash,
    Sighting,
    campaign_crashes,
    record_sighting,
)
from orchestrator.store.database import Database
from orchestrator.store.repos import add_repo
from orchestrator.summary import crash_json, gate_fails
from orchestrator.triage import record_triage_outcome
from workers.contract import CrashReport
from workers.queue import TRIAGE_QUEUE
from workers.triage_contract import TriageCode, TriageOutcome, TriageSpec, TriageTask

C1, C2, C3 = "1" * 40, "2" * 40, "3" * 40
FIX = {"commit": C2, "last_crashing": C1, "confidence": "high", "steps": 3, "note": None}


def _crash(signature: str) -> CrashReport:
    return CrashReport(
        signature=signature,
        canonical=f"exception|IndexError|pkg/{signature[:4]}.py:f||",
        kind="exception",
        exception_type="IndexError",
        message="out of range",
        title=f"IndexError in f (pkg/{signature[:4]}.py)",
        frames=(f"pkg/{signature[:4]}.py:f",),
        stack=(),
        testcase_key=f"crashes/r/0123456789abcdef/{signature}",
        found_after_s=1.0,
    )


def _campaign(database: Database, campaign_id: str, branch: str, commit: str, at: float) -> None:
    with database.transaction() as conn:
        create_campaign(
            conn, campaign_id=campaign_id, repo="r", branch=branch, commit=commit,
            duration_s=10, workers=1, fail_on=FailOn.OPEN, now=at,
        )  # fmt: skip
        transition(conn, campaign_id, from_=(CampaignStatus.QUEUED,), to=CampaignStatus.RUNNING,
                   now=at)  # fmt: skip


def _done(database: Database, campaign_id: str) -> None:
    with database.transaction() as conn:
        transition(conn, campaign_id, from_=(CampaignStatus.RUNNING,), to=CampaignStatus.DONE,
                   now=99.0)  # fmt: skip


def _found(database: Database, campaign_id: str, commit: str, signature: str) -> str:
    with database.transaction() as conn:
        group, _created = record_sighting(
            conn,
            _crash(signature),
            Sighting("r", campaign_id, "job", 1, commit, "fuzz/h.py", 1.0, now=2.0),
        )
    return group


def _recheck(
    database: Database,
    campaign_id: str,
    group: str,
    commit: str,
    *,
    code: TriageCode = TriageCode.OK,
    runs: int = 3,
    reproduced: int = 0,
    fixed: dict[str, Any] | None = None,
    reliability: float | None = 1.0,
) -> None:
    """A verify job as the planner writes it, and its outcome as ingest records it."""
    spec = TriageSpec(
        job_id=f"triage-{campaign_id}-{group}",
        task=TriageTask.VERIFY,
        repo="r",
        source="/src/r",
        group_id=group,
        signature="a" * 40,
        harness="fuzz/h.py",
        kind=HarnessKind.ATHERIS,
        path="fuzz/h.py",
        commit=commit,
        testcase_key="crashes/r/0123456789abcdef/" + "a" * 40,
        reliability=reliability,
        campaign_id=campaign_id,
    )
    outcome = TriageOutcome(
        spec.job_id, 1, group, TriageTask.VERIFY, code, commit, runs=runs, reproduced=reproduced,
        fixed=fixed,
    )  # fmt: skip
    with database.transaction() as conn:
        triage.record_check(conn, campaign_id, group, spec.job_id, 3.0)
        leases.create_jobs(
            conn,
            [leases.NewJob(spec.job_id, TRIAGE_QUEUE, spec.to_json(), 3, campaign_id, "fuzz/h.py")],
            now=3.0,
        )
        job = leases.get_job(conn, spec.job_id)
        record_triage_outcome(conn, job, outcome, now=4.0)


def _seen(database: Database, campaign_id: str) -> list[CampaignCrash]:
    with database.transaction() as conn:
        return campaign_crashes(conn, campaign_id)


@pytest.fixture
def store(database: Database) -> Database:
    with database.transaction() as conn:
        add_repo(conn, name="r", source="/src/r", default_branch="main", head_commit=C1, now=0.0)
    return database


def test_a_group_fixed_on_main_stays_open_on_the_release_branch(store: Database) -> None:
    _campaign(store, "rel", "release/1.0", C1, at=1.0)
    bug = _found(store, "rel", C1, "a" * 40)
    with store.transaction() as conn:
        triage.set_branch_status(conn, bug, "release/1.0", status="open", commit=C1,
                                 campaign_id="rel", fixed=None, as_of=1.0, now=3.0)  # fmt: skip
    _done(store, "rel")
    _campaign(store, "main", "main", C2, at=2.0)
    _recheck(store, "main", bug, C2, fixed=FIX)
    with store.transaction() as conn:
        statuses = triage.branch_statuses(conn, bug)
    assert statuses["release/1.0"]["status"] == "open"
    assert statuses["main"]["status"] == "fixed"
    on_main = _seen(store, "main")
    # The main campaign lists the group it only re-checked, fixed, with its fix range.
    assert [(c.id, c.status, c.found, c.found_after_s) for c in on_main] == [
        (bug, "fixed", False, None)
    ]
    assert crash_json(on_main[0])["fixed"]["commit"] == C2
    assert not gate_fails(FailOn.OPEN, on_main)
    # The release campaign still sees it open, and its gate still fails.
    on_release = _seen(store, "rel")
    assert [c.status for c in on_release] == ["open"]
    assert gate_fails(FailOn.OPEN, on_release)


def test_a_later_fix_elsewhere_does_not_change_an_earlier_campaigns_verdict(
    store: Database,
) -> None:
    _campaign(store, "old", "main", C1, at=1.0)
    bug = _found(store, "old", C1, "b" * 40)
    _done(store, "old")
    _campaign(store, "new", "main", C2, at=2.0)
    _recheck(store, "new", bug, C2, fixed=FIX)
    # Asking again for the old campaign's summary (campaign wait, report) cannot launder it.
    assert [c.status for c in _seen(store, "old")] == ["open"]
    assert gate_fails(FailOn.OPEN, _seen(store, "old"))
    assert [c.status for c in _seen(store, "new")] == ["fixed"]


def test_a_rerun_that_only_re_checks_an_open_bug_still_fails_the_gate(store: Database) -> None:
    _campaign(store, "first", "main", C1, at=1.0)
    bug = _found(store, "first", C1, "c" * 40)
    _done(store, "first")
    _campaign(store, "rerun", "main", C1, at=2.0)
    _recheck(store, "rerun", bug, C1, runs=1, reproduced=1)
    seen = _seen(store, "rerun")
    assert [(c.status, c.new, c.found) for c in seen] == [("open", False, False)]
    assert gate_fails(FailOn.OPEN, seen)  # not found by fuzzing this time: still open
    assert not gate_fails(FailOn.NEW, seen)  # but not new


@pytest.mark.parametrize(
    ("outcome", "why"),
    [
        ({"runs": 3, "fixed": None}, "no fix range: it crashed at this commit before"),
        ({"runs": 4, "fixed": FIX, "reliability": 0.5}, "4 misses of a coin flip prove nothing"),
        ({"code": TriageCode.BUILD_FAILED, "runs": 0}, "could not tell"),
        ({"code": TriageCode.TIMED_OUT, "runs": 0}, "could not tell"),
    ],
)
def test_a_re_check_that_proves_nothing_leaves_the_bug_open(
    store: Database, outcome: dict[str, Any], why: str
) -> None:
    _campaign(store, "first", "main", C1, at=1.0)
    bug = _found(store, "first", C1, "d" * 40)
    _done(store, "first")
    _campaign(store, "again", "main", C2, at=2.0)
    _recheck(store, "again", bug, C2, **outcome)
    assert [c.status for c in _seen(store, "again")] == ["open"], why
    assert gate_fails(FailOn.OPEN, _seen(store, "again"))


def test_a_late_re_check_result_changes_nothing(store: Database) -> None:
    _campaign(store, "first", "main", C1, at=1.0)
    bug = _found(store, "first", C1, "e" * 40)
    _done(store, "first")
    _campaign(store, "late", "main", C2, at=2.0)
    _done(store, "late")  # its summary is settled (the job was dead-lettered)
    _recheck(store, "late", bug, C2, fixed=FIX)
    with store.transaction() as conn:
        assert "main" not in triage.branch_statuses(conn, bug)
    assert [c.status for c in _seen(store, "late")] == ["open"]


def test_an_older_campaign_never_overwrites_a_newer_ones_branch_status(store: Database) -> None:
    _campaign(store, "c", "main", C1, at=1.0)
    bug = _found(store, "c", C1, "f" * 40)
    with store.transaction() as conn:
        triage.set_branch_status(conn, bug, "main", status="fixed", commit=C3, campaign_id="c",
                                 fixed=None, as_of=10.0, now=10.0)  # fmt: skip
        triage.set_branch_status(conn, bug, "main", status="open", commit=C2, campaign_id="c",
                                 fixed=None, as_of=5.0, now=11.0)  # fmt: skip
        assert triage.branch_statuses(conn, bug)["main"]["status"] == "fixed"


def test_flaky_groups_gate_only_when_asked(store: Database) -> None:
    _campaign(store, "c", "main", C1, at=1.0)
    bug = _found(store, "c", C1, "0" * 40)
    with store.transaction() as conn:
        triage.record_analysis(
            conn, bug, state="done", detail=None, crash_commit=C1, reliability=0.2,
            minimized_key=None, falsifying_example=None, introduced=None, blame=None,
        )  # fmt: skip
    seen = _seen(store, "c")
    assert [c.status for c in seen] == ["flaky"]
    assert not gate_fails(FailOn.OPEN, seen)
    assert gate_fails(FailOn.OPEN, seen, fail_on_flaky=True)
    assert gate_fails(FailOn.NEW, seen, fail_on_flaky=True)
    # A later analysis that reproduces reliably makes it open again.
    with store.transaction() as conn:
        triage.record_analysis(
            conn, bug, state="done", detail=None, crash_commit=C1, reliability=0.9,
            minimized_key=None, falsifying_example=None, introduced=None, blame=None,
        )  # fmt: skip
    assert [c.status for c in _seen(store, "c")] == ["open"]


def test_a_failed_analysis_for_a_passing_reason_can_be_claimed_again(store: Database) -> None:
    _campaign(store, "c", "main", C1, at=1.0)
    bug = _found(store, "c", C1, "9" * 40)
    with store.transaction() as conn:
        assert triage.start_analysis(conn, bug)
        assert not triage.start_analysis(conn, bug)  # claimed
        triage.record_analysis(
            conn, bug, state="retry", detail="the budget ran out", crash_commit=C1,
            reliability=None, minimized_key=None, falsifying_example=None, introduced=None,
            blame=None,
        )  # fmt: skip
        assert triage.start_analysis(conn, bug)


def test_merge_split_and_wontfix(store: Database) -> None:
    _campaign(store, "c", "main", C1, at=1.0)
    first = _found(store, "c", C1, "1" * 40)
    second = _found(store, "c", C1, "2" * 40)
    third = _found(store, "c", C1, "3" * 40)
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
    assert detail["merged"] == [second]
    assert {c.id: c.status for c in _seen(store, "c")}[second] == "duplicate"
    with store.transaction() as conn:
        assert grouping.split(conn, second) == first
        with pytest.raises(ConflictError, match="not merged"):
            grouping.split(conn, second)
        grouping.set_status(conn, third, "wontfix")
        with pytest.raises(UsageError, match="'closed'"):
            grouping.set_status(conn, third, "closed")
    seen = {c.id: c.status for c in _seen(store, "c")}
    assert seen == {first: "open", second: "open", third: "wontfix"}
    with store.transaction() as conn:
        grouping.set_status(conn, first, "wontfix")
        grouping.merge(conn, [second], first)
    # Nothing left open: a wontfix and its duplicates do not gate.
    assert not gate_fails(FailOn.OPEN, _seen(store, "c"))


def test_a_merged_signature_found_again_is_reported_as_its_target(store: Database) -> None:
    _campaign(store, "c", "main", C1, at=1.0)
    target = _found(store, "c", C1, "4" * 40)
    duplicate = _found(store, "c", C1, "5" * 40)
    with store.transaction() as conn:
        grouping.merge(conn, [duplicate], target)
    _campaign(store, "next", "main", C2, at=2.0)
    assert _found(store, "next", C2, "5" * 40) == target
    seen = _seen(store, "next")
    assert [(c.id, c.status) for c in seen] == [(target, "open")]
    assert gate_fails(FailOn.OPEN, seen)  # merging cannot launder the bug either

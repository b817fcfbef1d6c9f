"""Triage on the trusted side: which triage jobs a campaign needs, and what their results mean.

A campaign re-checks, when it starts, every open crash group of its repository that can
affect its branch (the group's introducing commit, or else the commit it was found at, is
in the branch's history) at the campaign's commit: a ``verify`` job. When its fuzzing
ends, every group it found that was never analysed gets an ``analyze`` job (reproduce,
minimize, bisect, blame). The campaign is done when all of them have finished; then each
group it found is open on its branch (it crashed there), whatever a re-check said.

Claiming a group and writing its job happen in one transaction, and planning is recorded
per campaign (``campaign_triage``), so a crash or a broker outage in between loses nothing:
the dispatcher plans again until it is recorded.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import dramatiq
import sqlalchemy as sa

from harnesses.identity import harness_id
from harnesses.model import Harness, HarnessKind
from harnesses.similarity import CrashShape, links
from orchestrator.errors import FuzzorchError
from orchestrator.identity import new_id
from orchestrator.registry import Registry
from orchestrator.settings import Timings
from orchestrator.store import leases
from orchestrator.store import triage as store
from orchestrator.store.campaigns import CampaignRecord, CampaignStatus, get_campaign
from orchestrator.store.database import Database
from orchestrator.store.repos import get_repo
from orchestrator.store.schema import crash_groups, crash_sightings
from workers.errors import WorkerError
from workers.queue import TRIAGE_QUEUE, send_triage
from workers.triage_contract import (
    TriageCode,
    TriageOutcome,
    TriageSpec,
    TriageTask,
    runs_to_call_fixed,
)

logger = logging.getLogger(__name__)

DEFAULT_RUNS = 10
_HEX40 = re.compile(r"[0-9a-f]{40}")


@dataclass
class Triage:
    """Plans triage jobs for campaigns and tells when a campaign's triage is over."""

    database: Database
    broker: dramatiq.Broker
    registry: Registry
    timings: Timings
    clock: Callable[[], float]
    runs: int = DEFAULT_RUNS

    def plan(self, campaign: CampaignRecord, what: str) -> bool:
        """Plan a campaign's ``checks`` or ``analysis`` once; True when that is recorded.

        A failure of git or of the repository (permanent) is logged and the planning counts
        as done, so the campaign cannot hang on it; anything else (the broker, the database)
        is retried on the next call.
        """
        with self.database.transaction() as conn:
            checks, analysis = store.planned(conn, campaign.id)
        if checks if what == "checks" else analysis:
            return True
        try:
            sent = self.plan_checks(campaign) if what == "checks" else self.plan_analysis(campaign)
            if sent:
                logger.info("campaign %s: %d triage job(s) for %s", campaign.id, sent, what)
        except (WorkerError, FuzzorchError) as exc:
            logger.warning("campaign %s: %s not planned: %s", campaign.id, what, exc)
        except Exception:
            logger.exception("campaign %s: planning %s failed; trying again", campaign.id, what)
            return False
        with self.database.transaction() as conn:
            store.mark_planned(conn, campaign.id, what, self.clock())
        return True

    def plan_checks(self, campaign: CampaignRecord) -> int:
        """Send a verify job for every open group that can affect the campaign's branch."""
        with self.database.transaction() as conn:
            groups = store.groups_to_recheck(conn, campaign.repo)
            anchors = {g.id: self._anchor(conn, g) for g in groups}
            fixes = {g.id: store.branch_statuses(conn, g.id).get(campaign.branch) for g in groups}
            source = get_repo(conn, campaign.repo).source
        mirror = self.registry.mirror_path(campaign.repo)
        sent = 0
        for group in groups:
            anchor = anchors[group.id]
            try:
                if not self.registry.git.is_ancestor(mirror, anchor, campaign.commit):
                    continue
            except WorkerError as exc:
                logger.warning("group %s: is %s in %s? %s", group.id, anchor, campaign.branch, exc)
                continue
            harness = self._harness(campaign.repo, group.crash_commit or anchor, group.harness)
            if harness is None:
                continue
            on_branch = fixes[group.id] or {}
            spec = TriageSpec(
                job_id=new_id("triage"),
                task=TriageTask.VERIFY,
                repo=campaign.repo,
                source=source,
                group_id=group.id,
                signature=group.signature,
                harness=harness.name,
                kind=harness.kind,
                path=harness.path,
                options=harness.options,
                commit=campaign.commit,
                testcase_key="",  # chosen in the claiming transaction
                runs=self.runs,
                introduced=(group.introduced or {}).get("commit"),
                reliability=group.reliability,
                harness_commit=group.crash_commit or anchor,
                known_fix=on_branch.get("fixed") if on_branch.get("status") == "fixed" else None,
                campaign_id=campaign.id,
            )

            def claim(
                conn: sa.Connection, spec: TriageSpec, group: store.GroupTriage = group
            ) -> TriageSpec | None:
                if not store.record_check(conn, campaign.id, group.id, spec.job_id, self.clock()):
                    return None
                testcase = _verify_testcase(conn, group, spec)
                if testcase is None:
                    return None
                return dataclasses.replace(
                    spec, testcase_key=testcase,
                    known_bad=tuple(store.known_bad_commits(conn, group.id)),
                )  # fmt: skip

            sent += self._submit(campaign, spec, claim)
        return sent

    def plan_analysis(self, campaign: CampaignRecord) -> int:
        """Send an analyze job for every group the campaign found that was never analysed."""
        with self.database.transaction() as conn:
            found = _found_groups(conn, campaign.id)
            source = get_repo(conn, campaign.repo).source
        harnesses = self.registry.collection(campaign.repo, campaign.commit).harnesses
        collection = {h.name: h for h in harnesses}
        sent = 0
        for group_id, signature, harness_name in found:
            with self.database.transaction() as conn:
                self._link(conn, group_id)
            harness = collection.get(harness_name)
            if harness is None:
                continue
            spec = TriageSpec(
                job_id=new_id("triage"),
                task=TriageTask.ANALYZE,
                repo=campaign.repo,
                source=source,
                group_id=group_id,
                signature=signature,
                harness=harness.name,
                kind=harness.kind,
                path=harness.path,
                options=harness.options,
                commit=campaign.commit,
                testcase_key="",
                runs=self.runs,
                campaign_id=campaign.id,
            )

            def claim(conn: sa.Connection, spec: TriageSpec) -> TriageSpec | None:
                # The testcase must be one this harness found (two harnesses can share a
                # group), and preferably one this campaign found.
                testcase = store.first_testcase(
                    conn, spec.group_id, prefix=_crash_prefix(spec), campaign_id=campaign.id
                )
                if testcase is None or not store.start_analysis(conn, spec.group_id):
                    return None
                return dataclasses.replace(spec, testcase_key=testcase)

            sent += self._submit(campaign, spec, claim)
        return sent

    def unfinished(self, campaign_id: str) -> int:
        """How many of a campaign's triage jobs have not finished."""
        with self.database.transaction() as conn:
            jobs = leases.campaign_jobs(conn, campaign_id)
        return sum(1 for j in jobs if j.queue == TRIAGE_QUEUE and j.state in leases.UNFINISHED)

    def complete(self, campaign: CampaignRecord) -> None:
        """Every group the campaign found is open on its branch as of its commit."""
        now = self.clock()
        with self.database.transaction() as conn:
            for group_id, _signature, _harness in _found_groups(conn, campaign.id):
                store.set_branch_status(
                    conn, group_id, campaign.branch, status="open", commit=campaign.commit,
                    campaign_id=campaign.id, fixed=None, as_of=campaign.created_at, now=now,
                )  # fmt: skip

    def _submit(
        self,
        campaign: CampaignRecord,
        spec: TriageSpec,
        claim: Callable[[sa.Connection, TriageSpec], TriageSpec | None],
    ) -> int:
        """Claim, write and lease a job in one transaction, then send it; 1 if sent."""
        now = self.clock()
        with self.database.transaction() as conn:
            claimed = claim(conn, spec)
            if claimed is None:
                return 0
            job = leases.NewJob(
                id=claimed.job_id, queue=TRIAGE_QUEUE, spec=claimed.to_json(),
                max_attempts=self.timings.max_attempts, campaign_id=campaign.id,
                harness=claimed.harness,
            )  # fmt: skip
            lease = leases.create_and_dispatch(
                conn, job, now=now, lease_seconds=self.timings.first_lease_seconds
            )
        if lease is None:
            return 0
        # A lost send costs a lease period: the reconciler sends attempt 2.
        send_triage(self.broker, dataclasses.replace(claimed, attempt=lease.attempt))
        logger.info("dispatched %s (%s %s)", claimed.job_id, claimed.task.value, claimed.group_id)
        return 1

    def _anchor(self, conn: sa.Connection, group: store.GroupTriage) -> str:
        introduced = (group.introduced or {}).get("commit")
        if isinstance(introduced, str):
            return introduced
        return group.crash_commit or store.first_commit(conn, group.id)

    def _harness(self, repo: str, commit: str, name: str) -> Harness | None:
        try:
            harnesses = self.registry.collection(repo, commit).harnesses
        except (WorkerError, FuzzorchError) as exc:
            logger.warning("harnesses of %s at %s unreadable: %s", repo, commit, exc)
            return None
        return next((h for h in harnesses if h.name == name), None)

    def _link(self, conn: sa.Connection, group_id: str) -> None:
        """Link a group to the repository's groups with similar signatures."""
        repo = sa.select(crash_groups.c.repo).where(crash_groups.c.id == group_id)
        rows = conn.execute(
            sa.select(crash_groups.c.id, crash_groups.c.kind, crash_groups.c.exception_type,
                      crash_groups.c.frames)
            .where(crash_groups.c.repo == repo.scalar_subquery())
        ).all()  # fmt: skip
        shapes = {
            row.id: CrashShape(row.kind, row.exception_type, tuple(row.frames)) for row in rows
        }
        mine = shapes.pop(group_id, None)
        if mine is not None:
            store.add_links(conn, group_id, links(mine, shapes), self.clock())


def _crash_prefix(spec: TriageSpec) -> str:
    return f"crashes/{spec.repo}/{harness_id(spec.harness)}/"


def _verify_testcase(conn: sa.Connection, group: store.GroupTriage, spec: TriageSpec) -> str | None:
    # A minimized atheris testcase replays the same way; a Hypothesis one is an
    # example-database entry, so re-checks use the original buffer.
    if spec.kind is HarnessKind.ATHERIS and group.minimized_key:
        return group.minimized_key
    return store.first_testcase(conn, group.id, prefix=_crash_prefix(spec))


def _found_groups(conn: sa.Connection, campaign_id: str) -> list[tuple[str, str, str]]:
    rows = conn.execute(
        sa.select(crash_groups.c.id, crash_groups.c.signature, crash_groups.c.harness)
        .where(
            crash_groups.c.id.in_(
                sa.select(crash_sightings.c.group_id).where(
                    crash_sightings.c.campaign_id == campaign_id
                )
            )
        )
        .order_by(crash_groups.c.first_seen_at, crash_groups.c.id)
    )
    return [(row.id, row.signature, row.harness) for row in rows]


def record_triage_outcome(
    conn: sa.Connection, job: leases.JobRecord, outcome: TriageOutcome, *, now: float
) -> None:
    """Apply a triage job's first outcome to its group (and the campaign's branch)."""
    spec = TriageSpec.from_json(job.spec)
    if outcome.group_id != spec.group_id or outcome.task is not spec.task:
        raise ValueError(f"triage outcome for {outcome.group_id!r} does not match job {job.id!r}")
    if outcome.commit != spec.commit:
        raise ValueError(f"triage outcome at {outcome.commit!r} for a job at {spec.commit!r}")
    if spec.task is TriageTask.ANALYZE:
        _record_analysis(conn, spec, outcome)
        return
    if job.campaign_id is None:
        return
    campaign = get_campaign(conn, job.campaign_id)
    if campaign.status not in (CampaignStatus.RUNNING, CampaignStatus.TRIAGING):
        # A late result (a dead-lettered job's): the campaign's summary is settled.
        logger.info("ignoring the late re-check %s of %s", job.id, campaign.id)
        return
    result, fixed = _check_result(spec, outcome)
    if result in ("open", "fixed"):
        store.set_branch_status(
            conn, spec.group_id, campaign.branch, status=result, commit=spec.commit,
            campaign_id=campaign.id, fixed=fixed, as_of=campaign.created_at, now=now,
        )  # fmt: skip
    store.finish_check(conn, campaign.id, spec.group_id, result, fixed)


def _check_result(spec: TriageSpec, outcome: TriageOutcome) -> tuple[str, Mapping[str, Any] | None]:
    """What a re-check says: ``open``, ``fixed`` (with the range), or why it could not tell."""
    if outcome.code is not TriageCode.OK:
        return outcome.code.value, None
    if outcome.reproduced:
        return "open", None
    # No fix range: it crashed at this very commit before. Too few runs for the crash's
    # reliability: a miss is not proof. Either way it stays open.
    if outcome.fixed is None or outcome.runs < runs_to_call_fixed(spec.reliability):
        return "open", None
    return "fixed", outcome.fixed


def _record_analysis(conn: sa.Connection, spec: TriageSpec, outcome: TriageOutcome) -> None:
    code = outcome.code
    measured = code in (TriageCode.OK, TriageCode.NOT_REPRODUCED)
    if measured:
        state = "done"
    elif code.passing:
        state = "retry"
    else:
        state = "failed"
    store.record_analysis(
        conn,
        spec.group_id,
        state=state,
        detail=outcome.detail,
        crash_commit=spec.commit,
        reliability=outcome.reliability if measured else None,
        minimized_key=_own_key(outcome.minimized_key, spec),
        falsifying_example=outcome.falsifying_example,
        introduced=outcome.introduced,
        blame=outcome.blame,
    )


def _own_key(key: str | None, spec: TriageSpec) -> str | None:
    """A minimized testcase key, if it is where this job's minimized testcases belong."""
    if key is None:
        return None
    prefix = f"minimized/{spec.repo}/{harness_id(spec.harness)}/"
    name = key[len(prefix) :] if key.startswith(prefix) else ""
    return key if _HEX40.fullmatch(name) else None

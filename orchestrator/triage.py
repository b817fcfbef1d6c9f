"""Triage on the trusted side: which triage jobs a campaign needs, and what their results mean.

A campaign re-checks, when it starts, every open crash group of its repository that can
affect its branch (the group's introducing commit, or else the commit it was found at, is
in the branch's history) at the campaign's commit: a ``verify`` job. When its fuzzing
ends, every group it found that was never analysed gets an ``analyze`` job (reproduce,
minimize, bisect, blame). The campaign is done when all of them have finished; then each
group it found is open on its branch (it crashed there), whatever a re-check said.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import dramatiq
import sqlalchemy as sa

from harnesses.identity import harness_id
from harnesses.model import Harness, HarnessKind
from harnesses.similarity import CrashShape, links
from orchestrator.identity import new_id
from orchestrator.registry import Registry
from orchestrator.settings import Timings
from orchestrator.store import leases
from orchestrator.store import triage as store
from orchestrator.store.campaigns import CampaignRecord, get_campaign
from orchestrator.store.database import Database
from orchestrator.store.repos import get_repo
from orchestrator.store.schema import crash_groups, crash_sightings
from workers.errors import WorkerError
from workers.queue import TRIAGE_QUEUE, send_triage
from workers.triage_contract import TriageCode, TriageOutcome, TriageSpec, TriageTask

logger = logging.getLogger(__name__)

DEFAULT_RUNS = 10


@dataclass
class Triage:
    """Plans triage jobs for campaigns and tells when a campaign's triage is over."""

    database: Database
    broker: dramatiq.Broker
    registry: Registry
    timings: Timings
    clock: Callable[[], float]
    runs: int = DEFAULT_RUNS

    def plan_checks(self, campaign: CampaignRecord) -> int:
        """Send a verify job for every open group that can affect the campaign's branch."""
        with self.database.transaction() as conn:
            groups = store.groups_to_recheck(conn, campaign.repo)
            anchors = {g.id: self._anchor(conn, g) for g in groups}
            source = get_repo(conn, campaign.repo).source
        mirror = self.registry.mirror_path(campaign.repo)
        sent = 0
        for group in groups:
            anchor = anchors[group.id]
            try:
                if anchor is None or not self.registry.git.is_ancestor(
                    mirror, anchor, campaign.commit
                ):
                    continue
            except WorkerError as exc:
                logger.warning(
                    "group %s: cannot tell if it affects %s: %s", group.id, campaign.branch, exc
                )
                continue
            harness = self._harness(campaign.repo, group.crash_commit or anchor, group.harness)
            if harness is None:
                continue
            with self.database.transaction() as conn:
                known_bad = store.known_bad_commits(conn, group.id)
                # A minimized atheris testcase replays the same way; a Hypothesis one is an
                # example-database entry, so re-checks use the original buffer.
                minimized = harness.kind is HarnessKind.ATHERIS and group.minimized_key
                testcase = group.minimized_key if minimized else None
                testcase = testcase or store.first_testcase(conn, group.id)
            introduced = (group.introduced or {}).get("commit")
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
                testcase_key=testcase,
                runs=self.runs,
                known_bad=tuple(known_bad),
                introduced=introduced,
                reliability=group.reliability,
                harness_commit=group.crash_commit or anchor,
                campaign_id=campaign.id,
            )
            if self._submit(campaign, spec, check=True):
                sent += 1
        if sent:
            logger.info("campaign %s: re-checking %d open crash group(s)", campaign.id, sent)
        return sent

    def plan_analysis(self, campaign: CampaignRecord) -> int:
        """Send an analyze job for every group the campaign found that was never analysed."""
        with self.database.transaction() as conn:
            found = _found_groups(conn, campaign.id)
            source = get_repo(conn, campaign.repo).source
        collection = {
            h.name: h for h in self.registry.collection(campaign.repo, campaign.commit).harnesses
        }
        sent = 0
        for group_id, signature, harness_name in found:
            harness = collection.get(harness_name)
            with self.database.transaction() as conn:
                self._link(conn, group_id)
                if harness is None or not store.start_analysis(conn, group_id):
                    continue
                testcase = store.first_testcase(conn, group_id, campaign.id)
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
                testcase_key=testcase,
                runs=self.runs,
                campaign_id=campaign.id,
            )
            if self._submit(campaign, spec, check=False):
                sent += 1
        if sent:
            logger.info("campaign %s: triaging %d new crash group(s)", campaign.id, sent)
        return sent

    def unfinished(self, campaign_id: str) -> int:
        """How many of a campaign's triage jobs have not finished."""
        with self.database.transaction() as conn:
            jobs = leases.campaign_jobs(conn, campaign_id)
        return sum(1 for j in jobs if j.queue == TRIAGE_QUEUE and j.state in leases.UNFINISHED)

    def complete(self, campaign: CampaignRecord) -> None:
        """Every group the campaign found is open (or flaky) on its branch at its commit."""
        now = self.clock()
        with self.database.transaction() as conn:
            for group_id, _signature, _harness in _found_groups(conn, campaign.id):
                store.set_branch_status(
                    conn, group_id, campaign.branch, status="open", commit=campaign.commit,
                    campaign_id=campaign.id, fixed=None, now=now,
                )  # fmt: skip

    def _submit(self, campaign: CampaignRecord, spec: TriageSpec, *, check: bool) -> bool:
        now = self.clock()
        with self.database.transaction() as conn:
            if check and not store.record_check(conn, campaign.id, spec.group_id, spec.job_id, now):
                return False
            leases.create_jobs(
                conn,
                [
                    leases.NewJob(
                        id=spec.job_id,
                        queue=TRIAGE_QUEUE,
                        spec=spec.to_json(),
                        max_attempts=self.timings.max_attempts,
                        campaign_id=campaign.id,
                        harness=spec.harness,
                    )
                ],
                now=now,
            )
            lease = leases.dispatch(
                conn, spec.job_id, expected_attempt=0, now=now,
                lease_seconds=max(self.timings.lease_seconds, self.timings.heartbeat_seconds * 3),
            )  # fmt: skip
        if lease is None:
            return False
        send_triage(self.broker, dataclasses.replace(spec, attempt=lease.attempt))
        logger.info("dispatched %s (%s %s)", spec.job_id, spec.task.value, spec.group_id)
        return True

    def _anchor(self, conn: sa.Connection, group: store.GroupTriage) -> str | None:
        introduced = (group.introduced or {}).get("commit")
        if isinstance(introduced, str):
            return introduced
        if group.crash_commit is not None:
            return group.crash_commit
        return store.first_commit(conn, group.id)

    def _harness(self, repo: str, commit: str, name: str) -> Harness | None:
        try:
            harnesses = self.registry.collection(repo, commit).harnesses
        except Exception as exc:  # a commit that cannot be read is not worth a campaign
            logger.warning("harnesses of %s at %s unreadable: %s", repo, commit, exc)
            return None
        return next((h for h in harnesses if h.name == name), None)

    def _link(self, conn: sa.Connection, group_id: str) -> None:
        """Link a group to the repository's groups with similar signatures."""
        rows = conn.execute(
            sa.select(crash_groups.c.id, crash_groups.c.repo, crash_groups.c.kind,
                      crash_groups.c.exception_type, crash_groups.c.frames)
            .where(crash_groups.c.repo == sa.select(crash_groups.c.repo)
                   .where(crash_groups.c.id == group_id).scalar_subquery())
        ).all()  # fmt: skip
        shapes = {
            row.id: CrashShape(row.kind, row.exception_type, tuple(row.frames)) for row in rows
        }
        mine = shapes.pop(group_id, None)
        if mine is not None:
            store.add_links(conn, group_id, links(mine, shapes), self.clock())


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
        measured = outcome.code in (TriageCode.OK, TriageCode.NOT_REPRODUCED)
        store.record_analysis(
            conn,
            spec.group_id,
            ok=outcome.code is TriageCode.OK,
            detail=outcome.detail if outcome.code is not TriageCode.OK else None,
            crash_commit=spec.commit,
            reliability=outcome.reliability if measured else None,
            minimized_key=_own_key(outcome.minimized_key, spec),
            falsifying_example=outcome.falsifying_example,
            introduced=outcome.introduced,
            blame=outcome.blame,
        )
        return
    if job.campaign_id is None:
        return
    campaign = get_campaign(conn, job.campaign_id)
    result = outcome.code.value
    if outcome.code is TriageCode.OK:
        # Not reproduced without a fix range: it crashed at this very commit before.
        fixed: Mapping[str, Any] | None = None if outcome.reproduced else outcome.fixed
        result = "fixed" if fixed is not None else "open"
        store.set_branch_status(
            conn, spec.group_id, campaign.branch, status=result, commit=spec.commit,
            campaign_id=campaign.id, fixed=fixed, now=now,
        )  # fmt: skip
    store.finish_check(conn, campaign.id, spec.group_id, result)


def _own_key(key: str | None, spec: TriageSpec) -> str | None:
    """A minimized testcase key, if it is where this job's minimized testcases belong."""
    if key is None:
        return None
    prefix = f"minimized/{spec.repo}/{harness_id(spec.harness)}/"
    return key if key.startswith(prefix) and len(key) == len(prefix) + 40 else None

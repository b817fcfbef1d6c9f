"""The campaign summary (DESIGN.md, "JSON summary", schema 1), built from the store.

A pure view model over plain records: the same value feeds ``run --json``, ``campaign
wait --json``, ``report --format json`` and the HTML report. Fields that are not computed
yet (triage) are null, never omitted.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from orchestrator.store.campaigns import CampaignRecord, FailOn
from orchestrator.store.crashes import CampaignCrash
from orchestrator.store.leases import JobRecord
from workers.queue import FUZZ_QUEUE

SCHEMA = 1
_FAILURES = ("startup_failed", "build_failed", "infra_error", "timed_out")


@dataclass(frozen=True)
class HarnessSummary:
    """What one harness did in a campaign."""

    name: str
    kind: str
    execs: int
    exec_per_s: float
    coverage: int
    corpus_size: int
    crashes: int
    status: str
    detail: str | None

    def to_json(self) -> dict[str, Any]:
        """The harness entry of the summary."""
        return {
            "name": self.name,
            "kind": self.kind,
            "execs": self.execs,
            "exec_per_s": self.exec_per_s,
            "coverage": self.coverage,
            "corpus_size": self.corpus_size,
            "crashes": self.crashes,
            "status": self.status,
        }


def harness_summaries(
    kinds: dict[str, str], jobs: Sequence[JobRecord], crashes: Sequence[CampaignCrash]
) -> list[HarnessSummary]:
    """Per-harness totals over a campaign's finished jobs."""
    outcomes: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for job in jobs:
        if job.queue == FUZZ_QUEUE and job.harness is not None and job.outcome_data is not None:
            outcomes[job.harness].append(dict(job.outcome_data))
    crash_count: dict[str, int] = defaultdict(int)
    for crash in crashes:
        if crash.found:
            crash_count[crash.harness] += 1
    result = []
    for name in sorted(kinds):
        done = outcomes.get(name, [])
        stats = [o.get("stats") or {} for o in done]
        execs = sum(int(s.get("execs", 0)) for s in stats)
        wall = sum(float(s.get("wall_s", 0.0)) for s in stats)
        codes = [str(o.get("code")) for o in done]
        if not codes:
            status, detail = "not_run", None
        elif all(code in _FAILURES for code in codes):
            status = codes[-1]
            detail = next((o.get("detail") for o in reversed(done) if o.get("detail")), None)
        else:
            status, detail = ("crashed" if crash_count[name] else "ok"), None
        result.append(
            HarnessSummary(
                name=name,
                kind=kinds[name],
                execs=execs,
                exec_per_s=round(execs / wall, 1) if wall > 0 else 0.0,
                coverage=max((int(s.get("coverage", 0)) for s in stats), default=0),
                corpus_size=max((int(s.get("corpus_size", 0)) for s in stats), default=0),
                crashes=crash_count[name],
                status=status,
                detail=detail,
            )
        )
    return result


def crash_json(crash: CampaignCrash) -> dict[str, Any]:
    """A crash entry of the summary; what triage has not computed (yet) is null."""
    return {
        "id": crash.id,
        "signature": crash.signature,
        "title": crash.title,
        "kind": crash.kind,
        "exception_type": crash.exception_type,
        "message": crash.message,
        "frames": list(crash.frames),
        "harness": crash.harness,
        "new": crash.new,
        "status": crash.status,
        "found_after_s": crash.found_after_s,
        "reliability": crash.reliability,
        "introduced": _introduced(crash.introduced),
        "fixed": _fixed(crash.fixed),
        "blame": dict(crash.blame) if crash.blame is not None else None,
        "testcase": crash.testcase_key,
        "minimized": crash.minimized_key,
    }


def _introduced(found: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if found is None:
        return None
    return {
        "commit": found.get("commit"),
        "last_good": found.get("last_good"),
        "confidence": found.get("confidence"),
        "steps": found.get("steps"),
        "note": found.get("note"),
    }


def _fixed(found: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if found is None:
        return None
    return {
        "commit": found.get("commit"),
        "last_crashing": found.get("last_crashing"),
        "confidence": found.get("confidence"),
        "steps": found.get("steps"),
        "note": found.get("note"),
    }


def gate_fails(
    fail_on: FailOn, crashes: Sequence[CampaignCrash], *, fail_on_flaky: bool = False
) -> bool:
    """Whether the release gate fails (DESIGN.md): open groups, or new ones, or never."""
    return crash_gate_fails(fail_on, [crash_json(c) for c in crashes], fail_on_flaky=fail_on_flaky)


def crash_gate_fails(
    fail_on: FailOn, crashes: Sequence[Mapping[str, Any]], *, fail_on_flaky: bool = False
) -> bool:
    """The gate over summary crash entries (as the server's JSON carries them).

    ``open`` fails on any group open on the campaign's branch, found or only re-checked,
    so a rerun that happens not to hit a known bug still fails; ``new`` only on groups
    first seen in this campaign. Flaky groups count only with ``fail_on_flaky``.
    """
    if fail_on is FailOn.NONE:
        return False
    gating = {"open", "flaky"} if fail_on_flaky else {"open"}
    if fail_on is FailOn.NEW:
        return any(c["new"] and c["status"] in gating for c in crashes)
    return any(c["status"] in gating for c in crashes)


def summary(
    campaign: CampaignRecord,
    harnesses: Sequence[HarnessSummary],
    crashes: Sequence[CampaignCrash],
    *,
    report: str | None,
) -> dict[str, Any]:
    """The JSON summary of a campaign."""
    return {
        "schema": SCHEMA,
        "campaign": {
            "id": campaign.id,
            "repo": campaign.repo,
            "branch": campaign.branch,
            "commit": campaign.commit,
            "status": campaign.status.value,
            "started_at": iso(campaign.started_at),
            "finished_at": iso(campaign.finished_at),
        },
        "harnesses": [h.to_json() for h in harnesses],
        "crashes": [crash_json(c) for c in crashes],
        "report": report,
    }


def iso(epoch: float | None) -> str | None:
    """An epoch as ISO 8601 UTC, or None."""
    if epoch is None:
        return None
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat(timespec="seconds")

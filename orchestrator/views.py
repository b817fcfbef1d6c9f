"""Read models shared by the CLI and the HTTP API: repositories and campaign summaries."""

from __future__ import annotations

from typing import Any

from harnesses.model import Collection
from orchestrator.registry import Registry
from orchestrator.store import crashes, leases
from orchestrator.store.campaigns import CampaignRecord
from orchestrator.store.database import Database
from orchestrator.store.repos import RepoRecord
from orchestrator.summary import harness_summaries, iso, summary


def repo_json(record: RepoRecord) -> dict[str, Any]:
    """A repository as JSON."""
    return {
        "name": record.name,
        "source": record.source,
        "default_branch": record.default_branch,
        "head_commit": record.head_commit,
        "created_at": iso(record.created_at),
        "updated_at": iso(record.updated_at),
    }


def collection_json(collection: Collection, include_skipped: bool) -> dict[str, Any]:
    """Found harnesses, and skipped files if asked, as JSON."""
    found = [{**h.to_json(), "status": "found"} for h in collection.harnesses]
    result: dict[str, Any] = {"harnesses": found}
    if include_skipped:
        result["skipped"] = [s.to_json() for s in collection.skipped]
    return result


def campaign_summary(
    database: Database, registry: Registry, campaign: CampaignRecord, *, report: str | None
) -> dict[str, Any]:
    """The JSON summary (schema 1) of a campaign as it stands now."""
    kinds = {
        h.name: h.kind.value for h in registry.collection(campaign.repo, campaign.commit).harnesses
    }
    with database.transaction() as conn:
        jobs = leases.campaign_jobs(conn, campaign.id)
        seen = crashes.campaign_crashes(conn, campaign.id)
    return summary(campaign, harness_summaries(kinds, jobs, seen), seen, report=report)

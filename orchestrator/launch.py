"""Starting a campaign on a server: from the API, and from a forge's push."""

from __future__ import annotations

from collections.abc import Callable

from orchestrator.dispatcher import Dispatcher
from orchestrator.errors import NotFoundError
from orchestrator.identity import new_id
from orchestrator.registry import Registry
from orchestrator.store import campaigns
from orchestrator.store.campaigns import CampaignRecord, FailOn
from orchestrator.store.database import Database


def launch_campaign(
    database: Database,
    registry: Registry,
    dispatcher: Dispatcher,
    clock: Callable[[], float],
    *,
    repo: str,
    branch: str,
    commit: str,
    duration_s: float,
    workers: int,
    fail_on: FailOn,
    priority: int,
    created_by: str,
) -> CampaignRecord:
    """Create a campaign at ``commit`` and start it; NotFoundError when it has no harness."""
    if not registry.collection(repo, commit).harnesses:
        raise NotFoundError(f"no harness in {repo!r} at {branch}@{commit[:12]}")
    with database.transaction() as conn:
        record = campaigns.create_campaign(
            conn, campaign_id=new_id("cmp"), repo=repo, branch=branch, commit=commit,
            duration_s=duration_s, workers=workers, fail_on=fail_on, priority=priority,
            now=clock(), created_by=created_by,
        )  # fmt: skip
    dispatcher.start(record.id)
    return record

"""Starting the campaigns that forge pushes asked for (the dispatcher loop calls this).

The webhook route only records a delivery; here it is claimed (so two server processes
never start it twice), the repository is fetched so that the pushed commit is known, and a
campaign starts on that exact commit with its branch policy's budget and gate.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from orchestrator.dispatcher import Dispatcher
from orchestrator.errors import FuzzorchError
from orchestrator.launch import launch_campaign
from orchestrator.registry import Registry
from orchestrator.store import policies, webhooks
from orchestrator.store.database import Database
from workers.errors import WorkerError

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
STALLED_S = 600.0  # a claimed delivery with no campaign after this long was abandoned


def start_pushed_campaigns(
    database: Database, registry: Registry, dispatcher: Dispatcher, clock: Callable[[], float]
) -> int:
    """Start a campaign for each queued delivery; return how many started."""
    with database.transaction() as conn:
        # A server that died between claiming a delivery and starting its campaign.
        webhooks.requeue_stalled(conn, before=clock() - STALLED_S)
        queued = webhooks.queued_deliveries(conn)
    started = 0
    for delivery in queued:
        with database.transaction() as conn:
            if not webhooks.settle_delivery(
                conn, delivery.forge, delivery.delivery, from_state="queued", state="started"
            ):
                continue  # another server process has it
            found = policies.list_policies(conn, delivery.repo)
            policy = next((p for p in found if p.id == delivery.policy_id), None)
        try:
            if policy is None:
                raise LookupError("its branch policy was removed before the campaign started")
            registry.refresh(delivery.repo)  # fetch: the pushed commit must be in the mirror
            commit = registry.resolve(delivery.repo, delivery.commit)
            campaign = launch_campaign(
                database, registry, dispatcher, clock, repo=delivery.repo,
                branch=delivery.branch, commit=commit, duration_s=policy.duration_s,
                workers=policy.workers, fail_on=policy.fail_on, priority=policy.priority,
                created_by=f"webhook:{delivery.forge}",
            )  # fmt: skip
        except (FuzzorchError, WorkerError, LookupError, ValueError) as exc:
            passing = isinstance(exc, WorkerError) and exc.transient
            with database.transaction() as conn:
                if passing and webhooks.retry_delivery(
                    conn, delivery.forge, delivery.delivery, detail=str(exc)[:2000],
                    max_attempts=MAX_ATTEMPTS,
                ):  # fmt: skip
                    logger.warning("delivery %s: will retry: %s", delivery.delivery, exc)
                    continue
            logger.warning(
                "delivery %s/%s: no campaign: %s", delivery.forge, delivery.delivery, exc
            )
            with database.transaction() as conn:
                webhooks.settle_delivery(
                    conn, delivery.forge, delivery.delivery, from_state="started",
                    state="failed", detail=str(exc)[:2000],
                )  # fmt: skip
            continue
        with database.transaction() as conn:
            webhooks.settle_delivery(
                conn, delivery.forge, delivery.delivery, from_state="started", state="started",
                campaign_id=campaign.id,
            )  # fmt: skip
        logger.info(
            "push to %s@%s (%s): campaign %s", delivery.repo, delivery.branch,
            delivery.commit[:12], campaign.id,
        )  # fmt: skip
        started += 1
    return started

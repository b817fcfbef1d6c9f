"""Routes: campaigns (start, list, status for waiting, cancel), their jobs and reports."""

# No "from __future__ import annotations": FastAPI reads the annotations at runtime.
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, FastAPI, Query
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field

from orchestrator.launch import launch_campaign
from orchestrator.reports.build import ReportFormat, export
from orchestrator.reports.html import SERVER_URLS, render
from orchestrator.server.auth import Auth, Principal
from orchestrator.store import campaigns, leases
from orchestrator.store.campaigns import CampaignStatus, FailOn
from orchestrator.summary import iso
from orchestrator.ui.model import campaign_page
from orchestrator.views import campaign_summary
from workers.gitrefs import validate_ref

if TYPE_CHECKING:
    from orchestrator.server.app import Services


class CampaignIn(BaseModel):
    """A campaign to start."""

    repo: str = Field(min_length=1, max_length=64)
    branch: str = Field(min_length=1, max_length=255)
    duration: float = Field(default=600.0, ge=5, le=7 * 24 * 3600)
    workers: int = Field(default=2, ge=1, le=1024)
    fail_on: FailOn = FailOn.OPEN
    priority: int = Field(default=0, ge=0, le=100)


def register(app: FastAPI, services: "Services", auth: Auth) -> None:
    """Add the routes to ``app``."""

    @app.post("/api/v1/campaigns", status_code=201, tags=["campaigns"])
    def start_campaign(
        body: CampaignIn, who: Annotated[Principal, Depends(auth.require_admin)]
    ) -> dict[str, Any]:
        """Start a campaign on the head of a branch; answers at once with its id."""
        commit = services.registry.resolve(body.repo, validate_ref(body.branch))
        record = launch_campaign(
            services.database, services.registry, services.dispatcher, services.clock,
            repo=body.repo, branch=body.branch, commit=commit, duration_s=body.duration,
            workers=body.workers, fail_on=body.fail_on, priority=body.priority,
            created_by=who.name,
        )  # fmt: skip
        services.wake()
        return {"id": record.id, "commit": commit, "status": CampaignStatus.RUNNING.value}

    @app.get("/api/v1/campaigns", dependencies=[auth.viewer], tags=["campaigns"])
    def list_all(
        repo: str | None = Query(default=None, max_length=64),
        limit: int = Query(default=50, ge=1, le=500),
    ) -> list[dict[str, Any]]:
        """Campaigns, newest first."""
        with services.database.transaction() as conn:
            found = campaigns.list_campaigns(conn, repo=repo, limit=limit)
        return [
            {"id": c.id, "repo": c.repo, "branch": c.branch, "commit": c.commit,
             "status": c.status.value, "created_at": iso(c.created_at)}
            for c in found
        ]  # fmt: skip

    @app.get("/api/v1/campaigns/{campaign_id}", dependencies=[auth.viewer], tags=["campaigns"])
    def show_campaign(campaign_id: str) -> dict[str, Any]:
        """A campaign's status (``finished`` tells a waiting client to stop) and its JSON
        summary as it stands now."""
        with services.database.transaction() as conn:
            record = campaigns.get_campaign(conn, campaign_id)
        document = campaign_summary(
            services.database, services.registry, record,
            report=f"/campaigns/{record.id}",
        )  # fmt: skip
        return {"finished": record.status.finished, "fail_on": record.fail_on.value,
                "summary": document}  # fmt: skip

    @app.post(
        "/api/v1/campaigns/{campaign_id}/cancel", dependencies=[auth.admin], tags=["campaigns"]
    )
    def cancel_campaign(campaign_id: str) -> dict[str, Any]:
        """Cancel a campaign and its unfinished jobs."""
        with services.database.transaction() as conn:
            campaigns.get_campaign(conn, campaign_id)
        cancelled = services.dispatcher.cancel(campaign_id)
        return {"id": campaign_id, "cancelled": cancelled}

    @app.get("/api/v1/campaigns/{campaign_id}/jobs", dependencies=[auth.viewer], tags=["campaigns"])
    def list_jobs(campaign_id: str) -> list[dict[str, Any]]:
        """A campaign's fuzz and triage jobs with their leases and outcomes."""
        with services.database.transaction() as conn:
            campaigns.get_campaign(conn, campaign_id)
            jobs = leases.campaign_jobs(conn, campaign_id)
        return [
            {
                "id": j.id, "queue": j.queue, "harness": j.harness, "state": j.state.value,
                "attempt": j.attempt, "max_attempts": j.max_attempts, "worker": j.lease_owner,
                "outcome": j.outcome, "outcome_attempt": j.outcome_attempt,
            }
            for j in jobs
        ]  # fmt: skip

    @app.get(
        "/api/v1/campaigns/{campaign_id}/report", dependencies=[auth.viewer],
        tags=["campaigns"], response_model=None,
    )  # fmt: skip
    def report(campaign_id: str, format: ReportFormat = ReportFormat.JSON) -> Response:
        """The campaign's report: the JSON summary, Markdown, SARIF 2.1.0 or the HTML page."""
        here = f"/campaigns/{campaign_id}"
        if format is ReportFormat.HTML:
            model = campaign_page(services.database, services.registry, campaign_id, report=here)
            return HTMLResponse(render("campaign.html", urls=SERVER_URLS, p=model))
        text = export(services.database, services.registry, campaign_id, format, report=here)
        media = {
            ReportFormat.JSON: "application/json",
            ReportFormat.MD: "text/markdown; charset=utf-8",
            ReportFormat.SARIF: "application/sarif+json",
        }[format]
        return Response(text, media_type=media)

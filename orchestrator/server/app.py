"""The HTTP API under ``/api/v1``: repositories and campaigns, for the CLI client.

Every route but ``/health`` needs a bearer token; reading needs any role, changing state
needs ``admin``. Bad input gets a 4xx whose message names the value, never a 500.
"""

# No "from __future__ import annotations": FastAPI resolves the dependency annotations
# (which close over local functions) at import time, so they must be real objects.
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from harnesses.errors import HarnessError
from orchestrator.dispatcher import Dispatcher
from orchestrator.errors import ConflictError, NotFoundError
from orchestrator.identity import new_id
from orchestrator.registry import Registry
from orchestrator.store import campaigns, repos, tokens
from orchestrator.store.campaigns import CampaignStatus, FailOn
from orchestrator.store.database import Database
from orchestrator.views import campaign_summary, collection_json, iso, repo_json
from workers.errors import WorkerError

logger = logging.getLogger(__name__)


@dataclass
class Services:
    """What the routes use, built once by ``fuzzorch server``."""

    database: Database
    registry: Registry
    dispatcher: Dispatcher
    clock: Callable[[], float]
    wake: Callable[[], None]


class RepoIn(BaseModel):
    """A repository to register."""

    source: str = Field(min_length=1, max_length=2048)
    name: str | None = Field(default=None, min_length=1, max_length=64)


class CampaignIn(BaseModel):
    """A campaign to start."""

    repo: str = Field(min_length=1, max_length=64)
    branch: str = Field(min_length=1, max_length=255)
    duration: float = Field(default=600.0, ge=5, le=7 * 24 * 3600)
    workers: int = Field(default=2, ge=1, le=1024)
    fail_on: FailOn = FailOn.OPEN
    priority: int = Field(default=0, ge=0, le=100)


def create_app(services: Services) -> FastAPI:
    """The FastAPI application."""
    app = FastAPI(title="fuzzorch", version="1", docs_url="/docs", redoc_url=None)

    async def caller(request: Request) -> tokens.TokenRecord:
        header = request.headers.get("authorization", "")
        scheme, _, secret = header.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "a bearer token is required",
                                headers={"WWW-Authenticate": "Bearer"})  # fmt: skip
        with services.database.transaction() as conn:
            record = tokens.verify_token(conn, secret.strip(), now=services.clock())
        if record is None:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "unknown or revoked token",
                                headers={"WWW-Authenticate": "Bearer"})  # fmt: skip
        return record

    def role(needed: tokens.Role) -> Callable[[tokens.TokenRecord], Awaitable[tokens.TokenRecord]]:
        async def check(
            who: Annotated[tokens.TokenRecord, Depends(caller)],
        ) -> tokens.TokenRecord:
            if not who.role.allows(needed):
                raise HTTPException(
                    status.HTTP_403_FORBIDDEN, f"role {who.role.value!r} may not do this"
                )
            return who

        return check

    viewer = Depends(role(tokens.Role.VIEWER))
    admin = Depends(role(tokens.Role.ADMIN))
    _error_handlers(app)

    @app.get("/health")
    def health() -> dict[str, str]:
        """Liveness and readiness: 200 once the server serves requests (no auth)."""
        return {"status": "ok"}

    _repo_routes(app, services, viewer=viewer, admin=admin)
    _campaign_routes(app, services, viewer=viewer, admin=admin, caller=caller)
    return app


def status_for(exc: Exception) -> int:
    """The HTTP status of one of our errors: the caller's input (4xx) or upstream (502)."""
    if isinstance(exc, ConflictError):
        return 409
    if isinstance(exc, LookupError):  # unknown repository, campaign, ref
        return 404
    if isinstance(exc, ValueError | HarnessError):  # refused source, ref, name, config
        return 400
    return 502  # git or storage failed


def _error_handlers(app: FastAPI) -> None:
    async def answer(_request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=status_for(exc))

    for kind in (ConflictError, LookupError, ValueError, HarnessError, WorkerError):
        app.add_exception_handler(kind, answer)


def _repo_routes(app: FastAPI, services: Services, *, viewer: Any, admin: Any) -> None:
    @app.post("/api/v1/repos", status_code=201, dependencies=[admin])
    def add_repo(body: RepoIn) -> dict[str, Any]:
        """Register a repository and discover its harnesses at its head."""
        registration = services.registry.add(body.source, name=body.name)
        return {
            **repo_json(registration.repo),
            **collection_json(registration.collection, include_skipped=True),
            "seeds": {"added": registration.seeds.added, "present": registration.seeds.present},
        }

    @app.get("/api/v1/repos", dependencies=[viewer])
    def list_repos() -> list[dict[str, Any]]:
        """Every registered repository."""
        with services.database.transaction() as conn:
            return [repo_json(r) for r in repos.list_repos(conn)]

    @app.get("/api/v1/repos/{name}", dependencies=[viewer])
    def show_repo(name: str) -> dict[str, Any]:
        """One repository with the harnesses at its head."""
        with services.database.transaction() as conn:
            record = repos.get_repo(conn, name)
        found = {}
        if record.head_commit:
            collection = services.registry.collection(name, record.head_commit)
            found = collection_json(collection, include_skipped=True)
        return {**repo_json(record), **found}


def _campaign_routes(
    app: FastAPI, services: Services, *, viewer: Any, admin: Any, caller: Any
) -> None:
    @app.post("/api/v1/campaigns", status_code=201, dependencies=[admin])
    def start_campaign(
        body: CampaignIn, who: Annotated[tokens.TokenRecord, Depends(caller)]
    ) -> dict[str, Any]:
        """Start a campaign on the head of a branch; answers at once with its id."""
        commit = services.registry.resolve(body.repo, body.branch)
        if not services.registry.collection(body.repo, commit).harnesses:
            raise NotFoundError(f"no harness in {body.repo!r} at {body.branch}@{commit[:12]}")
        with services.database.transaction() as conn:
            record = campaigns.create_campaign(
                conn, campaign_id=new_id("cmp"), repo=body.repo, branch=body.branch,
                commit=commit, duration_s=body.duration, workers=body.workers,
                fail_on=body.fail_on, priority=body.priority, now=services.clock(),
                created_by=who.name,
            )  # fmt: skip
        services.dispatcher.start(record.id)
        services.wake()
        return {"id": record.id, "commit": commit, "status": CampaignStatus.RUNNING.value}

    @app.get("/api/v1/campaigns", dependencies=[viewer])
    def list_all(repo: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """Campaigns, newest first."""
        if not 1 <= limit <= 500:
            raise ValueError(f"limit={limit!r} must be between 1 and 500")
        with services.database.transaction() as conn:
            found = campaigns.list_campaigns(conn, repo=repo, limit=limit)
        return [
            {"id": c.id, "repo": c.repo, "branch": c.branch, "commit": c.commit,
             "status": c.status.value, "created_at": iso(c.created_at)}
            for c in found
        ]  # fmt: skip

    @app.get("/api/v1/campaigns/{campaign_id}", dependencies=[viewer])
    def show_campaign(campaign_id: str) -> dict[str, Any]:
        """A campaign's status and its JSON summary as it stands now."""
        with services.database.transaction() as conn:
            record = campaigns.get_campaign(conn, campaign_id)
        document = campaign_summary(
            services.database, services.registry, record, report=f"/api/v1/campaigns/{record.id}"
        )
        return {"finished": record.status.finished, "fail_on": record.fail_on.value,
                "summary": document}  # fmt: skip

    @app.post("/api/v1/campaigns/{campaign_id}/cancel", dependencies=[admin])
    def cancel_campaign(campaign_id: str) -> dict[str, Any]:
        """Cancel a campaign and its unfinished jobs."""
        with services.database.transaction() as conn:
            campaigns.get_campaign(conn, campaign_id)
        cancelled = services.dispatcher.cancel(campaign_id)
        return {"id": campaign_id, "cancelled": cancelled}

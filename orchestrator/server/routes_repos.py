"""Routes: repositories, their harnesses, branch policies and webhook secrets."""

# No "from __future__ import annotations": FastAPI reads the annotations at runtime.
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, HTTPException, Query, status
from pydantic import BaseModel, Field

from orchestrator.secretbox import new_webhook_secret
from orchestrator.server.auth import Auth
from orchestrator.store import policies, repos, webhooks
from orchestrator.store.campaigns import FailOn
from orchestrator.views import collection_json, repo_json
from workers.gitrefs import validate_ref

if TYPE_CHECKING:
    from orchestrator.server.app import Services


class RepoIn(BaseModel):
    """A repository to register."""

    source: str = Field(min_length=1, max_length=2048)
    name: str | None = Field(default=None, min_length=1, max_length=64)


class PolicyIn(BaseModel):
    """A branch policy: pushes to matching branches start a campaign with these values."""

    branch: str = Field(min_length=1, max_length=255, description="glob, e.g. release/*")
    duration: float = Field(default=600.0, ge=5, le=7 * 24 * 3600)
    workers: int = Field(default=2, ge=1, le=1024)
    fail_on: FailOn = FailOn.OPEN
    priority: int = Field(default=0, ge=0, le=100)


def register(app: FastAPI, services: "Services", auth: Auth) -> None:
    """Add the routes to ``app``."""

    @app.post("/api/v1/repos", status_code=201, dependencies=[auth.admin], tags=["repos"])
    def add_repo(body: RepoIn) -> dict[str, Any]:
        """Register a repository and discover its harnesses at its head."""
        registration = services.registry.add(body.source, name=body.name)
        return {
            **repo_json(registration.repo),
            **collection_json(registration.collection, include_skipped=True),
            "seeds": {"added": registration.seeds.added, "present": registration.seeds.present},
        }

    @app.get("/api/v1/repos", dependencies=[auth.viewer], tags=["repos"])
    def list_repos() -> list[dict[str, Any]]:
        """Every registered repository."""
        with services.database.transaction() as conn:
            return [repo_json(r) for r in repos.list_repos(conn)]

    @app.get("/api/v1/repos/{name}", dependencies=[auth.viewer], tags=["repos"])
    def show_repo(name: str) -> dict[str, Any]:
        """One repository with the harnesses at its head."""
        with services.database.transaction() as conn:
            record = repos.get_repo(conn, name)
        found = {}
        if record.head_commit:
            collection = services.registry.collection(name, record.head_commit)
            found = collection_json(collection, include_skipped=True)
        return {**repo_json(record), **found}

    @app.get("/api/v1/repos/{name}/harnesses", dependencies=[auth.viewer], tags=["repos"])
    def list_harnesses(
        name: str,
        ref: str | None = Query(default=None, max_length=255),
        include_skipped: bool = Query(default=False, alias="all"),
    ) -> dict[str, Any]:
        """The harnesses at a branch, tag or commit (default: the default branch's head),
        and with ``all`` every skipped file with its reason."""
        commit = services.registry.resolve(name, validate_ref(ref) if ref else None)
        collection = services.registry.collection(name, commit)
        return {"repo": name, "commit": commit, **collection_json(collection, include_skipped)}

    @app.get("/api/v1/repos/{name}/policies", dependencies=[auth.viewer], tags=["policies"])
    def list_policies(name: str) -> list[dict[str, Any]]:
        """The repository's branch policies."""
        with services.database.transaction() as conn:
            repos.get_repo(conn, name)
            return [p.to_json() for p in policies.list_policies(conn, name)]

    @app.post(
        "/api/v1/repos/{name}/policies", status_code=201, dependencies=[auth.admin],
        tags=["policies"],
    )  # fmt: skip
    def add_policy(name: str, body: PolicyIn) -> dict[str, Any]:
        """Add a branch policy (one per glob)."""
        with services.database.transaction() as conn:
            repos.get_repo(conn, name)
            policy = policies.add_policy(
                conn, repo=name, branch_glob=body.branch, duration_s=body.duration,
                workers=body.workers, fail_on=body.fail_on, priority=body.priority,
                now=services.clock(),
            )  # fmt: skip
        return policy.to_json()

    @app.delete("/api/v1/repos/{name}/policies", dependencies=[auth.admin], tags=["policies"])
    def remove_policy(
        name: str, branch: str = Query(min_length=1, max_length=255)
    ) -> dict[str, Any]:
        """Remove the policy for a glob."""
        with services.database.transaction() as conn:
            policies.remove_policy(conn, name, branch)
        return {"repo": name, "branch": branch, "removed": True}

    @app.post("/api/v1/repos/{name}/secret", dependencies=[auth.admin], tags=["webhooks"])
    def new_secret(name: str) -> dict[str, Any]:
        """Generate the repository's webhook secret, replacing any earlier one; the answer
        is the only time it is shown."""
        box = services.secret_box
        if box is None:
            raise HTTPException(
                status.HTTP_409_CONFLICT,
                "webhook secrets need the server key: set FUZZORCH_SECRET_KEY on the server",
            )
        secret = new_webhook_secret()
        with services.database.transaction() as conn:
            repos.get_repo(conn, name)
            webhooks.set_secret(
                conn, name, box.seal(secret.encode(), context=name), now=services.clock()
            )
        return {"repo": name, "secret": secret}

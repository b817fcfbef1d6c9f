"""Routes: crash groups (list, show, status, merge, split) and testcase downloads."""

# No "from __future__ import annotations": FastAPI reads the annotations at runtime.
import enum
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from fastapi import FastAPI, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field

from harnesses.identity import harness_id
from orchestrator.errors import NotFoundError
from orchestrator.server.auth import Auth
from orchestrator.store import grouping
from orchestrator.store import triage as triage_store
from orchestrator.store.schema import crash_groups, crash_sightings
from workers.crashes import MAX_TESTCASE_BYTES

if TYPE_CHECKING:
    from orchestrator.server.app import Services


class GroupStatus(enum.StrEnum):
    """What a triager may set a group's status to."""

    OPEN = "open"
    WONTFIX = "wontfix"


class StatusIn(BaseModel):
    """A triager's status decision."""

    status: GroupStatus


class MergeIn(BaseModel):
    """Groups to mark as duplicates of the group in the path."""

    duplicates: list[str] = Field(min_length=1, max_length=100)


class Status(enum.StrEnum):
    """A group's status, for filtering."""

    OPEN = "open"
    FIXED = "fixed"
    FLAKY = "flaky"
    WONTFIX = "wontfix"
    DUPLICATE = "duplicate"


class Kind(enum.StrEnum):
    """A crash kind, for filtering."""

    EXCEPTION = "exception"
    TIMEOUT = "timeout"
    OOM = "oom"
    SIGNAL = "signal"
    EXIT = "exit"


def register(app: FastAPI, services: "Services", auth: Auth) -> None:
    """Add the routes to ``app``."""

    @app.get("/api/v1/crashes", dependencies=[auth.viewer], tags=["crashes"])
    def list_crashes(
        repo: str | None = Query(default=None, max_length=64),
        status: Status | None = None,
        kind: Kind | None = None,
        campaign: str | None = Query(default=None, max_length=64),
        limit: int = Query(default=100, ge=1, le=1000),
    ) -> list[dict[str, Any]]:
        """Crash groups, newest first, filtered by repository, status, kind or campaign."""
        query = sa.select(crash_groups).order_by(crash_groups.c.first_seen_at.desc()).limit(limit)
        if repo is not None:
            query = query.where(crash_groups.c.repo == repo)
        if status is not None:
            query = query.where(crash_groups.c.status == status.value)
        if kind is not None:
            query = query.where(crash_groups.c.kind == kind.value)
        if campaign is not None:
            seen = sa.select(crash_sightings.c.group_id).where(
                crash_sightings.c.campaign_id == campaign
            )
            query = query.where(crash_groups.c.id.in_(seen))
        with services.database.transaction() as conn:
            rows = conn.execute(query).all()
        return [
            {"id": r.id, "repo": r.repo, "title": r.title, "kind": r.kind,
             "exception_type": r.exception_type, "status": r.status, "harness": r.harness,
             "reliability": r.reliability, "signature": r.signature,
             "merged_into": r.merged_into}
            for r in rows
        ]  # fmt: skip

    @app.get("/api/v1/crashes/{group_id}", dependencies=[auth.viewer], tags=["crashes"])
    def show_crash(group_id: str) -> dict[str, Any]:
        """Everything known about a group: triage, status per branch, sightings, links."""
        with services.database.transaction() as conn:
            return grouping.group_detail(conn, group_id)

    @app.post("/api/v1/crashes/{group_id}/status", dependencies=[auth.triager], tags=["crashes"])
    def set_status(group_id: str, body: StatusIn) -> dict[str, Any]:
        """Mark a group wontfix (it stops gating), or open again."""
        with services.database.transaction() as conn:
            grouping.set_status(conn, group_id, body.status.value)
            return {"id": group_id, "status": grouping.get_group(conn, group_id).status}

    @app.post("/api/v1/crashes/{group_id}/merge", dependencies=[auth.triager], tags=["crashes"])
    def merge(group_id: str, body: MergeIn) -> dict[str, Any]:
        """Mark groups as duplicates of this one (this one carries the bug from now on)."""
        with services.database.transaction() as conn:
            merged = grouping.merge(conn, body.duplicates, group_id)
        return {"id": group_id, "merged": merged}

    @app.post("/api/v1/crashes/{group_id}/split", dependencies=[auth.triager], tags=["crashes"])
    def split(group_id: str) -> dict[str, Any]:
        """Undo a merge: the group stands on its own again."""
        with services.database.transaction() as conn:
            left = grouping.split(conn, group_id)
        return {"id": group_id, "split_from": left}

    @app.get(
        "/api/v1/crashes/{group_id}/testcase", dependencies=[auth.viewer], tags=["crashes"],
        response_class=Response,
    )  # fmt: skip
    def testcase(group_id: str, minimized: bool = False) -> Response:
        """The group's testcase (or minimized testcase) as a download, never rendered."""
        with services.database.transaction() as conn:
            group = triage_store.group_triage(conn, grouping.get_group(conn, group_id).id)
            prefix = f"crashes/{group.repo}/{harness_id(group.harness)}/"
            first = triage_store.first_testcase(conn, group_id, prefix=prefix)
            key = group.minimized_key if minimized else first
        if key is None:
            what = "minimized testcase yet" if minimized else "testcase of its harness"
            raise NotFoundError(f"crash group {group_id!r} has no {what}")
        data = services.objects.get(key, max_bytes=MAX_TESTCASE_BYTES)
        # The name is ours (the group id is ours too), never taken from a stored key.
        safe = "".join(c for c in group.id if c.isascii() and (c.isalnum() or c in "-_"))[:80]
        name = f"{'minimized' if minimized else 'testcase'}-{safe}.bin"
        return Response(
            data,
            media_type="application/octet-stream",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

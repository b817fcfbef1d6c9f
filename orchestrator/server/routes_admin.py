"""Routes: web UI login sessions, API tokens, the audit log and Prometheus metrics."""

# No "from __future__ import annotations": FastAPI reads the annotations at runtime.
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response, status
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field

from orchestrator.metrics import queue_depth, render
from orchestrator.server.auth import SESSION_COOKIE, Auth, Principal, same_origin
from orchestrator.store import audit, sessions, tokens
from orchestrator.store.metrics import snapshot
from orchestrator.summary import iso

if TYPE_CHECKING:
    from orchestrator.server.app import Services


class LoginIn(BaseModel):
    """A login: an API token, exchanged for a session cookie."""

    token: str = Field(min_length=1, max_length=256)


class TokenIn(BaseModel):
    """A token to create."""

    role: tokens.Role
    name: str = Field(default="api", min_length=1, max_length=128)


def register(app: FastAPI, services: "Services", auth: Auth) -> None:
    """Add the routes to ``app``."""

    @app.post("/api/v1/session", tags=["session"])
    def login(body: LoginIn, request: Request, response: Response) -> dict[str, Any]:
        """Log in with an API token: sets an HttpOnly, SameSite=Strict session cookie and
        returns the CSRF token that state-changing calls through the session must carry."""
        if not same_origin(request):
            request.state.actor = "login"
            raise HTTPException(status.HTTP_403_FORBIDDEN, "a login from another site was refused")
        with services.database.transaction() as conn:
            opened = sessions.open_session(conn, body.token, now=services.clock())
        if opened is None:
            request.state.actor = "login"
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "unknown or revoked token")
        secret, session = opened
        request.state.actor = session.token.name
        response.set_cookie(
            SESSION_COOKIE, secret, max_age=int(session.expires_at - services.clock()),
            httponly=True, samesite="strict", secure=services.secure_cookies, path="/",
        )  # fmt: skip
        return {"name": session.token.name, "role": session.token.role.value,
                "csrf_token": session.csrf, "expires_at": iso(session.expires_at)}  # fmt: skip

    @app.get("/api/v1/session", tags=["session"])
    def whoami(who: Annotated[Principal, Depends(auth.require_viewer)]) -> dict[str, Any]:
        """Who is calling (and, for a session, its CSRF token)."""
        return {"name": who.name, "role": who.role.value,
                "csrf_token": who.session.csrf if who.session else None}  # fmt: skip

    @app.delete("/api/v1/session", tags=["session"])
    def logout(
        who: Annotated[Principal, Depends(auth.require_viewer)], response: Response
    ) -> dict[str, Any]:
        """Log out: the session ends and its cookie is cleared."""
        if who.session is not None:
            with services.database.transaction() as conn:
                sessions.close_session(conn, who.session.id)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return {"logged_out": who.session is not None}

    @app.get("/api/v1/tokens", dependencies=[auth.admin], tags=["admin"])
    def list_tokens() -> list[dict[str, Any]]:
        """Every token (never a secret)."""
        with services.database.transaction() as conn:
            found = tokens.list_tokens(conn)
        return [
            {"id": t.id, "name": t.name, "role": t.role.value, "created_at": iso(t.created_at),
             "last_used_at": iso(t.last_used_at), "revoked_at": iso(t.revoked_at)}
            for t in found
        ]  # fmt: skip

    @app.post("/api/v1/tokens", status_code=201, dependencies=[auth.admin], tags=["admin"])
    def create_token(body: TokenIn) -> dict[str, Any]:
        """Create a token; the answer is the only time its secret is shown."""
        with services.database.transaction() as conn:
            record, secret = tokens.create_token(
                conn, role=body.role, name=body.name, now=services.clock()
            )
        return {"id": record.id, "name": record.name, "role": record.role.value, "token": secret}

    @app.delete("/api/v1/tokens/{token_id}", dependencies=[auth.admin], tags=["admin"])
    def revoke_token(token_id: str) -> dict[str, Any]:
        """Revoke a token (its sessions end with it)."""
        with services.database.transaction() as conn:
            tokens.revoke_token(conn, token_id, now=services.clock())
        return {"id": token_id, "revoked": True}

    @app.get("/api/v1/audit", dependencies=[auth.admin], tags=["admin"])
    def audit_log(
        limit: int = Query(default=100, ge=1, le=1000),
        before: int | None = Query(default=None, ge=1, le=2**62),
    ) -> list[dict[str, Any]]:
        """State-changing calls, newest first; page with ``before`` (an entry id)."""
        with services.database.transaction() as conn:
            found = audit.entries(conn, limit=limit, before_id=before)
        return [
            {"id": e.id, "at": iso(e.at), "actor": e.actor, "action": e.action,
             "target": e.target, "detail": dict(e.detail), "remote_addr": e.remote_addr}
            for e in found
        ]  # fmt: skip

    @app.get(
        "/metrics", dependencies=[auth.viewer], tags=["service"],
        response_class=PlainTextResponse,
    )  # fmt: skip
    def metrics() -> PlainTextResponse:
        """Prometheus metrics: executions, jobs by state, queue depth, crash groups."""
        with services.database.transaction() as conn:
            taken = snapshot(conn)
        return PlainTextResponse(
            render(taken, queue_depth(services.broker)),
            media_type="text/plain; version=0.0.4; charset=utf-8",
        )

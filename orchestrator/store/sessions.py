"""Web UI sessions: a login with a token opens one; the cookie carries a random secret.

The store keeps the secret's sha256 and a CSRF token for the session's forms. A session
acts with its token's role and ends with it: a revoked token's sessions stop working at once.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

import sqlalchemy as sa

from orchestrator.store.schema import api_tokens, sessions
from orchestrator.store.tokens import Role, TokenRecord, verify_token

SESSION_SECONDS = 12 * 3600


@dataclass(frozen=True)
class Session:
    """A live session and the token it acts for."""

    id: str
    csrf: str
    token: TokenRecord
    expires_at: float


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def open_session(conn: sa.Connection, token: str, *, now: float) -> tuple[str, Session] | None:
    """Log in with an API token: the cookie secret and the session, or None if refused."""
    record = verify_token(conn, token, now=now)
    if record is None:
        return None
    secret = secrets.token_urlsafe(32)
    session = Session(_digest(secret), secrets.token_urlsafe(32), record, now + SESSION_SECONDS)
    conn.execute(
        sessions.insert().values(
            id=session.id, token_id=record.id, csrf=session.csrf, created_at=now,
            expires_at=session.expires_at,
        )
    )  # fmt: skip
    conn.execute(sessions.delete().where(sessions.c.expires_at < now))  # sweep old ones
    return secret, session


def find_session(conn: sa.Connection, secret: str, *, now: float) -> Session | None:
    """The live session a cookie secret opens, or None."""
    if not secret or len(secret) > 256:
        return None
    row = conn.execute(
        sa.select(sessions, api_tokens.c.name, api_tokens.c.role, api_tokens.c.created_at.label(
            "token_created_at"), api_tokens.c.last_used_at, api_tokens.c.revoked_at)
        .join(api_tokens, api_tokens.c.id == sessions.c.token_id)
        .where(sessions.c.id == _digest(secret), sessions.c.expires_at > now,
               api_tokens.c.revoked_at.is_(None))
    ).one_or_none()  # fmt: skip
    if row is None:
        return None
    token = TokenRecord(
        id=row.token_id,
        name=row.name,
        role=Role(row.role),
        created_at=row.token_created_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )
    return Session(row.id, row.csrf, token, row.expires_at)


def close_session(conn: sa.Connection, session_id: str) -> None:
    """Log out."""
    conn.execute(sessions.delete().where(sessions.c.id == session_id))

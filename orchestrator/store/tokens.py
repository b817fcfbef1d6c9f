"""API tokens: random secrets shown once, stored only as their sha256."""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from orchestrator.errors import NotFoundError
from orchestrator.store.schema import api_tokens

TOKEN_PREFIX = "fzo_"  # noqa: S105 - a public prefix that makes leaked tokens greppable


class Role(enum.StrEnum):
    """What a token may do; each role includes the ones before it."""

    VIEWER = "viewer"
    TRIAGER = "triager"
    ADMIN = "admin"

    @classmethod
    def parse(cls, value: str) -> Role:
        """The role named ``value``; ValueError naming it otherwise."""
        try:
            return cls(value)
        except ValueError:
            names = ", ".join(r.value for r in cls)
            raise ValueError(f"Invalid role {value!r}: expected one of {names}") from None

    def allows(self, needed: Role) -> bool:
        """True when this role may do what ``needed`` may."""
        order = list(Role)
        return order.index(self) >= order.index(needed)


@dataclass(frozen=True)
class TokenRecord:
    """A token as stored (never the secret itself)."""

    id: str
    name: str
    role: Role
    created_at: float
    last_used_at: float | None
    revoked_at: float | None


def hash_token(token: str) -> str:
    """The stored form of a token.

    Tokens carry 256 random bits, so a fast hash is enough: there is nothing to brute-force.
    """
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_token(
    conn: sa.Connection, *, role: Role, name: str, now: float
) -> tuple[TokenRecord, str]:
    """Create a token; return its record and the secret, which is not stored anywhere."""
    if not name or len(name) > 128 or not name.isprintable():
        raise ValueError(f"Invalid token name {name!r}: 1-128 printable characters")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token_id = secrets.token_hex(8)
    conn.execute(
        api_tokens.insert().values(
            id=token_id, name=name, role=role.value, token_hash=hash_token(secret), created_at=now
        )
    )
    return TokenRecord(token_id, name, role, now, None, None), secret


def verify_token(conn: sa.Connection, secret: str, *, now: float) -> TokenRecord | None:
    """The live token whose secret this is, marked as used; None for unknown or revoked."""
    row = conn.execute(
        sa.select(api_tokens).where(
            api_tokens.c.token_hash == hash_token(secret), api_tokens.c.revoked_at.is_(None)
        )
    ).first()
    if row is None:
        return None
    conn.execute(api_tokens.update().where(api_tokens.c.id == row.id).values(last_used_at=now))
    return dataclasses.replace(_token(row), last_used_at=now)


def revoke_token(conn: sa.Connection, token_id: str, *, now: float) -> None:
    """Revoke a token; NotFoundError naming it if there is no such live token."""
    result = conn.execute(
        api_tokens.update()
        .where(api_tokens.c.id == token_id, api_tokens.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    if result.rowcount != 1:
        raise NotFoundError(f"no live token with id {token_id!r}")


def list_tokens(conn: sa.Connection) -> list[TokenRecord]:
    """Every token, oldest first."""
    query = sa.select(api_tokens).order_by(api_tokens.c.created_at, api_tokens.c.id)
    return [_token(row) for row in conn.execute(query)]


def _token(row: sa.Row[Any]) -> TokenRecord:
    return TokenRecord(
        id=row.id,
        name=row.name,
        role=Role(row.role),
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )

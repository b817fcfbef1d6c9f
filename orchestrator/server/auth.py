"""Who is calling: a bearer token, or a web UI session cookie with CSRF protection.

Every route but ``/health`` and the API docs depends on one of ``Auth.viewer``,
``Auth.triager`` or ``Auth.admin``. A session (``fuzzorch_session`` cookie, HttpOnly,
SameSite=Strict) acts with its token's role; a state-changing call through a session must
also carry the session's CSRF token (``X-CSRF-Token`` header, or a ``csrf_token`` form
field), so another site cannot make a logged-in browser act.
"""

# No "from __future__ import annotations": FastAPI reads dependency annotations at runtime.
import hmac
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status

from orchestrator.store import sessions, tokens
from orchestrator.store.database import Database

SESSION_COOKIE = "fuzzorch_session"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_FORM_BYTES = 64 * 1024


@dataclass(frozen=True)
class Principal:
    """An authenticated caller."""

    name: str
    role: tokens.Role
    token_id: str
    session: sessions.Session | None = None


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, message, headers={"WWW-Authenticate": "Bearer"}
    )


class Auth:
    """The authentication dependencies of one app."""

    def __init__(self, database: Database, clock: Callable[[], float]) -> None:
        self.database = database
        self.clock = clock
        self.require_viewer = self.require(tokens.Role.VIEWER)
        self.require_triager = self.require(tokens.Role.TRIAGER)
        self.require_admin = self.require(tokens.Role.ADMIN)
        # For ``dependencies=[...]`` where the route does not need the caller itself.
        self.viewer = Depends(self.require_viewer)
        self.triager = Depends(self.require_triager)
        self.admin = Depends(self.require_admin)

    async def principal(self, request: Request) -> Principal:
        """The caller, from the bearer token or else the session cookie; 401 otherwise."""
        known: Any = getattr(request.state, "principal", None)
        if isinstance(known, Principal) and known.session is None:
            return known  # the bearer token was checked before the body was read
        header = request.headers.get("authorization")
        if header is not None:
            scheme, _, secret = header.partition(" ")
            if scheme.lower() != "bearer" or not secret.strip():
                raise _unauthorized("the Authorization header must be 'Bearer <token>'")
            with self.database.transaction() as conn:
                record = tokens.verify_token(conn, secret.strip(), now=self.clock())
            if record is None:
                raise _unauthorized("unknown or revoked token")
            found = Principal(record.name, record.role, record.id)
        else:
            cookie = request.cookies.get(SESSION_COOKIE)
            if not cookie:
                raise _unauthorized("a bearer token (or a web UI session) is required")
            with self.database.transaction() as conn:
                session = sessions.find_session(conn, cookie, now=self.clock())
            if session is None:
                raise _unauthorized("the session has expired or was closed: log in again")
            if request.method not in SAFE_METHODS:
                await _check_csrf(request, session)
            found = Principal(session.token.name, session.token.role, session.token.id, session)
        request.state.principal = found
        return found

    def require(self, needed: tokens.Role) -> Callable[..., Awaitable[Principal]]:
        """A dependency that admits callers whose role includes ``needed``."""

        async def check(
            who: Annotated[Principal, Depends(self.principal)],
        ) -> Principal:
            if not who.role.allows(needed):
                raise HTTPException(
                    status.HTTP_403_FORBIDDEN,
                    f"role {who.role.value!r} may not do this (needs {needed.value!r})",
                )
            return who

        return check


def same_origin(request: Request) -> bool:
    """False for a browser request another site made (login CSRF, or a session's change):
    ``Sec-Fetch-Site`` says so, or ``Origin`` names another host."""
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    if origin is None:
        return True  # not a browser's cross-site request (browsers send Origin on POST)
    return urllib.parse.urlsplit(origin).netloc == request.headers.get("host", "")


async def _check_csrf(request: Request, session: sessions.Session) -> None:
    if not same_origin(request):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "a request from another site was refused")
    given = request.headers.get(CSRF_HEADER)
    content_type = request.headers.get("content-type", "")
    if given is None and content_type.startswith("application/x-www-form-urlencoded"):
        body = await request.body()  # bounded by the app's body limit for forms
        if len(body) <= MAX_FORM_BYTES:
            try:
                fields = urllib.parse.parse_qs(body.decode("utf-8", "replace"), max_num_fields=100)
            except ValueError:  # more fields than any of our forms has
                fields = {}
            values = fields.get("csrf_token") or []
            given = values[0] if values else None
    if not given or not hmac.compare_digest(given.encode(), session.csrf.encode()):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, "missing or wrong CSRF token for this session"
        )


def check_bearer(database: Database, clock: Callable[[], float], request: Request) -> str | None:
    """Before any route reads a body: why an API request is refused as unauthenticated, or
    None (its bearer token is valid and noted on the request, or it has a session cookie,
    which its route checks with the CSRF token)."""
    header = request.headers.get("authorization")
    if header is None:
        cookie = request.cookies.get(SESSION_COOKIE)
        if not cookie:
            return "a bearer token (or a web UI session) is required"
        with database.transaction() as conn:
            live = sessions.find_session(conn, cookie, now=clock())
        # A live session passes; its route checks the CSRF token of a state change.
        return None if live is not None else "the session has expired or was closed: log in again"
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        return "the Authorization header must be 'Bearer <token>'"
    with database.transaction() as conn:
        record = tokens.verify_token(conn, secret.strip(), now=clock())
    if record is None:
        return "unknown or revoked token"
    request.state.principal = Principal(record.name, record.role, record.id)
    return None


def actor_of(request: Request) -> str:
    """Who made a request, for the audit log: the token's name, a webhook's forge, or
    ``anonymous`` when the request was refused before anyone was identified."""
    actor: Any = getattr(request.state, "actor", None)
    if isinstance(actor, str):
        return actor
    principal: Any = getattr(request.state, "principal", None)
    return principal.name if isinstance(principal, Principal) else "anonymous"

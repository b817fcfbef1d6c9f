"""The HTTP API under ``/api/v1``, for the CLI client, the web UI and forges' webhooks.

Every route but ``/health`` and the API docs needs a caller (``server.auth``): viewers read,
triagers also change crash groups, admins everything. Bad input gets a 4xx whose message
names the value, never a 500. Every state-changing call is written to the audit log (who,
what, when, from where, and how it ended), refused ones included.
"""

# No "from __future__ import annotations": FastAPI resolves the dependency annotations
# (which close over local functions) at import time, so they must be real objects.
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import dramatiq
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from harnesses.errors import HarnessError
from orchestrator.dispatcher import Dispatcher
from orchestrator.errors import ConflictError
from orchestrator.registry import Registry
from orchestrator.secretbox import SecretBox
from orchestrator.server import (
    routes_admin,
    routes_campaigns,
    routes_corpus,
    routes_crashes,
    routes_repos,
    routes_webhooks,
    ui,
)
from orchestrator.server.auth import Auth, actor_of, check_bearer
from orchestrator.server.routes_corpus import LIMITS as CORPUS_LIMITS
from orchestrator.store import audit
from orchestrator.store.database import Database
from workers.errors import WorkerError
from workers.storage.base import ObjectStore

logger = logging.getLogger(__name__)

# The API answers JSON, files and the UI's pages: none of them needs a script from anywhere.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    # same-origin, not no-referrer: with no-referrer a browser sends "Origin: null" on
    # its own forms, and the login could not tell them from another site's.
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}
# How much of a request body is read, by route: forms are small, webhooks 1 MiB, corpus
# uploads have their own (larger) limit; anything else is JSON of a few fields.
FORM_BODY_BYTES = 16 * 1024
DEFAULT_BODY_BYTES = 1024 * 1024
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass
class Services:
    """What the routes use, built once by ``fuzzorch server``."""

    database: Database
    registry: Registry
    dispatcher: Dispatcher
    clock: Callable[[], float]
    wake: Callable[[], None]
    objects: ObjectStore
    broker: dramatiq.Broker
    secret_box: SecretBox | None = None  # None: no FUZZORCH_SECRET_KEY, no webhook secrets
    secure_cookies: bool = False  # set the Secure flag (behind HTTPS)


def create_app(services: Services) -> FastAPI:
    """The FastAPI application."""
    # No /docs: its page runs a CDN's script on this origin. The schema is /openapi.json.
    app = FastAPI(title="fuzzorch", version="1", docs_url=None, redoc_url=None)
    auth = Auth(services.database, services.clock)
    _error_handlers(app)
    _middleware(app, services)

    @app.get("/health", tags=["service"])
    def health() -> dict[str, str]:
        """Liveness and readiness: 200 once the server serves requests (no auth)."""
        return {"status": "ok"}

    routes_repos.register(app, services, auth)
    routes_campaigns.register(app, services, auth)
    routes_crashes.register(app, services, auth)
    routes_corpus.register(app, services, auth)
    routes_admin.register(app, services, auth)
    routes_webhooks.register(app, services)
    ui.register(app, services, auth)
    app.add_middleware(LimitedBody)
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


def _middleware(app: FastAPI, services: Services) -> None:
    @app.middleware("http")
    async def audit_and_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        try:
            limit = _body_limit(request.url.path)
            declared = request.headers.get("content-length", "")
            if request.method in UNSAFE_METHODS and declared.isdigit() and int(declared) > limit:
                return JSONResponse(
                    {"detail": f"the request body is larger than {limit} bytes"}, status_code=413
                )
            request.scope["fuzzorch.body_limit"] = limit
            refused = None
            if _needs_caller(request):
                refused = await run_in_threadpool(
                    check_bearer, services.database, services.clock, request
                )
            if refused is not None:
                response: Response = JSONResponse(
                    {"detail": refused}, status_code=401, headers={"WWW-Authenticate": "Bearer"}
                )
            else:
                response = await call_next(request)
        except BodyTooLarge as exc:
            response = JSONResponse({"detail": str(exc)}, status_code=413)
        except Exception:
            logger.exception("unhandled error on %s %s", request.method, request.url.path)
            response = JSONResponse({"detail": "internal error"}, status_code=500)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        # Pages and answers hold one-time secrets and private data: never cached.
        response.headers.setdefault("Cache-Control", "no-store")
        if request.method in UNSAFE_METHODS and "route" in request.scope:
            # Calls to routes that exist (a flood of 404s writes nothing).
            await run_in_threadpool(_audit, services, request, response.status_code)
        return response


def _body_limit(path: str) -> int:
    if path.startswith("/api/v1/repos/") and path.endswith("/corpus"):
        return CORPUS_LIMITS.max_archive_bytes
    if path.startswith("/api/v1/"):
        return DEFAULT_BODY_BYTES
    return FORM_BODY_BYTES  # the UI's forms


class BodyTooLarge(Exception):
    """A request body grew past its route's limit while it was read."""


class LimitedBody:
    """ASGI middleware: a body is counted as it arrives and cut off at its route's limit
    (a missing or lying Content-Length does not get past it)."""

    def __init__(self, app: Callable[..., Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = _body_limit(scope.get("path", ""))
        seen = 0

        async def counted() -> dict[str, Any]:
            nonlocal seen
            message: dict[str, Any] = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(f"the request body is larger than {limit} bytes")
            return message

        await self.app(scope, counted, send)


# API routes that authenticate otherwise: the login itself, and forges by signature.
_OPEN_API = ("/api/v1/webhooks/",)


def _needs_caller(request: Request) -> bool:
    """An API request whose caller is checked before its route reads the body (FastAPI
    parses a JSON body before any dependency runs)."""
    path = request.url.path
    if not path.startswith("/api/v1/") or path.startswith(_OPEN_API):
        return False
    return not (path == "/api/v1/session" and request.method == "POST")


def _audit(services: Services, request: Request, status_code: int) -> None:
    route = request.scope.get("route")
    template = getattr(route, "path", request.url.path)
    entry = audit.AuditEntry(
        actor=actor_of(request)[:128],
        action=f"{request.method} {template}"[:64],
        at=services.clock(),
        target=request.url.path[:1024],
        detail={"status": status_code, **dict(getattr(request.state, "audit", {}))},
        remote_addr=request.client.host[:64] if request.client else None,
    )
    try:
        with services.database.transaction() as conn:
            audit.append(conn, entry)
    except Exception:  # the answer has gone out; say loudly that its record did not
        logger.exception("could not write the audit entry for %s", entry.action)

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
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
# The interactive docs load their script and styles from a CDN; only they get this policy.
DOCS_POLICY = (
    "default-src 'none'; script-src 'self' https://cdn.jsdelivr.net 'unsafe-inline'; "
    "style-src 'self' https://cdn.jsdelivr.net; img-src 'self' data: https://fastapi.tiangolo.com; "
    "connect-src 'self'; frame-ancestors 'none'"
)
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
    app = FastAPI(title="fuzzorch", version="1", docs_url="/docs", redoc_url=None)
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
        except Exception:
            logger.exception("unhandled error on %s %s", request.method, request.url.path)
            response = JSONResponse({"detail": "internal error"}, status_code=500)
        docs = request.url.path in ("/docs", "/docs/oauth2-redirect")
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if docs:
            response.headers["Content-Security-Policy"] = DOCS_POLICY
        if request.method in UNSAFE_METHODS:
            await run_in_threadpool(_audit, services, request, response.status_code)
        return response


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

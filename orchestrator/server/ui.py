"""The web UI: dashboard, repository, campaign and crash pages, and a triager's actions.

Pages are the report templates rendered with the server's links. Logging in exchanges an
API token for a session cookie (``server.auth``); every form carries the session's CSRF
token. Pages have no script at all (the CSP forbids it): a running campaign's page refreshes
itself with a ``<meta http-equiv="refresh">``.
"""

# No "from __future__ import annotations": FastAPI reads the annotations at runtime.
import logging
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, HTTPException, Request, status
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from orchestrator.errors import FuzzorchError
from orchestrator.reports.html import SERVER_URLS, TEMPLATES, render
from orchestrator.server.auth import SESSION_COOKIE, Auth, Principal, same_origin
from orchestrator.store import grouping, sessions, tokens
from orchestrator.ui.model import campaign_page, crash_page, dashboard, repo_page

if TYPE_CHECKING:
    from orchestrator.server.app import Services

logger = logging.getLogger(__name__)

MAX_FORM_BYTES = 16 * 1024
REFRESH_S = 5


def register(app: FastAPI, services: "Services", auth: Auth) -> None:
    """Add the pages to ``app``."""

    async def who(request: Request) -> Principal | None:
        try:
            return await auth.principal(request)
        except HTTPException as exc:
            if exc.status_code == status.HTTP_401_UNAUTHORIZED:
                return None
            raise

    def page(template: str, principal: Principal, **context: Any) -> HTMLResponse:
        csrf = principal.session.csrf if principal.session else None
        return HTMLResponse(
            render(template, urls=SERVER_URLS, who={"name": principal.name,
                   "role": principal.role.value}, csrf=csrf, **context)
        )  # fmt: skip

    def to_login() -> RedirectResponse:
        return RedirectResponse("/login", status_code=status.HTTP_303_SEE_OTHER)

    @app.get("/static/style.css", include_in_schema=False)
    def style() -> FileResponse:
        return FileResponse(TEMPLATES / "style.css", media_type="text/css")

    @app.get("/login", include_in_schema=False, response_class=HTMLResponse)
    def login_page(error: str | None = None) -> HTMLResponse:
        shown = "That token is unknown or revoked." if error else None
        return HTMLResponse(render("login.html", urls=SERVER_URLS, error=shown))

    @app.post("/login", include_in_schema=False, response_model=None)
    async def login(request: Request) -> Response:
        if not same_origin(request):
            request.state.actor = "login"
            raise HTTPException(status.HTTP_403_FORBIDDEN, "a login from another site was refused")
        fields = await _form(request)
        token = (fields.get("token") or "").strip()
        with services.database.transaction() as conn:
            opened = sessions.open_session(conn, token, now=services.clock()) if token else None
        if opened is None:
            request.state.actor = "login"
            return RedirectResponse("/login?error=1", status_code=status.HTTP_303_SEE_OTHER)
        secret, session = opened
        request.state.actor = session.token.name
        response = RedirectResponse("/", status_code=status.HTTP_303_SEE_OTHER)
        response.set_cookie(
            SESSION_COOKIE, secret, max_age=int(session.expires_at - services.clock()),
            httponly=True, samesite="strict", secure=services.secure_cookies, path="/",
        )  # fmt: skip
        return response

    @app.post("/logout", include_in_schema=False, response_model=None)
    async def logout(request: Request) -> Response:
        principal = await who(request)
        if principal is not None and principal.session is not None:
            with services.database.transaction() as conn:
                sessions.close_session(conn, principal.session.id)
        response = to_login()
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    _pages(app, services, page, who, to_login)


def _pages(
    app: FastAPI,
    services: "Services",
    page: Callable[..., HTMLResponse],
    who: Callable[[Request], Awaitable[Principal | None]],
    to_login: Callable[[], RedirectResponse],
) -> None:
    @app.get("/", include_in_schema=False, response_model=None)
    async def home(request: Request) -> Response:
        principal = await who(request)
        if principal is None:
            return to_login()
        return page("dashboard.html", principal, d=dashboard(services.database))

    @app.get("/repos/{name}", include_in_schema=False, response_model=None)
    async def repository(name: str, request: Request) -> Response:
        principal = await who(request)
        if principal is None:
            return to_login()
        return page("repo.html", principal, r=repo_page(services.database, services.registry, name))

    @app.get("/campaigns/{campaign_id}", include_in_schema=False, response_model=None)
    async def campaign(campaign_id: str, request: Request) -> Response:
        principal = await who(request)
        if principal is None:
            return to_login()
        model = campaign_page(services.database, services.registry, campaign_id, report=None)
        refresh = None if model["finished"] else REFRESH_S
        return page("campaign.html", principal, p=model, refresh=refresh)

    @app.get("/crashes/{group_id}", include_in_schema=False, response_model=None)
    async def crash(group_id: str, request: Request, notice: str | None = None) -> Response:
        principal = await who(request)
        if principal is None:
            return to_login()
        model = crash_page(services.database, services.registry, services.objects, group_id)
        actions = principal.role.allows(tokens.Role.TRIAGER) and principal.session is not None
        # Notices are fixed texts chosen by code: a link cannot put words in the page's mouth.
        return page("crash.html", principal, p=model, actions=actions,
                    notice=NOTICES.get(notice or ""))  # fmt: skip

    @app.post("/crashes/{group_id}/{action}", include_in_schema=False, response_model=None)
    async def crash_action(group_id: str, action: str, request: Request) -> Response:
        principal = await who(request)  # a session: its CSRF token was checked
        if principal is None:
            return to_login()
        if not principal.role.allows(tokens.Role.TRIAGER):
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"role {principal.role.value!r} "
                                "may not change crash groups (needs 'triager')")  # fmt: skip
        if action not in ACTIONS:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no action {action!r}")
        fields = await _form(request)
        try:
            with services.database.transaction() as conn:
                notice = _apply(conn, group_id, action, fields)
        except (FuzzorchError, ValueError, LookupError) as exc:
            logger.info("crash %s: %s refused: %s", group_id, action, exc)
            notice = "failed"
        target = f"/crashes/{urllib.parse.quote(group_id, safe='')}?" + urllib.parse.urlencode(
            {"notice": notice}
        )
        return RedirectResponse(target, status_code=status.HTTP_303_SEE_OTHER)


ACTIONS = ("status", "merge", "split")
NOTICES = {
    "open": "Status saved: open.",
    "wontfix": "Status saved: wontfix.",
    "flaky": "Status saved: open (it is flaky).",
    "merged": "Merged into this group.",
    "split": "Split from the group it was merged into.",
    "failed": "Not done: the group or the duplicate's id was not accepted.",
}


def _apply(conn: Any, group_id: str, action: str, fields: dict[str, str]) -> str:
    """Do a triager's action; the code of the notice to show."""
    if action == "status":
        grouping.set_status(conn, group_id, fields.get("status", ""))
        return str(grouping.get_group(conn, group_id).status)
    if action == "merge":
        grouping.merge(conn, [fields.get("duplicate", "").strip()], group_id)
        return "merged"
    grouping.split(conn, group_id)
    return "split"


async def _form(request: Request) -> dict[str, str]:
    """A urlencoded form's fields (first value each), bounded."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, "the form is too large")
    try:
        parsed = urllib.parse.parse_qs(body.decode("utf-8", "replace"), max_num_fields=20)
    except ValueError:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "malformed form") from None
    return {name: values[0] for name, values in parsed.items() if values}

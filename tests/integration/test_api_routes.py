"""Every route of the API is authenticated and role-checked, checked against one explicit table.

``ROUTES`` names every route the app serves with the role it needs. A route added to the app
but not to the table fails ``test_the_table_names_every_route_and_only_those``, so no route
can skip the checks below; a route removed from the app fails it too, so the table cannot go
stale. The web UI's pages (``PAGES``) need the same roles but send a caller without
credentials to the login page instead of answering 401. The webhooks are public to the token
check but authenticated by their signature: they must refuse an unsigned delivery with a 4xx,
never act on it or acknowledge it with a 2xx.

SQLite only: what is checked here is the routing and the auth layer, not the store.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.routing import Route

from orchestrator.server.app import create_app
from orchestrator.store.database import Database
from orchestrator.store.tokens import Role
from tests.support import fixture_repos
from tests.support.api import Api, running_api

PUBLIC = "public"

ROUTES: dict[tuple[str, str], str] = {
    # service and API docs
    ("GET", "/health"): PUBLIC,
    ("GET", "/openapi.json"): PUBLIC,
    ("GET", "/metrics"): "viewer",
    # repositories, policies, webhook secrets, corpus
    ("POST", "/api/v1/repos"): "admin",
    ("GET", "/api/v1/repos"): "viewer",
    ("GET", "/api/v1/repos/{name}"): "viewer",
    ("GET", "/api/v1/repos/{name}/harnesses"): "viewer",
    ("GET", "/api/v1/repos/{name}/policies"): "viewer",
    ("POST", "/api/v1/repos/{name}/policies"): "admin",
    ("DELETE", "/api/v1/repos/{name}/policies"): "admin",
    ("POST", "/api/v1/repos/{name}/secret"): "admin",
    ("GET", "/api/v1/repos/{name}/corpus"): "viewer",
    ("POST", "/api/v1/repos/{name}/corpus"): "admin",
    # campaigns
    ("POST", "/api/v1/campaigns"): "admin",
    ("GET", "/api/v1/campaigns"): "viewer",
    ("GET", "/api/v1/campaigns/{campaign_id}"): "viewer",
    ("POST", "/api/v1/campaigns/{campaign_id}/cancel"): "admin",
    ("GET", "/api/v1/campaigns/{campaign_id}/jobs"): "viewer",
    ("GET", "/api/v1/campaigns/{campaign_id}/report"): "viewer",
    # crash groups
    ("GET", "/api/v1/crashes"): "viewer",
    ("GET", "/api/v1/crashes/{group_id}"): "viewer",
    ("POST", "/api/v1/crashes/{group_id}/status"): "triager",
    ("POST", "/api/v1/crashes/{group_id}/merge"): "triager",
    ("POST", "/api/v1/crashes/{group_id}/split"): "triager",
    ("GET", "/api/v1/crashes/{group_id}/testcase"): "viewer",
    # sessions (login is how a caller gets credentials), tokens, audit log
    ("POST", "/api/v1/session"): PUBLIC,
    ("GET", "/api/v1/session"): "viewer",
    ("DELETE", "/api/v1/session"): "viewer",
    ("GET", "/api/v1/tokens"): "admin",
    ("POST", "/api/v1/tokens"): "admin",
    ("DELETE", "/api/v1/tokens/{token_id}"): "admin",
    ("GET", "/api/v1/audit"): "admin",
    # forges' webhooks: authenticated by the repository's secret, not by a token
    ("POST", "/api/v1/webhooks/github"): PUBLIC,
    ("POST", "/api/v1/webhooks/gitlab"): PUBLIC,
    # the web UI: its login and logout forms, its style sheet, and its pages
    ("GET", "/static/style.css"): PUBLIC,
    ("GET", "/login"): PUBLIC,
    ("POST", "/login"): PUBLIC,
    ("POST", "/logout"): PUBLIC,  # ends the caller's session, if any
    ("GET", "/"): "viewer",
    ("GET", "/repos/{name}"): "viewer",
    ("GET", "/campaigns/{campaign_id}"): "viewer",
    ("GET", "/crashes/{group_id}"): "viewer",
    ("POST", "/crashes/{group_id}/{action}"): "triager",
}
WEBHOOKS = ("/api/v1/webhooks/github", "/api/v1/webhooks/gitlab")
# Pages a browser visits: a caller without credentials is sent to the login page (303).
PAGES = {
    ("GET", "/"), ("GET", "/repos/{name}"), ("GET", "/campaigns/{campaign_id}"),
    ("GET", "/crashes/{group_id}"), ("POST", "/crashes/{group_id}/{action}"),
}  # fmt: skip
# Routes outside the OpenAPI document (test_api_schema fuzzes the document's operations).
UNDOCUMENTED = {
    ("GET", "/openapi.json"),
    ("GET", "/static/style.css"), ("GET", "/login"), ("POST", "/login"), ("POST", "/logout"),
    *PAGES,
}  # fmt: skip
PROTECTED = sorted((key, role) for key, role in ROUTES.items() if role != PUBLIC)
ROLES = [role.value for role in Role]  # each includes the ones before it


def served_routes(routes: list[object]) -> set[tuple[str, str]]:
    """``(method, path)`` of every route; anything but a plain route counts as its own kind."""
    found: set[tuple[str, str]] = set()
    for route in routes:
        if isinstance(route, APIRoute | Route) and route.methods is not None:
            methods = set(route.methods)
            if "GET" in methods:
                methods.discard("HEAD")  # Starlette serves HEAD for every GET route
            found.update((method, route.path) for method in methods)
        else:  # a Mount, a WebSocket route, …: the table must say what it is
            found.add((type(route).__name__, str(getattr(route, "path", route))))
    return found


def concrete(path: str) -> str:
    """The path with every parameter filled with a dummy value."""
    return re.sub(r"\{[^}]+\}", "x", path)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """One app on SQLite for the module, with a repository that accepts signed webhooks."""
    tmp_path = tmp_path_factory.mktemp("routes")
    database = Database.open(f"sqlite:///{tmp_path / 'routes.db'}", upgrade=True)
    with running_api(tmp_path, database) as api:
        source = fixture_repos.mixed_tests(tmp_path).path
        added = api.client.post("/api/v1/repos", headers=api.auth("admin"),
                                json={"source": str(source), "name": "mixed"})  # fmt: skip
        assert added.status_code == 201, added.text
        secret = api.client.post("/api/v1/repos/mixed/secret", headers=api.auth("admin"))
        assert secret.status_code == 200, secret.text
        policy = api.client.post("/api/v1/repos/mixed/policies", headers=api.auth("admin"),
                                 json={"branch": "*"})  # fmt: skip
        assert policy.status_code == 201, policy.text
        yield api
    database.dispose()


def test_the_table_names_every_route_and_only_those(api: Api) -> None:
    app = api.client.app
    assert isinstance(app, FastAPI)
    served = served_routes(list(app.routes))
    assert sorted(served - ROUTES.keys()) == [], "routes missing from ROUTES: add them"
    assert sorted(ROUTES.keys() - served) == [], "ROUTES names routes the app does not serve"
    assert set(ROUTES.values()) <= {PUBLIC, *ROLES}
    assert ROUTES.keys() >= PAGES | UNDOCUMENTED
    hidden = {
        (method, route.path)
        for route in app.routes
        if isinstance(route, Route) and not getattr(route, "include_in_schema", False)
        for method in (route.methods or set()) - {"HEAD"}
    }
    assert hidden == UNDOCUMENTED


def test_the_table_check_sees_a_new_route(api: Api) -> None:
    # The check above is only as good as ``served_routes``: a route added the usual way
    # (here, to a fresh app) must show up in it.
    app = create_app(api.services)

    @app.get("/api/v1/sneaky")
    def sneaky() -> dict[str, str]:
        return {}

    assert served_routes(list(app.routes)) - ROUTES.keys() == {("GET", "/api/v1/sneaky")}


@pytest.mark.parametrize(
    ("route", "needed"), PROTECTED, ids=lambda v: " ".join(v) if isinstance(v, tuple) else v
)
def test_a_protected_route_needs_a_caller_with_the_role(
    api: Api, route: tuple[str, str], needed: str
) -> None:
    method, template = route
    path = concrete(template)
    refusals = {
        "no credentials": {},
        "an unknown bearer token": {"Authorization": "Bearer fzo_not-a-token"},
        "an empty bearer token": {"Authorization": "Bearer "},
        "another scheme": {"Authorization": f"Basic {api.secrets['admin']}"},
    }
    for why, headers in refusals.items():
        answer = api.client.request(method, path, headers=headers, follow_redirects=False)
        if route in PAGES:
            assert answer.status_code == 303, (why, answer.status_code, answer.text)
            assert answer.headers["location"] == "/login", why
        else:
            assert answer.status_code == 401, (why, answer.status_code, answer.text)
            assert answer.headers["www-authenticate"] == "Bearer", why
    rank = ROLES.index(needed)
    for lower in ROLES[:rank]:
        answer = api.client.request(method, path, headers=api.auth(lower))
        assert answer.status_code == 403, (lower, answer.status_code, answer.text)
        assert f"role {lower!r}" in answer.json()["detail"]
        assert f"needs {needed!r}" in answer.json()["detail"]
    for allowed in ROLES[rank:]:
        answer = api.client.request(method, path, headers=api.auth(allowed), follow_redirects=False)
        assert answer.status_code not in (401, 403), (allowed, answer.status_code, answer.text)
        assert answer.headers.get("location") != "/login", allowed


UNSAFE = [
    pytest.param(route, id=" ".join(route)) for route, _role in PROTECTED if route[0] != "GET"
]


@pytest.mark.parametrize("route", UNSAFE)
def test_a_malformed_body_without_credentials_is_refused_as_unauthenticated(
    api: Api, route: tuple[str, str]
) -> None:
    method, template = route
    for content_type in ("application/json", "application/x-www-form-urlencoded"):
        answer = api.client.request(method, concrete(template), content=b"{",
                                    headers={"Content-Type": content_type},
                                    follow_redirects=False)  # fmt: skip
        refused = 303 if route in PAGES else 401
        assert answer.status_code == refused, (content_type, answer.status_code, answer.text)


@pytest.mark.parametrize(
    "path", ["/health", "/openapi.json", "/static/style.css",
             "/login"],
)  # fmt: skip
def test_the_service_docs_and_login_pages_need_no_caller(api: Api, path: str) -> None:
    answer = api.client.get(path)
    assert answer.status_code == 200, answer.text


def test_login_needs_no_caller_but_a_valid_token(api: Api) -> None:
    refused = api.client.post("/api/v1/session", json={"token": "fzo_not-a-token"})
    assert refused.status_code == 401, refused.text
    assert "set-cookie" not in refused.headers
    opened = api.client.post("/api/v1/session", json={"token": api.secrets["viewer"]})
    assert opened.status_code == 200, opened.text
    assert opened.json()["role"] == "viewer"
    api.client.cookies.clear()  # the other tests call with bearer tokens only


def test_the_login_form_needs_no_caller_but_a_valid_token(api: Api) -> None:
    refused = api.client.post("/login", data={"token": "fzo_not-a-token"}, follow_redirects=False)
    assert refused.status_code == 303, refused.text
    assert refused.headers["location"] == "/login?error=1"
    assert "set-cookie" not in refused.headers
    opened = api.client.post("/login", data={"token": api.secrets["viewer"]},
                             follow_redirects=False)  # fmt: skip
    assert opened.status_code == 303, opened.text
    assert opened.headers["location"] == "/"
    assert "fuzzorch_session=" in opened.headers["set-cookie"]
    forged = api.client.post("/logout", follow_redirects=False)  # another site's form
    assert forged.status_code == 403, forged.text
    csrf = api.client.get("/api/v1/session").json()["csrf_token"]
    out = api.client.post("/logout", data={"csrf_token": csrf}, follow_redirects=False)
    assert (out.status_code, out.headers["location"]) == (303, "/login")
    api.client.cookies.clear()
    anonymous = api.client.post("/logout", follow_redirects=False)
    assert (anonymous.status_code, anonymous.headers["location"]) == (303, "/login")


def _push(ref: str) -> bytes:
    """A push payload both forges' parsers accept (each reads its own fields)."""
    url = "https://example.com/team/mixed.git"
    return json.dumps({
        "object_kind": "push", "ref": ref, "before": "0" * 40, "after": "a" * 40,
        "deleted": False,
        "repository": {"full_name": "team/mixed", "clone_url": url},
        "project": {"path_with_namespace": "team/mixed", "git_http_url": url},
    }).encode()  # fmt: skip


BRANCH_PUSH = _push("refs/heads/main")
GUESSED = hmac.new(b"guess", BRANCH_PUSH, hashlib.sha256).hexdigest()


def _delivery(
    case_id: str,
    forge: str,
    body: bytes,
    marks: tuple[pytest.MarkDecorator, ...] = (),
    **headers: str,
) -> object:
    return pytest.param(forge, {k.replace("_", "-"): v for k, v in headers.items()}, body,
                        id=case_id, marks=marks)  # fmt: skip


UNSIGNED = [
    _delivery("github-no-headers", "github", b""),
    _delivery("github-push", "github", BRANCH_PUSH, X_GitHub_Event="push", X_GitHub_Delivery="d1"),
    _delivery("github-push-bad-signature", "github", BRANCH_PUSH, X_GitHub_Event="push",
              X_GitHub_Delivery="d2", X_Hub_Signature_256="sha256=" + "0" * 64),
    _delivery("github-push-guessed-secret", "github", BRANCH_PUSH, X_GitHub_Event="push",
              X_GitHub_Delivery="d3", X_Hub_Signature_256=f"sha256={GUESSED}"),
    _delivery("github-ping", "github", b"{}", X_GitHub_Event="ping",
              X_GitHub_Delivery="d4"),
    _delivery("github-tag-push", "github", _push("refs/tags/v1"),
              X_GitHub_Event="push", X_GitHub_Delivery="d5"),
    _delivery("gitlab-no-headers", "gitlab", b""),
    _delivery("gitlab-push", "gitlab", BRANCH_PUSH, X_Gitlab_Event="Push Hook",
              X_Gitlab_Event_UUID="u1"),
    _delivery("gitlab-push-wrong-token", "gitlab", BRANCH_PUSH, X_Gitlab_Event="Push Hook",
              X_Gitlab_Event_UUID="u2", X_Gitlab_Token="guess"),
    _delivery("gitlab-tag-push", "gitlab", _push("refs/tags/v1"),
              X_Gitlab_Event="Tag Push Hook", X_Gitlab_Event_UUID="u3"),
]  # fmt: skip


@pytest.mark.parametrize(("forge", "headers", "body"), UNSIGNED)
def test_a_webhook_refuses_an_unsigned_delivery(
    api: Api, forge: str, headers: dict[str, str], body: bytes
) -> None:
    answer = api.client.post(f"/api/v1/webhooks/{forge}?repo=mixed", content=body,
                             headers={"Content-Type": "application/json", **headers})  # fmt: skip
    assert 400 <= answer.status_code < 500, (answer.status_code, answer.text)
    assert answer.json()["detail"]


def test_a_webhook_ignores_api_tokens(api: Api) -> None:
    # A token is no substitute for the signature: an admin's unsigned push is refused too.
    body = _push("refs/heads/main")
    headers = {"X-GitHub-Event": "push", "X-GitHub-Delivery": "d-9", **api.auth("admin")}
    answer = api.client.post("/api/v1/webhooks/github?repo=mixed", content=body, headers=headers)
    assert answer.status_code == 401, answer.text

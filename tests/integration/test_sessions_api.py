"""Web UI sessions through the API: login with a token, HttpOnly SameSite=Strict cookie,
CSRF on state-changing calls, logout and revocation; and the audit log of it all."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.store.database import Database
from tests.support.api import Api, running_api


@pytest.fixture
def api(tmp_path: Path, database: Database) -> Iterator[Api]:
    with running_api(tmp_path, database) as api:
        yield api


def _login(api: Api, role: str) -> str:
    answer = api.client.post("/api/v1/session", json={"token": api.secrets[role]})
    assert answer.status_code == 200, answer.text
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie or "SameSite=Strict" in cookie
    assert api.secrets[role] not in cookie  # the cookie is a session, not the token
    return str(answer.json()["csrf_token"])


def test_a_session_reads_and_needs_its_csrf_token_to_change_anything(api: Api) -> None:
    csrf = _login(api, "triager")
    assert api.client.get("/api/v1/crashes").status_code == 200
    who = api.client.get("/api/v1/session").json()
    assert (who["role"], who["csrf_token"]) == ("triager", csrf)
    # Without the CSRF token, a state change through the session is refused …
    refused = api.client.post("/api/v1/crashes/crash-x/status", json={"status": "wontfix"})
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["detail"]
    wrong = api.client.post("/api/v1/crashes/crash-x/status", json={"status": "wontfix"},
                            headers={"X-CSRF-Token": "not-it"})  # fmt: skip
    assert wrong.status_code == 403
    # … with it, the call goes through to the route (404: no such group).
    allowed = api.client.post("/api/v1/crashes/crash-x/status", json={"status": "wontfix"},
                              headers={"X-CSRF-Token": csrf})  # fmt: skip
    assert allowed.status_code == 404
    # A form post carries it as a field.
    form_type = {"Content-Type": "application/x-www-form-urlencoded"}
    form = api.client.post(
        "/api/v1/crashes/crash-x/split", content=f"csrf_token={csrf}", headers=form_type
    )
    assert form.status_code == 404
    # The session has the token's role, no more.
    admin_only = api.client.get("/api/v1/tokens")
    assert admin_only.status_code == 403


def test_logout_and_revocation_end_the_session(api: Api) -> None:
    csrf = _login(api, "admin")
    assert api.client.get("/api/v1/tokens").status_code == 200
    assert api.client.request("DELETE", "/api/v1/session",
                              headers={"X-CSRF-Token": csrf}).status_code == 200  # fmt: skip
    assert api.client.get("/api/v1/repos").status_code == 401
    _login(api, "viewer")
    tokens = api.client.get("/api/v1/tokens", headers=api.auth("admin")).json()
    viewer_id = next(t["id"] for t in tokens if t["role"] == "viewer")
    revoked = api.client.request("DELETE", f"/api/v1/tokens/{viewer_id}",
                                 headers=api.auth("admin"))  # fmt: skip
    assert revoked.status_code == 200
    assert api.client.get("/api/v1/repos").status_code == 401  # the session died with it


def test_a_bad_login_is_refused_and_audited(api: Api) -> None:
    refused = api.client.post("/api/v1/session", json={"token": "fzo_guess"})
    assert refused.status_code == 401
    log = api.client.get("/api/v1/audit", headers=api.auth("admin")).json()
    assert log[0]["action"] == "POST /api/v1/session"
    assert log[0]["actor"] == "login"
    assert log[0]["detail"]["status"] == 401
    assert "fzo_guess" not in str(log)


def test_every_state_change_is_audited_with_who_and_from_where(api: Api) -> None:
    api.client.post("/api/v1/tokens", headers=api.auth("admin"),
                    json={"role": "viewer", "name": "ci"})  # fmt: skip
    api.client.post("/api/v1/tokens", headers=api.auth("viewer"),
                    json={"role": "admin", "name": "sneaky"})  # fmt: skip
    log = api.client.get("/api/v1/audit", headers=api.auth("admin")).json()
    assert [(e["actor"], e["action"], e["detail"]["status"]) for e in log[:2]] == [
        ("viewer-token", "POST /api/v1/tokens", 403),
        ("admin-token", "POST /api/v1/tokens", 201),
    ]
    assert all(e["remote_addr"] and e["at"] for e in log[:2])
    assert api.client.get("/api/v1/audit", headers=api.auth("triager")).status_code == 403


def test_a_bogus_cookie_is_refused_before_any_body_is_read(api: Api) -> None:
    api.client.cookies.set("fuzzorch_session", "not-a-session")
    answer = api.client.post(
        "/api/v1/repos", content=b"{", headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 401


def test_bodies_over_the_limit_are_refused_whatever_the_caller(api: Api) -> None:
    huge = b'{"role": "viewer", "name": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    declared = api.client.post("/api/v1/tokens", content=huge, headers=api.auth("admin"))
    assert declared.status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        yield huge

    streamed = api.client.post("/api/v1/tokens", content=chunks(), headers=api.auth("admin"))
    # Cut off at the limit while it was read (FastAPI reports a failed body read as 400).
    assert streamed.status_code in (400, 413)
    names = [t["name"] for t in api.client.get("/api/v1/tokens", headers=api.auth("admin")).json()]
    assert all(len(n) < 1000 for n in names)


def test_a_login_from_another_site_is_refused(api: Api) -> None:
    answer = api.client.post("/api/v1/session", json={"token": api.secrets["admin"]},
                             headers={"Origin": "https://evil.example"})  # fmt: skip
    assert answer.status_code == 403
    assert "set-cookie" not in answer.headers
    form = api.client.post("/login", content=f"token={api.secrets['admin']}",
                           headers={"Content-Type": "application/x-www-form-urlencoded",
                                    "Sec-Fetch-Site": "cross-site"})  # fmt: skip
    assert form.status_code == 403

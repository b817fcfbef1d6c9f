"""The HTTP API in process: authentication, roles, the local-source policy, bad input."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from orchestrator.server.app import Services, create_app
from orchestrator.store.database import Database
from tests.support import fixture_repos
from tests.support.api import build_services


def _services(tmp_path: Path, *, allow_local: bool) -> tuple[Services, dict[str, str]]:
    database = Database.open(f"sqlite:///{tmp_path / 'api.db'}", upgrade=True)
    return build_services(tmp_path, database, allow_local=allow_local)


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str]]]:
    services, secrets = _services(tmp_path, allow_local=True)
    with TestClient(create_app(services)) as client:
        yield client, secrets
    services.database.dispose()


def _auth(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def test_health_needs_no_token_and_everything_else_does(
    api: tuple[TestClient, dict[str, str]],
) -> None:
    client, _ = api
    assert client.get("/health").json() == {"status": "ok"}
    routes = [
        ("GET", "/api/v1/repos"),
        ("POST", "/api/v1/repos"),
        ("GET", "/api/v1/campaigns"),
        ("POST", "/api/v1/campaigns"),
        ("GET", "/api/v1/campaigns/x"),
        ("POST", "/api/v1/campaigns/x/cancel"),
    ]
    for method, path in routes:
        assert client.request(method, path).status_code == 401, path
        wrong = client.request(method, path, headers=_auth("fzo_not-a-token"))
        assert wrong.status_code == 401, path


def test_a_viewer_reads_but_may_not_change_anything(
    api: tuple[TestClient, dict[str, str]], tmp_path: Path
) -> None:
    client, secrets = api
    viewer = _auth(secrets["viewer"])
    assert client.get("/api/v1/repos", headers=viewer).json() == []
    source = fixture_repos.mixed_tests(tmp_path).path
    refused = client.post("/api/v1/repos", headers=viewer, json={"source": str(source)})
    assert refused.status_code == 403
    assert "'viewer'" in refused.json()["detail"]
    added = client.post(
        "/api/v1/repos", headers=_auth(secrets["admin"]), json={"source": str(source)}
    )
    assert added.status_code == 201, added.text
    assert added.json()["name"] == "mixed-tests"


def test_bad_input_is_a_4xx_naming_the_value(api: tuple[TestClient, dict[str, str]]) -> None:
    client, secrets = api
    admin = _auth(secrets["admin"])
    cases = [
        ({"source": "--upload-pack=touch /tmp/x"}, 400, "--upload-pack"),
        ({"source": "ext::sh -c id"}, 400, "ext::"),
        ({"source": "/no/such/dir"}, 400, "/no/such/dir"),
        ({"source": "/tmp", "name": "Bad Name"}, 400, "'Bad Name'"),
    ]
    for body, code, fragment in cases:
        answer = client.post("/api/v1/repos", headers=admin, json=body)
        assert answer.status_code == code, (body, answer.text)
        assert fragment in answer.json()["detail"]
    missing = client.get("/api/v1/campaigns/cmp-nope", headers=admin)
    assert missing.status_code == 404
    assert "'cmp-nope'" in missing.json()["detail"]
    unknown_repo = client.post(
        "/api/v1/campaigns", headers=admin, json={"repo": "nope", "branch": "main"}
    )
    assert unknown_repo.status_code == 404
    too_short = client.post(
        "/api/v1/campaigns", headers=admin,
        json={"repo": "nope", "branch": "main", "duration": 1},
    )  # fmt: skip
    assert too_short.status_code == 422


def test_a_server_refuses_local_sources_unless_allowed(tmp_path: Path) -> None:
    services, secrets = _services(tmp_path, allow_local=False)
    source = fixture_repos.mixed_tests(tmp_path).path
    with TestClient(create_app(services)) as client:
        answer = client.post(
            "/api/v1/repos", headers=_auth(secrets["admin"]), json={"source": str(source)}
        )
    services.database.dispose()
    assert answer.status_code == 400
    assert "local paths are not allowed" in answer.json()["detail"]

"""Forge webhooks through the API on a real database: signatures, deliveries, policies, and
the campaign a matching push starts on the pushed commit."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.deliveries import start_pushed_campaigns
from orchestrator.store import campaigns, policies, webhooks
from orchestrator.store.campaigns import FailOn
from orchestrator.store.database import Database
from tests.support import fixture_repos
from tests.support.api import Api, running_api

GITHUB = "/api/v1/webhooks/github"
GITLAB = "/api/v1/webhooks/gitlab"


@pytest.fixture
def api(tmp_path: Path, database: Database) -> Iterator[Api]:
    with running_api(tmp_path, database) as api:
        yield api


@pytest.fixture
def repo(api: Api, tmp_path: Path) -> dict[str, Any]:
    """A registered repository with a webhook secret and a ``release/*`` policy."""
    source = fixture_repos.mixed_tests(tmp_path)
    added = api.client.post("/api/v1/repos", headers=api.auth("admin"),
                            json={"source": str(source.path), "name": "mixed"})  # fmt: skip
    assert added.status_code == 201, added.text
    secret = api.client.post("/api/v1/repos/mixed/secret", headers=api.auth("admin"))
    assert secret.status_code == 200, secret.text
    policy = api.client.post(
        "/api/v1/repos/mixed/policies", headers=api.auth("admin"),
        json={"branch": "release/*", "duration": 30, "workers": 1, "fail_on": "new"},
    )  # fmt: skip
    assert policy.status_code == 201, policy.text
    head = added.json()["head_commit"]
    return {"source": source, "secret": secret.json()["secret"], "head": head}


def _push(branch: str, commit: str, url: str) -> bytes:
    return json.dumps({
        "ref": f"refs/heads/{branch}", "before": "0" * 40, "after": commit, "created": True,
        "deleted": False,
        "repository": {"full_name": "team/mixed", "clone_url": url, "html_url": url},
        "pusher": {"name": "ada"},
    }).encode()  # fmt: skip


def _signed(secret: str, body: bytes, delivery: str, **extra: str) -> dict[str, str]:
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"X-GitHub-Event": "push", "X-GitHub-Delivery": delivery,
            "X-Hub-Signature-256": f"sha256={signature}", "Content-Type": "application/json",
            **extra}  # fmt: skip


def test_a_signed_push_to_a_release_branch_queues_a_campaign_once(
    api: Api, repo: dict[str, Any]
) -> None:
    body = _push("release/2.0", repo["head"], str(repo["source"].path))
    started = time.monotonic()
    answer = api.client.post(f"{GITHUB}?repo=mixed", content=body,
                             headers=_signed(repo["secret"], body, "d-1"))  # fmt: skip
    assert time.monotonic() - started < 1.0  # the work is queued, not done in the request
    assert answer.status_code == 202, answer.text
    assert answer.json()["policy"] == "release/*"
    again = api.client.post(f"{GITHUB}?repo=mixed", content=body,
                            headers=_signed(repo["secret"], body, "d-1"))  # fmt: skip
    assert again.json() == {"duplicate": True, "delivery": "d-1"}
    services = api.services
    assert (
        start_pushed_campaigns(
            services.database, services.registry, services.dispatcher, services.clock
        )
        == 1
    )
    with services.database.transaction() as conn:
        (campaign,) = campaigns.list_campaigns(conn, repo="mixed")
        delivery = webhooks.queued_deliveries(conn)
    assert delivery == []
    assert (campaign.branch, campaign.commit) == ("release/2.0", repo["head"])
    assert (campaign.duration_s, campaign.workers, campaign.fail_on) == (30, 1, FailOn.NEW)
    # A second pass starts nothing more.
    assert (
        start_pushed_campaigns(
            services.database, services.registry, services.dispatcher, services.clock
        )
        == 0
    )


@pytest.mark.parametrize(
    ("mangle", "status", "fragment"),
    [
        (lambda h: {k: v for k, v in h.items() if k != "X-Hub-Signature-256"}, 401, "missing"),
        (lambda h: {**h, "X-Hub-Signature-256": h["X-Hub-Signature-256"][:-1]}, 401, ""),
        (lambda h: {**h, "X-Hub-Signature-256": "sha256=" + "0" * 64}, 401, ""),
        (lambda h: {**h, "X-Hub-Signature-256": "sha1=" + "0" * 40}, 401, ""),
    ],
)
def test_a_missing_wrong_or_truncated_signature_is_refused(
    api: Api, repo: dict[str, Any], mangle: Any, status: int, fragment: str
) -> None:
    body = _push("release/2.0", repo["head"], str(repo["source"].path))
    headers = mangle(_signed(repo["secret"], body, "d-2"))
    answer = api.client.post(f"{GITHUB}?repo=mixed", content=body, headers=headers)
    assert answer.status_code == status, answer.text
    assert fragment in answer.json()["detail"].lower()
    assert repo["secret"] not in answer.text
    with api.services.database.transaction() as conn:
        assert webhooks.queued_deliveries(conn) == []


def test_a_signed_body_replayed_under_a_new_delivery_id_starts_nothing_new(
    api: Api, repo: dict[str, Any]
) -> None:
    body = _push("release/2.0", repo["head"], str(repo["source"].path))
    first = api.client.post(f"{GITHUB}?repo=mixed", content=body,
                            headers=_signed(repo["secret"], body, "d-11"))  # fmt: skip
    assert first.status_code == 202
    for fake in ("attacker-1", "attacker-2"):
        replay = api.client.post(f"{GITHUB}?repo=mixed", content=body,
                                 headers=_signed(repo["secret"], body, fake))  # fmt: skip
        assert replay.json()["duplicate"] is True
    with api.services.database.transaction() as conn:
        assert len(webhooks.queued_deliveries(conn)) == 1


def test_a_replayed_signature_on_another_body_is_refused(api: Api, repo: dict[str, Any]) -> None:
    signed = _push("release/2.0", repo["head"], str(repo["source"].path))
    headers = _signed(repo["secret"], signed, "d-3")
    other = _push("release/3.0", repo["head"], str(repo["source"].path))
    answer = api.client.post(f"{GITHUB}?repo=mixed", content=other, headers=headers)
    assert answer.status_code == 401


def test_a_branch_no_policy_matches_is_acknowledged_and_ignored(
    api: Api, repo: dict[str, Any]
) -> None:
    body = _push("feature/x", repo["head"], str(repo["source"].path))
    answer = api.client.post(f"{GITHUB}?repo=mixed", content=body,
                             headers=_signed(repo["secret"], body, "d-4"))  # fmt: skip
    assert answer.status_code == 200
    assert "no branch policy" in answer.json()["ignored"]
    with api.services.database.transaction() as conn:
        assert policies.matching_policy(conn, "mixed", "feature/x") is None
        assert webhooks.queued_deliveries(conn) == []


def test_unknown_repositories_and_oversized_bodies_are_refused(
    api: Api, repo: dict[str, Any]
) -> None:
    body = _push("release/2.0", repo["head"], "https://example.invalid/nobody/nothing.git")
    # Before a delivery is verified, an unknown repository looks like any other refusal:
    # an anonymous sender learns nothing of which repositories exist.
    unknown = api.client.post(GITHUB, content=body, headers=_signed(repo["secret"], body, "d-5"))
    assert unknown.status_code == 401
    named = api.client.post(f"{GITHUB}?repo=nope", content=body,
                            headers=_signed(repo["secret"], body, "d-6"))  # fmt: skip
    assert (named.status_code, named.json()) == (401, unknown.json())
    huge = b"{" + b" " * (2 * 1024 * 1024) + b"}"
    too_big = api.client.post(f"{GITHUB}?repo=mixed", content=huge,
                              headers=_signed(repo["secret"], huge, "d-7"))  # fmt: skip
    assert too_big.status_code == 413
    garbage = b"\xff\xfenot json"
    malformed = api.client.post(f"{GITHUB}?repo=mixed", content=garbage,
                                headers=_signed(repo["secret"], garbage, "d-8"))  # fmt: skip
    assert malformed.status_code == 400


def test_gitlab_pushes_are_verified_by_their_token(api: Api, repo: dict[str, Any]) -> None:
    body = json.dumps({
        "object_kind": "push", "ref": "refs/heads/release/2.1", "before": "0" * 40,
        "after": repo["head"],
        "project": {"path_with_namespace": "team/mixed", "git_http_url": "https://x/y.git"},
    }).encode()  # fmt: skip
    headers = {"X-Gitlab-Event": "Push Hook", "X-Gitlab-Event-UUID": "g-1",
               "Content-Type": "application/json"}  # fmt: skip
    wrong = api.client.post(f"{GITLAB}?repo=mixed", content=body,
                            headers={**headers, "X-Gitlab-Token": "nope"})  # fmt: skip
    assert wrong.status_code == 401
    right = api.client.post(f"{GITLAB}?repo=mixed", content=body,
                            headers={**headers, "X-Gitlab-Token": repo["secret"]})  # fmt: skip
    assert right.status_code == 202, right.text


def test_deliveries_are_audited_as_the_forge(api: Api, repo: dict[str, Any]) -> None:
    body = _push("release/2.0", repo["head"], str(repo["source"].path))
    api.client.post(f"{GITHUB}?repo=mixed", content=body,
                    headers=_signed(repo["secret"], body, "d-9"))  # fmt: skip
    api.client.post(f"{GITHUB}?repo=mixed", content=body, headers={"X-GitHub-Event": "push",
                    "X-GitHub-Delivery": "d-10"})  # fmt: skip
    log = api.client.get("/api/v1/audit", headers=api.auth("admin")).json()
    hooks = [e for e in log if e["actor"] == "webhook:github"]
    assert [e["detail"]["status"] for e in hooks] == [401, 202]
    assert hooks[1]["detail"]["commit"] == repo["head"]
    assert all(e["remote_addr"] for e in hooks)

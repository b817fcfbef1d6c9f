"""Routes: GitHub and GitLab push webhooks.

A delivery is authenticated by its repository's secret (GitHub's HMAC-SHA256 signature,
compared in constant time; GitLab's token), not by an API token. It is recorded once per
delivery id (forges redeliver with the same id) and answered at once: the campaign itself
is started by the dispatcher loop, which fetches the pushed commit first.
"""

# No "from __future__ import annotations": FastAPI reads the annotations at runtime.
import hashlib
import logging
from functools import partial
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from orchestrator.secretbox import SecretKeyError
from orchestrator.store import policies, repos, webhooks
from orchestrator.webhooks import (
    MAX_BODY_BYTES,
    Push,
    WebhookRefused,
    parse_github_push,
    parse_gitlab_push,
    verify_github_signature,
    verify_gitlab_token,
)
from workers.gitrefs import canonical_source

if TYPE_CHECKING:
    from orchestrator.server.app import Services

logger = logging.getLogger(__name__)


def register(app: FastAPI, services: "Services") -> None:
    """Add the routes to ``app``."""

    @app.post("/api/v1/webhooks/github", tags=["webhooks"], response_model=None)
    async def github(
        request: Request, repo: str | None = Query(default=None, max_length=64)
    ) -> JSONResponse:
        """A GitHub push (``X-GitHub-Event``, ``X-GitHub-Delivery``, ``X-Hub-Signature-256``)."""
        request.state.actor = "webhook:github"
        try:
            headers = request.headers
            _require(headers.get("x-hub-signature-256"), "X-Hub-Signature-256")
            body = await _body(request)
            push = parse_github_push(
                headers.get("x-github-event"), headers.get("x-github-delivery"), body
            )
            if push is None:
                return JSONResponse({"ignored": "not a push to a branch"}, status_code=200)

            def check(secret: bytes) -> None:
                verify_github_signature(secret, body, headers.get("x-hub-signature-256"))

            return await run_in_threadpool(
                partial(_accept, body=body), services, push, repo, check, request
            )
        except WebhookRefused as exc:
            return _refused(exc)

    @app.post("/api/v1/webhooks/gitlab", tags=["webhooks"], response_model=None)
    async def gitlab(
        request: Request, repo: str | None = Query(default=None, max_length=64)
    ) -> JSONResponse:
        """A GitLab push (``X-Gitlab-Event``, ``X-Gitlab-Event-UUID``, ``X-Gitlab-Token``)."""
        request.state.actor = "webhook:gitlab"
        try:
            headers = request.headers
            _require(headers.get("x-gitlab-token"), "X-Gitlab-Token")
            body = await _body(request)
            # Idempotency-Key stays the same across GitLab's retries; the event UUID may not.
            delivery = headers.get("idempotency-key") or headers.get("x-gitlab-event-uuid")
            push = parse_gitlab_push(headers.get("x-gitlab-event"), delivery, body)
            if push is None:
                return JSONResponse({"ignored": "not a push to a branch"}, status_code=200)

            def check(secret: bytes) -> None:
                verify_gitlab_token(secret, headers.get("x-gitlab-token"))

            return await run_in_threadpool(
                partial(_accept, body=body), services, push, repo, check, request
            )
        except WebhookRefused as exc:
            return _refused(exc)


def _refused(exc: WebhookRefused) -> JSONResponse:
    """Before a delivery is verified, every refusal looks the same to its sender: an
    anonymous caller learns nothing of which repositories exist or have secrets."""
    if exc.status in (403, 404):
        logger.info("webhook delivery refused: %s", exc)
        return JSONResponse({"detail": "the delivery could not be verified"}, status_code=401)
    return JSONResponse({"detail": str(exc)}, status_code=exc.status)


def _require(header: str | None, name: str) -> None:
    """An unsigned delivery is refused before anything of it is read or answered."""
    if not header:
        raise WebhookRefused(401, f"the {name} header is missing: the delivery is not signed")


async def _body(request: Request) -> bytes:
    """The raw body, refused as soon as it passes the limit (never read whole first)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise WebhookRefused(413, f"the body is larger than {MAX_BODY_BYTES} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > MAX_BODY_BYTES:
            raise WebhookRefused(413, f"the body is larger than {MAX_BODY_BYTES} bytes")
    return bytes(body)


def _accept(
    services: "Services",
    push: Push,
    wanted: str | None,
    check: Any,
    request: Request,
    *,
    body: bytes,
) -> JSONResponse:
    """Verify the delivery against its repository's secret, record it, answer."""
    name = _repository(services, push, wanted)
    box = services.secret_box
    with services.database.transaction() as conn:
        sealed = webhooks.sealed_secret(conn, name)
    if box is None or sealed is None:
        # Nothing to verify against: refuse, without saying more to an anonymous caller.
        raise WebhookRefused(403, f"repository {name!r} accepts no webhooks (no secret set)")
    try:
        secret = box.open(sealed, context=name)
    except SecretKeyError:
        raise WebhookRefused(
            403, "the repository's secret cannot be read with this server's key"
        ) from None
    check(secret)
    request.state.audit = {"repo": name, "branch": push.branch, "commit": push.commit,
                           "delivery": push.delivery}  # fmt: skip
    if push.deleted:
        return JSONResponse({"ignored": f"branch {push.branch!r} was deleted"}, status_code=200)
    with services.database.transaction() as conn:
        policy = policies.matching_policy(conn, name, push.branch)
        fresh = webhooks.record_delivery(
            conn,
            webhooks.Delivery(
                forge=push.forge, delivery=push.delivery, repo=name, branch=push.branch,
                commit=push.commit, body_sha256=hashlib.sha256(body).hexdigest(),
                policy_id=policy.id if policy else None,
                state="queued" if policy else "ignored",
                campaign_id=None, detail=None if policy else "no branch policy matches",
            ),
            now=services.clock(),
        )  # fmt: skip
    if not fresh:
        return JSONResponse({"duplicate": True, "delivery": push.delivery}, status_code=200)
    if policy is None:
        return JSONResponse(
            {"ignored": f"no branch policy of {name!r} matches {push.branch!r}"}, status_code=200
        )
    services.wake()
    return JSONResponse(
        {"queued": True, "delivery": push.delivery, "repo": name, "branch": push.branch,
         "commit": push.commit, "policy": policy.branch_glob},
        status_code=202,
    )  # fmt: skip


def _repository(services: "Services", push: Push, wanted: str | None) -> str:
    """The registered repository a push is for: named by ``?repo=`` or found by URL."""
    with services.database.transaction() as conn:
        if wanted is not None:
            record = repos.find_repo(conn, wanted)
            if record is None:
                raise WebhookRefused(404, f"no repository named {wanted!r}")
            return record.name
        for url in push.repo_urls:
            try:
                source = canonical_source(url, allow_local=False)
            except ValueError:
                continue
            found = repos.find_repo_by_source(conn, source)
            if found is not None:
                return found.name
    raise WebhookRefused(404, "no registered repository matches the push's repository URLs")

"""Forge push webhooks, the pure part: signature checks and push payload parsing.

Headers and bodies are hostile until verified, and payload fields stay hostile afterwards: a
valid signature proves who sent a payload, not that its values are safe to hand to git. Every
refusal is a ``WebhookRefused`` carrying the HTTP status to answer; nothing else may escape
(checked by a Hypothesis property and by ``fuzz/fuzz_webhooks.py``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from typing import Any, TypeGuard

from orchestrator.errors import FuzzorchError
from workers.errors import InvalidRefError
from workers.gitrefs import MAX_REF_LENGTH, validate_ref

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_URL_CHARS",
    "Push",
    "WebhookRefused",
    "parse_github_push",
    "parse_gitlab_push",
    "verify_github_signature",
    "verify_gitlab_token",
]

MAX_BODY_BYTES = 1024 * 1024
MAX_URL_CHARS = 2048
ZERO_SHA = "0" * 40

_SIGNATURE_RE = re.compile(r"sha256=([0-9a-f]{64})")
_DELIVERY_RE = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_SHA_RE = re.compile(r"[0-9a-f]{40}")
_BRANCH_PREFIX = "refs/heads/"
# Long enough to recognise a value in a message, short enough to keep a 1 MiB value out of logs.
_SHOW_CHARS = 60


class WebhookRefused(FuzzorchError, ValueError):
    """A delivery is refused; ``status`` is the HTTP status to answer.

    400: malformed headers or payload; 401: missing or wrong signature or token; 413: body
    too large. The message names what was wrong and never contains a secret.
    """

    exit_code = 2

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Push:
    """A push to a branch, as a forge reported it."""

    forge: str  # "github" | "gitlab"
    delivery: str  # the forge's delivery id; redeliveries repeat it
    repo_urls: tuple[str, ...]  # every repository URL the payload names, unvalidated
    repo_name: str | None  # "owner/name" (GitHub) or "group/project" (GitLab)
    branch: str  # passed workers.gitrefs.validate_ref
    commit: str  # 40 lowercase hex digits
    deleted: bool  # the branch was deleted: nothing to fuzz


@dataclass(frozen=True)
class _Forge:
    name: str
    label: str
    event_header: str
    delivery_header: str
    push_event: str
    repo_field: str
    name_field: str
    url_fields: tuple[str, ...]


_GITHUB = _Forge(
    name="github",
    label="GitHub",
    event_header="X-GitHub-Event",
    delivery_header="X-GitHub-Delivery",
    push_event="push",
    repo_field="repository",
    name_field="full_name",
    url_fields=("clone_url", "ssh_url", "git_url", "html_url"),
)
_GITLAB = _Forge(
    name="gitlab",
    label="GitLab",
    event_header="X-Gitlab-Event",
    delivery_header="X-Gitlab-Event-UUID",
    push_event="Push Hook",
    repo_field="project",
    name_field="path_with_namespace",
    url_fields=("git_http_url", "git_ssh_url", "web_url", "http_url", "ssh_url"),
)


def verify_github_signature(secret: bytes, body: bytes, header: str | None) -> None:
    """Refuse (401) unless ``header`` is the X-Hub-Signature-256 of ``body`` under ``secret``."""
    if not secret:
        # An empty HMAC key is a key everybody knows: fail closed.
        raise WebhookRefused(401, "no webhook secret is configured for this repository")
    if not header:
        raise WebhookRefused(401, "the X-Hub-Signature-256 header is missing")
    match = _SIGNATURE_RE.fullmatch(header)
    if match is None:
        raise WebhookRefused(
            401, "the X-Hub-Signature-256 header is not 'sha256=' and 64 lowercase hex digits"
        )
    expected = hmac.new(secret, body, hashlib.sha256).digest()
    if not hmac.compare_digest(bytes.fromhex(match.group(1)), expected):
        raise WebhookRefused(401, "the X-Hub-Signature-256 signature does not match the body")


def verify_gitlab_token(secret: bytes, header: str | None) -> None:
    """Refuse (401) unless the X-Gitlab-Token ``header`` equals ``secret``."""
    if not secret:
        raise WebhookRefused(401, "no webhook secret is configured for this repository")
    if not header:
        raise WebhookRefused(401, "the X-Gitlab-Token header is missing")
    try:
        given = header.encode("utf-8")
    except UnicodeEncodeError:
        given = b""
    # Comparing digests keeps the comparison constant-time in the secret's length too.
    if not hmac.compare_digest(hashlib.sha256(given).digest(), hashlib.sha256(secret).digest()):
        raise WebhookRefused(401, "the X-Gitlab-Token header does not match the webhook secret")


def parse_github_push(event: str | None, delivery: str | None, body: bytes) -> Push | None:
    """Parse a GitHub delivery: a ``Push`` for a branch push, None for anything to ignore."""
    read = _read(_GITHUB, event, delivery, body)
    if read is None:
        return None
    delivery_id, payload = read
    deleted = payload.get("deleted", False)
    if not isinstance(deleted, bool):
        raise _malformed(_GITHUB, f"field 'deleted' must be true or false, not {_show(deleted)}")
    return _push(_GITHUB, delivery_id, payload, deleted=deleted)


def parse_gitlab_push(event: str | None, delivery: str | None, body: bytes) -> Push | None:
    """Parse a GitLab delivery: a ``Push`` for a branch push, None for anything to ignore."""
    read = _read(_GITLAB, event, delivery, body)
    if read is None:
        return None
    delivery_id, payload = read
    kind = payload.get("object_kind")
    if kind != "push":
        raise _malformed(_GITLAB, f"field 'object_kind' must be 'push', not {_show(kind)}")
    return _push(_GITLAB, delivery_id, payload, deleted=False)


def _read(
    forge: _Forge, event: str | None, delivery: str | None, body: bytes
) -> tuple[str, dict[str, Any]] | None:
    if len(body) > MAX_BODY_BYTES:
        raise WebhookRefused(413, f"the body is larger than {MAX_BODY_BYTES} bytes")
    if event is None:
        raise WebhookRefused(400, f"the {forge.event_header} header is missing")
    if event != forge.push_event:
        return None  # pings, tag pushes, issues…: acknowledged and ignored
    if delivery is None:
        raise WebhookRefused(400, f"the {forge.delivery_header} header is missing")
    if not _DELIVERY_RE.fullmatch(delivery):
        raise WebhookRefused(
            400,
            f"the {forge.delivery_header} header must be 1 to 128 characters of "
            f"[A-Za-z0-9._:-], not {_show(delivery)}",
        )
    return delivery, _load_object(forge, body)


def _load_object(forge: _Forge, body: bytes) -> dict[str, Any]:
    try:
        # Decoding first refuses the UTF-16/32 bodies json.loads would otherwise guess at.
        payload = json.loads(body.decode("utf-8"))
    except RecursionError:
        raise _malformed(forge, "the body is nested too deeply") from None
    except ValueError as exc:  # UnicodeDecodeError, JSONDecodeError, int digit limit
        # These messages give a position, never a slice of the body.
        raise _malformed(forge, f"the body is not UTF-8 JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise _malformed(forge, f"the body must be a JSON object, not {_type(payload)}")
    return payload


def _push(forge: _Forge, delivery: str, payload: dict[str, Any], *, deleted: bool) -> Push | None:
    ref = payload.get("ref")
    if not isinstance(ref, str):
        raise _malformed(forge, f"field 'ref' must be a string, not {_show(ref)}")
    if not ref.startswith(_BRANCH_PREFIX):
        return None  # a tag or another kind of ref: no campaign
    branch = _branch(forge, ref.removeprefix(_BRANCH_PREFIX))
    commit = payload.get("after")
    if not isinstance(commit, str) or not _SHA_RE.fullmatch(commit):
        raise _malformed(
            forge, f"field 'after' must be 40 lowercase hex digits, not {_show(commit)}"
        )
    repo = payload.get(forge.repo_field)
    if not isinstance(repo, dict):
        raise _malformed(forge, f"field {forge.repo_field!r} must be an object, not {_type(repo)}")
    urls = _urls(repo, forge.url_fields)
    name = _name(forge, repo)
    if not urls and name is None:
        raise _malformed(forge, f"field {forge.repo_field!r} names no repository URL or name")
    return Push(
        forge=forge.name,
        delivery=delivery,
        repo_urls=urls,
        repo_name=name,
        branch=branch,
        commit=commit,
        deleted=deleted or commit == ZERO_SHA,
    )


def _branch(forge: _Forge, branch: str) -> str:
    if len(branch) > MAX_REF_LENGTH:
        # validate_ref's message would repeat the whole (possibly 1 MiB) value.
        raise _malformed(
            forge,
            f"field 'ref' names a branch longer than {MAX_REF_LENGTH} characters: {_show(branch)}",
        )
    try:
        return validate_ref(branch)
    except InvalidRefError as exc:
        raise _malformed(forge, f"field 'ref' names an invalid branch: {exc}") from exc


def _urls(repo: dict[str, Any], fields: tuple[str, ...]) -> tuple[str, ...]:
    urls: list[str] = []
    for field in fields:
        url = repo.get(field)
        # Not refused: these are only compared with registered sources, and a forge adding or
        # nulling one of them must not break deliveries.
        if _is_text(url, MAX_URL_CHARS) and url not in urls:
            urls.append(url)
    return tuple(urls)


def _name(forge: _Forge, repo: dict[str, Any]) -> str | None:
    name = repo.get(forge.name_field)
    if name is None:
        return None
    if not _is_text(name, MAX_URL_CHARS):
        field = f"{forge.repo_field}.{forge.name_field}"
        raise _malformed(
            forge,
            f"field {field!r} must be a printable string of at most {MAX_URL_CHARS} "
            f"characters, not {_show(name)}",
        )
    return name


def _is_text(value: object, limit: int) -> TypeGuard[str]:
    # isprintable() also refuses lone surrogates, which could not be encoded further on.
    return isinstance(value, str) and 0 < len(value) <= limit and value.isprintable()


def _malformed(forge: _Forge, what: str) -> WebhookRefused:
    return WebhookRefused(400, f"Malformed {forge.label} push: {what}")


def _type(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _show(value: object) -> str:
    # Only strings are shown: repr() of a deeply nested payload value could itself recurse
    # too deep, and its size is unbounded.
    if not isinstance(value, str):
        return _type(value)
    if len(value) <= _SHOW_CHARS:
        return repr(value)
    return f"{value[:_SHOW_CHARS]!r}… ({len(value)} characters)"

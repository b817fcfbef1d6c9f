"""Forge webhooks: signature and token checks, push payload parsing, hostile input."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.webhooks import (
    MAX_BODY_BYTES,
    Push,
    WebhookRefused,
    parse_github_push,
    parse_gitlab_push,
    verify_github_signature,
    verify_gitlab_token,
)
from workers.gitrefs import validate_ref

# GitHub's published test vector (docs: "Validating webhook deliveries").
VECTOR_SECRET = b"It's a Secret to Everybody"
VECTOR_BODY = b"Hello, World!"
VECTOR_SIGNATURE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"

AFTER = "1481a2de7b2a7d02428ad93446ab166be7793fbb"
BEFORE = "6113728f27ae82c7b1a177c8d03f9e96e0adf246"
DELIVERY = "72d3162e-cc78-11e3-81ab-4c9367dc0958"
GITLAB_DELIVERY = "13792a34-cac6-4fda-95a8-c58e00a3954e"


def github_push(**changes: Any) -> dict[str, Any]:
    """A trimmed push payload shaped like a real GitHub delivery."""
    payload: dict[str, Any] = {
        "ref": "refs/heads/release/1.0",
        "before": BEFORE,
        "after": AFTER,
        "created": False,
        "deleted": False,
        "forced": False,
        "base_ref": None,
        "compare": f"https://github.com/acme/parser/compare/{BEFORE[:12]}...{AFTER[:12]}",
        "repository": {
            "id": 186853002,
            "name": "parser",
            "full_name": "acme/parser",
            "private": False,
            "html_url": "https://github.com/acme/parser",
            "git_url": "git://github.com/acme/parser.git",
            "ssh_url": "git@github.com:acme/parser.git",
            "clone_url": "https://github.com/acme/parser.git",
            "default_branch": "main",
        },
        "pusher": {"name": "octocat", "email": "octocat@example.com"},
        "sender": {"login": "octocat", "id": 21031067, "type": "User"},
        "head_commit": {
            "id": AFTER,
            "tree_id": "f9d2a07e9488b91af2641b26b9407fe22a451433",
            "message": "Fix the length check in parse_header",
            "timestamp": "2024-05-14T10:21:03+02:00",
            "author": {"name": "Octo Cat", "email": "octocat@example.com"},
            "added": [],
            "removed": [],
            "modified": ["src/parser/header.py"],
        },
        "commits": [],
    }
    payload.update(changes)
    return payload


def gitlab_push(**changes: Any) -> dict[str, Any]:
    """A trimmed Push Hook payload shaped like a real GitLab delivery."""
    payload: dict[str, Any] = {
        "object_kind": "push",
        "event_name": "push",
        "before": BEFORE,
        "after": AFTER,
        "ref": "refs/heads/main",
        "ref_protected": True,
        "checkout_sha": AFTER,
        "user_id": 4,
        "user_name": "John Smith",
        "user_username": "jsmith",
        "project_id": 15,
        "project": {
            "id": 15,
            "name": "Diaspora",
            "web_url": "https://gitlab.example.com/mike/diaspora",
            "git_ssh_url": "git@gitlab.example.com:mike/diaspora.git",
            "git_http_url": "https://gitlab.example.com/mike/diaspora.git",
            "namespace": "Mike",
            "path_with_namespace": "mike/diaspora",
            "default_branch": "main",
            "homepage": "https://gitlab.example.com/mike/diaspora",
            "url": "git@gitlab.example.com:mike/diaspora.git",
            "ssh_url": "git@gitlab.example.com:mike/diaspora.git",
            "http_url": "https://gitlab.example.com/mike/diaspora.git",
        },
        "commits": [
            {
                "id": AFTER,
                "message": "fixed readme",
                "timestamp": "2012-01-03T23:36:29+02:00",
                "author": {"name": "GitLab dev user", "email": "gitlabdev@dv6700.(none)"},
                "added": ["CHANGELOG"],
                "modified": ["app/controller/application.rb"],
                "removed": [],
            }
        ],
        "total_commits_count": 1,
        "repository": {"name": "Diaspora", "url": "git@gitlab.example.com:mike/diaspora.git"},
    }
    payload.update(changes)
    return payload


def body(payload: object) -> bytes:
    return json.dumps(payload).encode("utf-8")


def github(payload: object, event: str | None = "push") -> Push | None:
    return parse_github_push(event, DELIVERY, body(payload))


def gitlab(payload: object, event: str | None = "Push Hook") -> Push | None:
    return parse_gitlab_push(event, GITLAB_DELIVERY, body(payload))


# --- GitHub signatures ------------------------------------------------------------------


def test_githubs_published_test_vector_verifies() -> None:
    verify_github_signature(VECTOR_SECRET, VECTOR_BODY, VECTOR_SIGNATURE)


@pytest.mark.parametrize(
    ("header", "match"),
    [
        (None, "missing"),
        ("", "missing"),
        ("sha256=" + "0" * 64, "does not match"),
        (VECTOR_SIGNATURE[:-1], "64 lowercase hex"),
        (VECTOR_SIGNATURE + "0", "64 lowercase hex"),
        ("SHA256=" + VECTOR_SIGNATURE[7:], "64 lowercase hex"),
        ("sha1=" + VECTOR_SIGNATURE[7:], "64 lowercase hex"),
        (VECTOR_SIGNATURE[7:], "64 lowercase hex"),
        (" " + VECTOR_SIGNATURE, "64 lowercase hex"),
        (VECTOR_SIGNATURE + " ", "64 lowercase hex"),
        (VECTOR_SIGNATURE + "\n", "64 lowercase hex"),
        ("sha256= " + VECTOR_SIGNATURE[7:], "64 lowercase hex"),
        (VECTOR_SIGNATURE[:-1] + "g", "64 lowercase hex"),
        (VECTOR_SIGNATURE[:-1] + "\u0661", "64 lowercase hex"),  # an Arabic-Indic digit
        ("sha256=" + VECTOR_SIGNATURE[7:].upper(), "64 lowercase hex"),
        (f"{VECTOR_SIGNATURE},{VECTOR_SIGNATURE}", "64 lowercase hex"),
    ],
)
def test_bad_github_signatures_are_refused_with_401(header: str | None, match: str) -> None:
    with pytest.raises(WebhookRefused, match=match) as info:
        verify_github_signature(VECTOR_SECRET, VECTOR_BODY, header)
    assert info.value.status == 401
    assert VECTOR_SECRET.decode() not in str(info.value)


def test_a_replayed_signature_does_not_cover_a_modified_body() -> None:
    with pytest.raises(WebhookRefused, match="does not match") as info:
        verify_github_signature(VECTOR_SECRET, VECTOR_BODY + b" ", VECTOR_SIGNATURE)
    assert info.value.status == 401


def test_a_signature_under_another_secret_is_refused() -> None:
    with pytest.raises(WebhookRefused) as info:
        verify_github_signature(b"another secret", VECTOR_BODY, VECTOR_SIGNATURE)
    assert info.value.status == 401


def test_an_empty_secret_refuses_everything() -> None:
    # HMAC with an empty key is something anybody can compute.
    signature = "sha256=" + hmac.new(b"", VECTOR_BODY, hashlib.sha256).hexdigest()
    with pytest.raises(WebhookRefused, match="no webhook secret") as info:
        verify_github_signature(b"", VECTOR_BODY, signature)
    assert info.value.status == 401


def test_a_signature_over_a_real_payload_verifies() -> None:
    secret = b"s3cr3t-token"
    raw = body(github_push())
    verify_github_signature(secret, raw, "sha256=" + hmac.new(secret, raw, "sha256").hexdigest())


# --- GitLab tokens ----------------------------------------------------------------------


def test_the_right_gitlab_token_verifies() -> None:
    verify_gitlab_token(b"tok-en_123", "tok-en_123")


@pytest.mark.parametrize(
    ("header", "match"),
    [
        (None, "missing"),
        ("", "missing"),
        ("tok-en_12", "does not match"),
        ("tok-en_1234", "does not match"),
        ("TOK-EN_123", "does not match"),
        (" tok-en_123", "does not match"),
        ("tok-en_123\ud800", "does not match"),
    ],
)
def test_wrong_or_missing_gitlab_tokens_are_refused_with_401(
    header: str | None, match: str
) -> None:
    with pytest.raises(WebhookRefused, match=match) as info:
        verify_gitlab_token(b"tok-en_123", header)
    assert info.value.status == 401
    assert "tok-en_123" not in str(info.value)


def test_an_empty_gitlab_secret_refuses_everything() -> None:
    with pytest.raises(WebhookRefused, match="no webhook secret"):
        verify_gitlab_token(b"", "")
    with pytest.raises(WebhookRefused, match="no webhook secret"):
        verify_gitlab_token(b"", "anything")


# --- GitHub pushes ----------------------------------------------------------------------


def test_a_github_branch_push_is_parsed() -> None:
    assert github(github_push()) == Push(
        forge="github",
        delivery=DELIVERY,
        repo_urls=(
            "https://github.com/acme/parser.git",
            "git@github.com:acme/parser.git",
            "git://github.com/acme/parser.git",
            "https://github.com/acme/parser",
        ),
        repo_name="acme/parser",
        branch="release/1.0",
        commit=AFTER,
        deleted=False,
    )


def test_ping_and_other_github_events_are_ignored() -> None:
    assert github({"zen": "Design for failure.", "hook_id": 1}, event="ping") is None
    assert github(github_push(), event="issues") is None
    assert github(github_push(), event="Push") is None
    # Ignored events are not parsed at all: their bodies are not ours to judge.
    assert parse_github_push("ping", None, b"not json") is None


def test_a_missing_github_event_header_is_malformed() -> None:
    with pytest.raises(WebhookRefused, match="X-GitHub-Event header is missing") as info:
        github(github_push(), event=None)
    assert info.value.status == 400


def test_tag_and_other_ref_pushes_are_ignored() -> None:
    assert github(github_push(ref="refs/tags/v1.0", base_ref="refs/heads/main")) is None
    assert github(github_push(ref="refs/pull/3/head")) is None
    assert github(github_push(ref="release/1.0")) is None


def test_a_branch_deletion_is_marked_deleted() -> None:
    push = github(github_push(after="0" * 40, deleted=True, head_commit=None))
    assert push is not None
    assert push.deleted
    assert push.commit == "0" * 40
    # Either signal alone is enough.
    flagged = github(github_push(deleted=True))
    assert flagged is not None
    assert flagged.deleted
    zeros = github(github_push(after="0" * 40))
    assert zeros is not None
    assert zeros.deleted


def test_unusable_repository_urls_are_dropped_not_refused() -> None:
    repository = {
        "full_name": "acme/parser",
        "clone_url": "https://github.com/acme/parser.git",
        "ssh_url": 7,
        "git_url": "x" * 2049,
        "html_url": "https://github.com/acme/parser.git",  # a duplicate
    }
    push = github(github_push(repository=repository))
    assert push is not None
    assert push.repo_urls == ("https://github.com/acme/parser.git",)
    bare = github(github_push(repository={"full_name": "acme/parser"}))
    assert bare is not None
    assert bare.repo_urls == ()
    assert bare.repo_name == "acme/parser"
    control = github(github_push(repository={"clone_url": "https://h/x\n", "full_name": "a/b"}))
    assert control is not None
    assert control.repo_urls == ()


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        (b"not json", "not UTF-8 JSON"),
        (b"", "not UTF-8 JSON"),
        (b"\xff\xfe{}", "not UTF-8 JSON"),
        ('{"ref": "é"}'.encode("utf-16"), "not UTF-8 JSON"),
        (b"[1, 2]", "must be a JSON object, not list"),
        (b"null", "must be a JSON object, not null"),
        (b'"push"', "must be a JSON object, not str"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"a": ' * 50_000 + b"1" + b"}" * 50_000, "nested too deeply"),
        (b'{"ref": ' + b"9" * 5000 + b"}", "not UTF-8 JSON: Exceeds the limit"),
    ],
)
def test_bodies_that_are_not_json_objects_are_refused_with_400(raw: bytes, match: str) -> None:
    with pytest.raises(WebhookRefused, match=match) as info:
        parse_github_push("push", DELIVERY, raw)
    assert info.value.status == 400


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"ref": 7}, "field 'ref' must be a string, not int"),
        ({"ref": None}, "field 'ref' must be a string, not null"),
        ({"ref": ["refs/heads/main"]}, "field 'ref' must be a string, not list"),
        ({"ref": "refs/heads/"}, "field 'ref' names an invalid branch: .*must not be empty"),
        ({"ref": "refs/heads/a..b"}, r"invalid branch: Invalid ref 'a\.\.b'"),
        ({"ref": "refs/heads/-x"}, "must not start with '-'"),
        ({"ref": "refs/heads/a b"}, "must not contain ' '"),
        ({"ref": "refs/heads/a\u202eb"}, "control, invisible"),
        ({"ref": "refs/heads/" + "x" * 5000}, "longer than 255 characters"),
        ({"after": AFTER.upper()}, "field 'after' must be 40 lowercase hex digits"),
        ({"after": AFTER[:-1]}, "field 'after'"),
        ({"after": "main"}, "field 'after'.*'main'"),
        ({"after": 1}, "field 'after'.*not int"),
        ({"after": None}, "field 'after'.*not null"),
        ({"deleted": "false"}, "field 'deleted' must be true or false"),
        ({"repository": None}, "field 'repository' must be an object, not null"),
        ({"repository": "acme/parser"}, "field 'repository' must be an object, not str"),
        ({"repository": {}}, "field 'repository' names no repository"),
        ({"repository": {"full_name": 3}}, "field 'repository.full_name'"),
        ({"repository": {"full_name": ""}}, "field 'repository.full_name'"),
    ],
)
def test_malformed_github_fields_are_refused_with_400_naming_the_field(
    changes: dict[str, Any], match: str
) -> None:
    with pytest.raises(WebhookRefused, match=match) as info:
        github(github_push(**changes))
    assert info.value.status == 400
    assert len(str(info.value)) < 400


def test_a_missing_ref_names_the_field() -> None:
    payload = github_push()
    del payload["ref"]
    with pytest.raises(WebhookRefused, match="field 'ref'"):
        github(payload)


@pytest.mark.parametrize(
    "delivery",
    [None, "", "a b", "x" * 129, "id\n", "ü", "<script>", "a/b"],
)
def test_bad_delivery_ids_are_refused_with_400(delivery: str | None) -> None:
    with pytest.raises(WebhookRefused, match="X-GitHub-Delivery") as info:
        parse_github_push("push", delivery, body(github_push()))
    assert info.value.status == 400


def test_delivery_ids_may_use_the_documented_alphabet() -> None:
    delivery = "Ab0._:-" + "x" * 121
    push = parse_github_push("push", delivery, body(github_push()))
    assert push is not None
    assert push.delivery == delivery


def test_a_body_over_the_limit_is_refused_with_413_before_anything_else() -> None:
    raw = b" " * (MAX_BODY_BYTES - 2) + b"{}"
    with pytest.raises(WebhookRefused, match="field 'ref'"):
        parse_github_push("push", DELIVERY, raw)
    for parse in (parse_github_push, parse_gitlab_push):
        with pytest.raises(WebhookRefused, match="larger than") as info:
            parse(None, None, raw + b" ")
        assert info.value.status == 413


# --- GitLab pushes ----------------------------------------------------------------------


def test_a_gitlab_push_hook_is_parsed() -> None:
    assert gitlab(gitlab_push()) == Push(
        forge="gitlab",
        delivery=GITLAB_DELIVERY,
        repo_urls=(
            "https://gitlab.example.com/mike/diaspora.git",
            "git@gitlab.example.com:mike/diaspora.git",
            "https://gitlab.example.com/mike/diaspora",
        ),
        repo_name="mike/diaspora",
        branch="main",
        commit=AFTER,
        deleted=False,
    )


def test_other_gitlab_events_are_ignored() -> None:
    tag = gitlab_push(object_kind="tag_push", ref="refs/tags/v1.0.0")
    assert gitlab(tag, event="Tag Push Hook") is None
    assert gitlab(gitlab_push(), event="System Hook") is None
    assert gitlab({"object_kind": "merge_request"}, event="Merge Request Hook") is None
    with pytest.raises(WebhookRefused, match="X-Gitlab-Event header is missing"):
        gitlab(gitlab_push(), event=None)


def test_a_gitlab_branch_deletion_is_marked_deleted() -> None:
    push = gitlab(gitlab_push(after="0" * 40, checkout_sha=None, commits=[]))
    assert push is not None
    assert push.deleted


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"object_kind": "tag_push"}, "field 'object_kind' must be 'push', not 'tag_push'"),
        ({"object_kind": None}, "field 'object_kind' must be 'push', not null"),
        ({"ref": {"x": 1}}, "field 'ref' must be a string, not dict"),
        ({"ref": "refs/heads/main.lock"}, "must not end with '.lock'"),
        ({"after": "g" * 40}, "field 'after'"),
        ({"project": []}, "field 'project' must be an object, not list"),
        ({"project": {"web_url": None}}, "field 'project' names no repository"),
        ({"project": {"path_with_namespace": ["a"]}}, "field 'project.path_with_namespace'"),
    ],
)
def test_malformed_gitlab_fields_are_refused_with_400(changes: dict[str, Any], match: str) -> None:
    with pytest.raises(WebhookRefused, match=match) as info:
        gitlab(gitlab_push(**changes))
    assert info.value.status == 400


def test_a_bad_gitlab_delivery_names_the_header() -> None:
    with pytest.raises(WebhookRefused, match="X-Gitlab-Event-UUID"):
        parse_gitlab_push("Push Hook", "no spaces allowed", body(gitlab_push()))


# --- Properties: hostile input only ever yields WebhookRefused -------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
# Values for the fields the parsers read, mixing the right shape with hostile ones.
field_values = (
    json_values
    | st.sampled_from([AFTER, "0" * 40, "refs/heads/main", "refs/tags/v1", "refs/heads/a..b"])
    | st.builds(lambda s: "refs/heads/" + s, st.text())
    | st.text(alphabet="0123456789abcdefABCDEF", min_size=39, max_size=41)
)
repositories = st.dictionaries(
    st.sampled_from(
        ["full_name", "clone_url", "ssh_url", "path_with_namespace", "web_url", "git_http_url"]
    ),
    field_values,
)
push_shaped = st.fixed_dictionaries(
    {},
    optional={
        "ref": field_values,
        "after": field_values,
        "deleted": field_values,
        "object_kind": st.sampled_from(["push"]) | json_values,
        "repository": repositories | json_values,
        "project": repositories | json_values,
    },
)


def parse_both(delivery: str | None, raw: bytes) -> None:
    """Run both parsers; each may return a well-formed result or refuse, nothing else."""
    for parse, event in ((parse_github_push, "push"), (parse_gitlab_push, "Push Hook")):
        status = None
        try:
            push = parse(event, delivery, raw)
        except WebhookRefused as exc:
            status, push = exc.status, None
        assert status in (None, 400, 413)
        if push is not None:
            assert validate_ref(push.branch) == push.branch
            assert len(push.commit) == 40
            assert all(len(url) <= 2048 and url.isprintable() for url in push.repo_urls)
            assert push.deleted or push.commit != "0" * 40


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=st.binary(max_size=512), delivery=st.none() | st.text(max_size=10))
def test_arbitrary_bytes_only_ever_raise_webhook_refused(raw: bytes, delivery: str | None) -> None:
    parse_both(delivery, raw)
    parse_both(DELIVERY, raw)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=json_values | push_shaped)
def test_arbitrary_json_only_ever_raises_webhook_refused(value: object) -> None:
    parse_both(DELIVERY, json.dumps(value).encode("utf-8"))


@settings(max_examples=200, deadline=None)
@given(secret=st.binary(max_size=40), raw=st.binary(max_size=64), header=st.none() | st.text())
def test_arbitrary_signature_headers_only_ever_raise_webhook_refused(
    secret: bytes, raw: bytes, header: str | None
) -> None:
    statuses = []
    try:
        verify_github_signature(secret, raw, header)
    except WebhookRefused as exc:
        statuses.append(exc.status)
    try:
        verify_gitlab_token(secret, header)
    except WebhookRefused as exc:
        statuses.append(exc.status)
    assert set(statuses) <= {401}

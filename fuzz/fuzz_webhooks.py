#!/usr/bin/env python3
"""Fuzz fuzzorch's webhook parsers and signature checks with atheris.

    .venv/bin/python fuzz/fuzz_webhooks.py -runs=20000 [corpus_dir]

Webhook headers and bodies come from anyone who can reach the server, so the parsers and the
signature checks may only refuse with WebhookRefused (400, 401 or 413), and a push they accept
must carry a valid branch, a full commit id and bounded URLs. The first input byte picks how
the rest is used: as a raw body, as values spliced into a realistic push payload (so that
mutations get past the JSON and reach every field check), or as a signature header.
"""

import json
import sys

import atheris

with atheris.instrument_imports(include=["orchestrator", "workers"]):
    from orchestrator.webhooks import (
        MAX_URL_CHARS,
        WebhookRefused,
        parse_github_push,
        parse_gitlab_push,
        verify_github_signature,
        verify_gitlab_token,
    )
    from workers.gitrefs import validate_ref

SECRET = b"It's a Secret to Everybody"
DELIVERY = "72d3162e-cc78-11e3-81ab-4c9367dc0958"
SHA = "1481a2de7b2a7d02428ad93446ab166be7793fbb"
EVENTS = ["push", "Push Hook", "ping", "Tag Push Hook", "", "PUSH"]
FIELDS = ["ref", "after", "deleted", "object_kind", "repository", "project"]
REPO_FIELDS = [
    "full_name",
    "clone_url",
    "ssh_url",
    "html_url",
    "path_with_namespace",
    "git_http_url",
    "web_url",
]
STRINGS = ["refs/heads/", "refs/tags/", SHA, "0" * 40, "push", "https://h/x.git", "main"]


def _check(condition: bool, what: str) -> None:
    if not condition:
        raise AssertionError(what)


def _value(fdp: atheris.FuzzedDataProvider, depth: int = 0) -> object:
    kind = fdp.ConsumeIntInRange(0, 8)
    value: object = fdp.ConsumeUnicode(24)
    if kind == 0:
        value = None
    elif kind == 1:
        value = fdp.ConsumeBool()
    elif kind == 2:
        value = fdp.ConsumeInt(8)
    elif kind == 3:
        value = fdp.PickValueInList(STRINGS) + fdp.ConsumeUnicode(12)
    elif kind == 4 and depth < 3:
        value = [_value(fdp, depth + 1) for _ in range(fdp.ConsumeIntInRange(0, 3))]
    elif kind == 5 and depth < 3:
        value = {
            fdp.PickValueInList(REPO_FIELDS): _value(fdp, depth + 1)
            for _ in range(fdp.ConsumeIntInRange(0, 4))
        }
    return value


def _payload(fdp: atheris.FuzzedDataProvider) -> bytes:
    payload: dict[str, object] = {
        "ref": "refs/heads/main",
        "after": SHA,
        "object_kind": "push",
        "repository": {"full_name": "a/b", "clone_url": "https://h/a/b.git"},
        "project": {"path_with_namespace": "a/b", "git_http_url": "https://h/a/b.git"},
    }
    for _ in range(fdp.ConsumeIntInRange(0, 4)):
        field = fdp.PickValueInList(FIELDS)
        if fdp.ConsumeBool():
            payload.pop(field, None)
        else:
            payload[field] = _value(fdp)
    return json.dumps(payload).encode("utf-8", "surrogatepass")


def _parse(raw: bytes, event: str, delivery: str | None) -> None:
    for parse in (parse_github_push, parse_gitlab_push):
        try:
            push = parse(event, delivery, raw)
        except WebhookRefused as exc:
            _check(exc.status in (400, 413), f"status {exc.status} from a parser")
            continue
        if push is None:
            continue
        _check(validate_ref(push.branch) == push.branch, "invalid branch accepted")
        _check(len(push.commit) == 40, "short commit accepted")
        _check(all(len(u) <= MAX_URL_CHARS for u in push.repo_urls), "long URL kept")
        _check(push.deleted or push.commit != "0" * 40, "deletion not marked")


def _verify(fdp: atheris.FuzzedDataProvider) -> None:
    header = fdp.ConsumeUnicode(80) if fdp.ConsumeBool() else None
    body = fdp.ConsumeBytes(64)
    refusals = []
    try:
        verify_github_signature(SECRET, body, header)
    except WebhookRefused as exc:
        refusals.append(exc)
    try:
        verify_gitlab_token(SECRET, header)
    except WebhookRefused as exc:
        refusals.append(exc)
    for refusal in refusals:
        _check(refusal.status == 401, f"status {refusal.status} from a signature check")
        _check(SECRET.decode() not in str(refusal), "secret in a message")


def TestOneInput(data: bytes) -> None:
    """Feed one input to the webhook code; only WebhookRefused may come out."""
    if not data:
        return
    mode, rest = data[0] % 3, data[1:]
    if mode == 0:
        _parse(rest, "push", DELIVERY)
        _parse(rest, "Push Hook", DELIVERY)
        return
    fdp = atheris.FuzzedDataProvider(rest)
    if mode == 1:
        event = fdp.PickValueInList(EVENTS)
        delivery = DELIVERY if fdp.ConsumeBool() else fdp.ConsumeUnicode(8)
        _parse(_payload(fdp), event, delivery)
    else:
        _verify(fdp)


if __name__ == "__main__":
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()

"""The campaign summary as a SARIF 2.1.0 log, for code-scanning dashboards.

Pure: a summary (DESIGN.md, "JSON summary") and the crash groups' parsed stacks in, one
JSON-ready SARIF log out, with one rule per crash signature and one result per group.

Every text in a summary came out of fuzzed code, so nothing is trusted: a field of the
wrong type counts as absent, texts lose control, bidi and other invisible characters, are
bounded, and are escaped for SARIF's plain-text messages (whose ``[text](target)`` is an
embedded link), and every path is percent-encoded into a well-formed URI reference. The
log stays valid JSON and valid against the OASIS schema whatever the input.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple
from urllib.parse import quote

Frame = Mapping[str, Any]
"""``{"path": str, "line": int | None, "function": str}``; repository paths are relative."""

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
SRCROOT = "SRCROOT"
FINGERPRINT = "fuzzorchSignature/v1"
UNSIGNED_RULE = "fuzzorch/unsigned"
"""The rule of groups whose signature is not 40 hex digits: there is nothing to key them on."""

_MESSAGE_LIMIT = 1000
_FIELD_LIMIT = 200
_PATH_LIMIT = 1024
_MAX_LINE = 10**9
# The innermost frames of a stack that a code flow keeps: a RecursionError has ~1000.
_MAX_FLOW = 200

_LEVELS = {
    "exception": "error",
    "signal": "error",
    "timeout": "warning",
    "oom": "warning",
    "exit": "warning",
}
_QUIET_STATUSES = frozenset({"flaky", "fixed"})
_KIND_NAMES = {
    "exception": "UncaughtException",
    "signal": "Signal",
    "timeout": "Timeout",
    "oom": "OutOfMemory",
    "exit": "UnexpectedExit",
}

_SIGNATURE = re.compile(r"[0-9a-f]{40}")
_SHA = re.compile(r"[0-9a-f]{7,64}")
# An absolute URI without query or fragment (a base URI keeps neither), only legal characters.
_BASE_URL = re.compile(
    r"[A-Za-z][A-Za-z0-9+.-]*://(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/]|%[0-9A-Fa-f]{2})+"
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
# Invisible format characters: bidi overrides ("Trojan Source"), zero-width characters and
# Unicode tags can make a displayed text differ from what it is.
_INVISIBLE = re.compile(
    r"[\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb"
    r"\U000e0000-\U000e007f]"
)
_NOT_NAME = re.compile(r"[^A-Za-z0-9_]")
_EMBEDDED_LINK = re.compile(r"([\\\[\]])")


class _Frame(NamedTuple):
    path: str
    line: int | None
    function: str


def sarif_report(
    summary: Mapping[str, Any],
    stacks: Mapping[str, Sequence[Frame]],
    *,
    tool_version: str,
    repo_uri: str | None = None,
) -> dict[str, Any]:
    """The summary as a SARIF 2.1.0 log with one run.

    ``stacks`` maps a crash group's id (or, failing that, its signature) to its stack,
    outermost frame first. ``repo_uri`` is the checkout's URL or absolute local path; it
    becomes the ``SRCROOT`` base of repository paths.
    """
    base = _base_uri(repo_uri) if repo_uri is not None else None
    campaign = _mapping(_get(summary, "campaign"))
    rules: list[dict[str, Any]] = []
    rule_index: dict[str, int] = {}
    results: list[dict[str, Any]] = []
    for crash in _crashes(summary):
        rule_id = _rule_id(crash)
        if rule_id not in rule_index:
            rule_index[rule_id] = len(rules)
            rules.append(_rule(rule_id, crash))
        frames = _frames(_stack_of(stacks, crash))
        results.append(_result(crash, rule_id, rule_index[rule_id], frames))
    driver = {"name": "fuzzorch", "version": _text(tool_version, 100), "rules": rules}
    run: dict[str, Any] = {
        "tool": {"driver": driver},
        "automationDetails": {"id": _automation_id(campaign)},
        "results": results,
    }
    if base is not None and repo_uri is not None:
        run["originalUriBaseIds"] = {SRCROOT: {"uri": base}}
        run["versionControlProvenance"] = [_provenance(campaign, repo_uri, base)]
    return {"$schema": SCHEMA_URI, "version": "2.1.0", "runs": [run]}


def _base_uri(repo_uri: str) -> str:
    if _BASE_URL.fullmatch(repo_uri):
        uri = repo_uri
    elif repo_uri.startswith("/"):
        # surrogateescape: a POSIX path that is not UTF-8 keeps its original bytes.
        uri = "file://" + quote(repo_uri, safe="/", errors="surrogateescape")
    else:
        raise ValueError(
            f"repo_uri must be an absolute URL (without query or fragment) or an absolute "
            f"local path, not {repo_uri!r}"
        )
    return uri if uri.endswith("/") else uri + "/"


def _provenance(campaign: Mapping[str, Any], repo_uri: str, base: str) -> dict[str, Any]:
    # A URL is the repository's own address; a local checkout is named by its file:// URI.
    details: dict[str, Any] = {"repositoryUri": repo_uri if _BASE_URL.fullmatch(repo_uri) else base}
    commit = _sha(campaign.get("commit"))
    if commit is not None:
        details["revisionId"] = commit
    branch = _text(campaign.get("branch"), _FIELD_LIMIT)
    if branch:
        details["branch"] = branch
    return details


def _automation_id(campaign: Mapping[str, Any]) -> str:
    # Code scanning takes what precedes the last "/" as the category, so a branch may hold
    # "/" but the campaign id (the run) may not.
    repo = _text(campaign.get("repo"), _FIELD_LIMIT) or "unknown"
    branch = _text(campaign.get("branch"), _FIELD_LIMIT) or "unknown"
    run = _text(campaign.get("id"), _FIELD_LIMIT).replace("/", "_") or "unknown"
    return f"fuzzorch/{repo}/{branch}/{run}"


def _rule_id(crash: Mapping[str, Any]) -> str:
    signature = crash.get("signature")
    if isinstance(signature, str) and _SIGNATURE.fullmatch(signature):
        return signature
    return UNSIGNED_RULE


def _rule(rule_id: str, crash: Mapping[str, Any]) -> dict[str, Any]:
    if rule_id == UNSIGNED_RULE:
        return {
            "id": rule_id,
            "name": "UnsignedCrash",
            "shortDescription": {"text": "Crash groups without a valid signature"},
        }
    kind = _text(crash.get("kind"), 20)
    exception_type = _text(crash.get("exception_type"), _FIELD_LIMIT) or None
    return {
        "id": rule_id,
        "name": _rule_name(kind, exception_type),
        "shortDescription": {"text": _title(crash)},
        "defaultConfiguration": {"level": _LEVELS.get(kind, "warning")},
        "properties": {"kind": kind or None, "exception_type": exception_type},
    }


def _rule_name(kind: str, exception_type: str | None) -> str:
    """``IndexError``, ``SignalSIGSEGV``, ``Timeout``: an identifier from kind and type."""
    base = _KIND_NAMES.get(kind, "Crash")
    leaf = _NOT_NAME.sub("", (exception_type or "").rpartition(".")[2])[:64]
    if kind == "exception" and leaf[:1].isalpha():
        return leaf[0].upper() + leaf[1:]
    if kind == "signal" and leaf:
        return base + leaf
    return base


def _result(
    crash: Mapping[str, Any], rule_id: str, rule_index: int, frames: list[_Frame]
) -> dict[str, Any]:
    location = _primary_location(crash, frames)
    result: dict[str, Any] = {
        "ruleId": rule_id,
        "ruleIndex": rule_index,
        "level": _level(crash),
        "message": {"text": _message_text(crash)},
        "locations": [location] if location is not None else [],
    }
    if rule_id != UNSIGNED_RULE:
        result["partialFingerprints"] = {FINGERPRINT: rule_id}
    if frames:
        result["codeFlows"] = [_code_flow(frames)]
    result["properties"] = _result_properties(crash)
    return result


def _level(crash: Mapping[str, Any]) -> str:
    if _text(crash.get("status"), 20) in _QUIET_STATUSES:
        return "note"
    return _LEVELS.get(_text(crash.get("kind"), 20), "warning")


def _title(crash: Mapping[str, Any]) -> str:
    title = _text(crash.get("title"), _MESSAGE_LIMIT)
    if title:
        return title
    harness = _text(crash.get("harness"), _FIELD_LIMIT)
    return f"Crash in {harness}" if harness else "Crash"


def _message_text(crash: Mapping[str, Any]) -> str:
    text = _title(crash)
    first_line = _first_line(crash.get("message"))
    if first_line:
        text = f"{text}: {first_line}"
    return _plain_message(text)


def _result_properties(crash: Mapping[str, Any]) -> dict[str, Any]:
    new = crash.get("new")
    return {
        "crashId": _text(crash.get("id"), _FIELD_LIMIT) or None,
        "status": _text(crash.get("status"), 20) or None,
        "new": new if isinstance(new, bool) else None,
        "reliability": _fraction(crash.get("reliability")),
        "introducedCommit": _sha(_mapping(crash.get("introduced")).get("commit")),
        "fixedCommit": _sha(_mapping(crash.get("fixed")).get("commit")),
        "testcase": _text(crash.get("testcase"), _PATH_LIMIT) or None,
        "minimized": _text(crash.get("minimized"), _PATH_LIMIT) or None,
        "harness": _text(crash.get("harness"), _PATH_LIMIT) or None,
    }


def _primary_location(crash: Mapping[str, Any], frames: list[_Frame]) -> dict[str, Any] | None:
    """The top repository frame, else blame, else the first summary frame, else the harness."""
    for frame in reversed(frames):
        if frame.line is not None and _in_repo(frame.path):
            return _location(frame.path, frame.line)
    blame = _mapping(crash.get("blame"))
    candidates = [(_path(blame.get("path")), _line(blame.get("line")))]
    summary_frames = crash.get("frames")
    if isinstance(summary_frames, list) and summary_frames:
        first = summary_frames[0]
        candidates.append(
            (_path(first.rpartition(":")[0] if isinstance(first, str) else None), None)
        )
    # Code scanning needs a location; the harness file is where the crash reproduces.
    harness = crash.get("harness")
    candidates.append(
        (_path(harness.partition("::")[0] if isinstance(harness, str) else None), None)
    )
    for path, line in candidates:
        if _in_repo(path):
            return _location(path, line)
    return None


def _location(path: str, line: int | None) -> dict[str, Any]:
    physical: dict[str, Any] = {"artifactLocation": _artifact(path)}
    if line is not None:
        physical["region"] = {"startLine": line}
    return {"physicalLocation": physical}


def _artifact(path: str) -> dict[str, Any]:
    if _in_repo(path):
        return {"uri": quote(path, safe="/"), "uriBaseId": SRCROOT}
    return {"uri": "file://" + quote(path, safe="/")}


def _code_flow(frames: list[_Frame]) -> dict[str, Any]:
    kept = frames[-_MAX_FLOW:]
    flow: dict[str, Any] = {"threadFlows": [{"locations": [_flow_step(f) for f in kept]}]}
    if len(kept) < len(frames):
        flow["message"] = {"text": f"{len(frames) - len(kept)} outer frames omitted"}
    return flow


def _flow_step(frame: _Frame) -> dict[str, Any]:
    if _in_repo(frame.path) or frame.path.startswith("/"):
        location = _location(frame.path, frame.line)
        text = frame.function
    else:
        # "<frozen importlib._bootstrap>", "<string>": nothing a viewer could open.
        location, text = {}, f"{frame.function} ({frame.path})" if frame.path else frame.function
    location["message"] = {"text": _plain_message(text)}
    return {"location": location}


def _stack_of(stacks: object, crash: Mapping[str, Any]) -> object:
    # Typed loosely on purpose: callers hand over what triage parsed from hostile output.
    if not isinstance(stacks, Mapping):
        return None
    for key in (crash.get("id"), crash.get("signature")):
        if isinstance(key, str) and key in stacks:
            return stacks[key]
    return None


def _frames(stack: object) -> list[_Frame]:
    if not isinstance(stack, Sequence) or isinstance(stack, str | bytes):
        return []
    frames = []
    for entry in stack:
        if isinstance(entry, Mapping):
            function = _text(entry.get("function"), _FIELD_LIMIT) or "?"
            frames.append(_Frame(_path(entry.get("path")), _line(entry.get("line")), function))
    return frames


def _in_repo(path: str) -> bool:
    """Whether ``path`` names a file under the repository root (relative, not escaping it)."""
    if not path or path.startswith(("/", "\\", "<", "~")) or re.match(r"[A-Za-z]:", path):
        return False
    return ".." not in re.split(r"[/\\]", path)


def _path(value: object) -> str:
    return _text(value, _PATH_LIMIT) if isinstance(value, str) else ""


def _line(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= _MAX_LINE:
        return value
    return None


def _fraction(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    # Comparisons are false for NaN, and an int is never turned into a float that overflows.
    return float(value) if 0 <= value <= 1 else None


def _sha(value: object) -> str | None:
    return value if isinstance(value, str) and _SHA.fullmatch(value) else None


def _first_line(value: object) -> str:
    if not isinstance(value, str):
        return ""
    lines = value[: _MESSAGE_LIMIT * 4].splitlines()
    return _text(lines[0], _MESSAGE_LIMIT) if lines else ""


def _text(value: object, limit: int) -> str:
    """``value`` as one bounded line of visible text; empty unless it is a string."""
    if not isinstance(value, str):
        return ""
    # Bound before cleaning so that a megabyte of input costs no more than a short one.
    text = _SURROGATE.sub("\ufffd", value[: limit * 4])
    text = _CONTROL.sub(" ", _INVISIBLE.sub("", text))
    return _bound(" ".join(text.split()), limit)


def _bound(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _plain_message(text: str) -> str:
    # SARIF reads "[text](target)" in a plain-text message as a link: escape the brackets
    # (and the escape character itself) so that hostile text stays text.
    escaped = _EMBEDDED_LINK.sub(r"\\\1", text)
    if len(escaped) <= _MESSAGE_LIMIT:
        return escaped
    cut = escaped[: _MESSAGE_LIMIT - 1]
    if (len(cut) - len(cut.rstrip("\\"))) % 2:
        cut = cut[:-1]  # never end on half an escape
    return cut + "…"


def _crashes(summary: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    crashes = _get(summary, "crashes")
    if not isinstance(crashes, list):
        return []
    return [crash for crash in crashes if isinstance(crash, Mapping)]


def _get(mapping: object, key: str) -> object:
    return mapping.get(key) if isinstance(mapping, Mapping) else None


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}

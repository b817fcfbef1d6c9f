"""SARIF 2.1.0 export: valid against the OASIS schema, on real shapes and on hostile input."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.reports.sarif import FINGERPRINT, SCHEMA_URI, UNSIGNED_RULE, sarif_report

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[2] / "data" / "sarif-schema-2.1.0.json").read_text("utf-8")
)

COMMIT = "0123456789abcdef0123456789abcdef01234567"
INTRODUCED = "1111111111111111111111111111111111111111"
FIXED = "2222222222222222222222222222222222222222"
SIG_INDEX = "a" * 40
SIG_TIMEOUT = "b" * 40
SIG_ROUNDTRIP = "c" * 40
SIG_FLAKY = "d" * 40

# RFC 3986, enough to catch a path that was not percent-encoded: legal characters only, a
# scheme for "uri", and no ":" in the first segment of a relative reference.
_URI_CHARS = re.compile(r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/?#\[\]]|%[0-9A-Fa-f]{2})*")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
FORMATS = jsonschema.FormatChecker(formats=())


def _is_uri_reference(value: object) -> bool:
    if not isinstance(value, str) or not _URI_CHARS.fullmatch(value):
        return False
    return bool(_SCHEME.match(value)) or ":" not in value.split("/")[0]


def _is_uri(value: object) -> bool:
    return _is_uri_reference(value) and bool(_SCHEME.match(str(value)))


FORMATS.checks("uri-reference")(_is_uri_reference)
FORMATS.checks("uri")(_is_uri)
VALIDATOR = jsonschema.Draft4Validator(SCHEMA, format_checker=FORMATS)


def valid(log: dict[str, Any]) -> dict[str, Any]:
    """``log`` after checking it against the schema and as strict, encodable JSON."""
    VALIDATOR.validate(log)
    text = json.dumps(log, allow_nan=False, ensure_ascii=False)
    text.encode("utf-8")  # a lone surrogate would fail here
    assert json.loads(text) == log
    return log


def campaign(**changes: Any) -> dict[str, Any]:
    """The campaign section of a summary."""
    return {
        "id": "c-42",
        "repo": "demo",
        "branch": "release/1.2",
        "commit": COMMIT,
        "status": "done",
        "started_at": "2024-05-01T10:00:00+00:00",
        "finished_at": "2024-05-01T11:00:00+00:00",
    } | changes


def crash(**changes: Any) -> dict[str, Any]:
    """A crash group as the summary carries it, triaged."""
    return {
        "id": "g-1",
        "signature": SIG_INDEX,
        "title": "IndexError in unescape (pkg/parser.py)",
        "kind": "exception",
        "exception_type": "IndexError",
        "message": "string index out of range\nsecond line",
        "frames": ["pkg/parser.py:unescape", "pkg/parser.py:parse"],
        "harness": "fuzz/fuzz_parse.py",
        "new": True,
        "status": "open",
        "found_after_s": 12.5,
        "reliability": 1.0,
        "introduced": {
            "commit": INTRODUCED,
            "last_good": COMMIT,
            "confidence": "high",
            "steps": 5,
            "note": None,
        },
        "fixed": None,
        "blame": {
            "commit": INTRODUCED,
            "path": "pkg/parser.py",
            "line": 27,
            "author": "A. Dev",
            "date": "2024-04-30",
            "summary": "faster unescape",
        },
        "testcase": "crashes/demo/0123456789abcdef/" + "e" * 40,
        "minimized": "minimized/demo/0123456789abcdef/" + "f" * 40,
    } | changes


def summary(*crashes: dict[str, Any], **campaign_changes: Any) -> dict[str, Any]:
    """A schema-1 summary holding ``crashes``."""
    return {
        "schema": 1,
        "campaign": campaign(**campaign_changes),
        "harnesses": [
            {
                "name": "fuzz/fuzz_parse.py",
                "kind": "atheris",
                "execs": 1000,
                "exec_per_s": 100.0,
                "coverage": 50,
                "corpus_size": 10,
                "crashes": 1,
                "status": "crashed",
            }
        ],
        "crashes": list(crashes),
        "report": None,
    }


ATHERIS_STACK: list[dict[str, Any]] = [
    {"path": "fuzz/fuzz_parse.py", "line": 12, "function": "TestOneInput"},
    {"path": "pkg/parser.py", "line": 40, "function": "parse"},
    {"path": "pkg/parser.py", "line": 27, "function": "unescape"},
    {"path": "/usr/lib/python3.11/re/__init__.py", "line": 185, "function": "sub"},
    {"path": "<frozen importlib._bootstrap>", "line": None, "function": "_call_with_frames"},
]

TIMEOUT = crash(
    id="g-2",
    signature=SIG_TIMEOUT,
    title="Timeout in fuzz/fuzz_slow.py",
    kind="timeout",
    exception_type=None,
    message=None,
    frames=[],
    harness="fuzz/fuzz_slow.py",
    introduced=None,
    blame={"commit": INTRODUCED, "path": "pkg/slow.py", "line": 9, "author": "B"},
)
TIMEOUT_STACK: list[dict[str, Any]] = [
    {"path": "/venv/lib/python3.11/site-packages/atheris/fuzz.py", "line": 3, "function": "Fuzz"},
    {"path": "/usr/lib/python3.11/json/decoder.py", "line": None, "function": "raw_decode"},
]

ROUNDTRIP = crash(
    id="g-3",
    signature=SIG_ROUNDTRIP,
    title="AssertionError in test_roundtrip (tests/test_codec.py)",
    exception_type="AssertionError",
    message="assert b'' == b'\\x00'",
    frames=["tests/test_codec.py:test_roundtrip"],
    harness="tests/test_codec.py::test_roundtrip",
    new=False,
    status="fixed",
    fixed={"commit": FIXED, "last_crashing": INTRODUCED, "confidence": "high"},
    blame=None,
)

FLAKY = crash(
    id="g-4",
    signature=SIG_FLAKY,
    title="SIGSEGV in native code",
    kind="signal",
    exception_type="SIGSEGV",
    message=None,
    frames=[],
    harness="fuzz/fuzz_native.py",
    status="flaky",
    reliability=0.25,
    introduced=None,
    blame=None,
)


def only_run(log: dict[str, Any]) -> dict[str, Any]:
    """The single run of a log."""
    assert len(log["runs"]) == 1
    run: dict[str, Any] = log["runs"][0]
    return run


def results_by_rule(log: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Results keyed by rule id."""
    return {r["ruleId"]: r for r in only_run(log)["results"]}


def report(*crashes: dict[str, Any], stacks: dict[str, Any] | None = None) -> dict[str, Any]:
    """The validated SARIF of a summary of ``crashes``."""
    return valid(
        sarif_report(
            summary(*crashes),
            stacks if stacks is not None else {"g-1": ATHERIS_STACK, "g-2": TIMEOUT_STACK},
            tool_version="0.1.0",
            repo_uri="https://git.example.com/org/demo",
        )
    )


def test_the_envelope_names_the_schema_the_tool_and_the_campaign() -> None:
    log = report(crash(), TIMEOUT, ROUNDTRIP, FLAKY)
    assert log["$schema"] == SCHEMA_URI
    assert log["version"] == "2.1.0"
    run = only_run(log)
    assert run["tool"]["driver"]["name"] == "fuzzorch"
    assert run["tool"]["driver"]["version"] == "0.1.0"
    assert run["automationDetails"] == {"id": "fuzzorch/demo/release/1.2/c-42"}
    assert run["originalUriBaseIds"] == {"SRCROOT": {"uri": "https://git.example.com/org/demo/"}}
    assert run["versionControlProvenance"] == [
        {
            "repositoryUri": "https://git.example.com/org/demo",
            "revisionId": COMMIT,
            "branch": "release/1.2",
        }
    ]


def test_one_rule_per_signature_and_one_result_per_group() -> None:
    twin = crash(id="g-9", title="IndexError in unescape, again")
    log = report(crash(), TIMEOUT, twin, ROUNDTRIP, FLAKY)
    run = only_run(log)
    rule_ids = [rule["id"] for rule in run["tool"]["driver"]["rules"]]
    assert rule_ids == [SIG_INDEX, SIG_TIMEOUT, SIG_ROUNDTRIP, SIG_FLAKY]
    assert [(r["ruleId"], r["ruleIndex"]) for r in run["results"]] == [
        (SIG_INDEX, 0),
        (SIG_TIMEOUT, 1),
        (SIG_INDEX, 0),
        (SIG_ROUNDTRIP, 2),
        (SIG_FLAKY, 3),
    ]
    for result in run["results"]:
        assert result["partialFingerprints"] == {FINGERPRINT: result["ruleId"]}
        rule = run["tool"]["driver"]["rules"][result["ruleIndex"]]
        assert rule["id"] == result["ruleId"]


def test_rules_carry_a_name_the_title_and_the_kind() -> None:
    rules = only_run(report(crash(), TIMEOUT, FLAKY))["tool"]["driver"]["rules"]
    assert [(r["name"], r["shortDescription"]["text"]) for r in rules] == [
        ("IndexError", "IndexError in unescape (pkg/parser.py)"),
        ("Timeout", "Timeout in fuzz/fuzz_slow.py"),
        ("SignalSIGSEGV", "SIGSEGV in native code"),
    ]
    assert rules[0]["properties"] == {"kind": "exception", "exception_type": "IndexError"}
    assert rules[1]["properties"] == {"kind": "timeout", "exception_type": None}


@pytest.mark.parametrize(
    ("kind", "status", "level"),
    [
        ("exception", "open", "error"),
        ("signal", "open", "error"),
        ("timeout", "open", "warning"),
        ("oom", "wontfix", "warning"),
        ("exit", "open", "warning"),
        ("exception", "fixed", "note"),
        ("signal", "flaky", "note"),
        ("no-such-kind", "open", "warning"),
    ],
)
def test_the_level_follows_the_kind_and_quietens_for_flaky_and_fixed(
    kind: str, status: str, level: str
) -> None:
    (result,) = only_run(report(crash(kind=kind, status=status)))["results"]
    assert result["level"] == level


def test_the_message_is_the_title_and_the_first_line_of_the_message() -> None:
    results = results_by_rule(report(crash(), TIMEOUT))
    assert results[SIG_INDEX]["message"] == {
        "text": "IndexError in unescape (pkg/parser.py): string index out of range"
    }
    assert results[SIG_TIMEOUT]["message"] == {"text": "Timeout in fuzz/fuzz_slow.py"}


def test_the_location_is_the_innermost_repository_frame_with_a_line() -> None:
    (result,) = only_run(report(crash()))["results"]
    assert result["locations"] == [
        {
            "physicalLocation": {
                "artifactLocation": {"uri": "pkg/parser.py", "uriBaseId": "SRCROOT"},
                "region": {"startLine": 27},
            }
        }
    ]


def test_the_code_flow_is_the_stack_outermost_first() -> None:
    (result,) = only_run(report(crash()))["results"]
    (flow,) = result["codeFlows"]
    (thread,) = flow["threadFlows"]
    steps = [step["location"] for step in thread["locations"]]
    assert len(steps) == len(ATHERIS_STACK)
    assert [s["message"]["text"] for s in steps] == [
        "TestOneInput",
        "parse",
        "unescape",
        "sub",
        "_call_with_frames (<frozen importlib._bootstrap>)",
    ]
    assert steps[0]["physicalLocation"] == {
        "artifactLocation": {"uri": "fuzz/fuzz_parse.py", "uriBaseId": "SRCROOT"},
        "region": {"startLine": 12},
    }
    # Outside the repository: an absolute file URI and no base.
    assert steps[3]["physicalLocation"] == {
        "artifactLocation": {"uri": "file:///usr/lib/python3.11/re/__init__.py"},
        "region": {"startLine": 185},
    }
    assert "physicalLocation" not in steps[4]


def test_without_repository_frames_the_blame_locates_the_result() -> None:
    result = results_by_rule(report(TIMEOUT))[SIG_TIMEOUT]
    assert result["locations"][0]["physicalLocation"] == {
        "artifactLocation": {"uri": "pkg/slow.py", "uriBaseId": "SRCROOT"},
        "region": {"startLine": 9},
    }
    # The stack is still shown; a frame without a line has no region.
    steps = result["codeFlows"][0]["threadFlows"][0]["locations"]
    assert [s["location"]["physicalLocation"].get("region") for s in steps] == [
        {"startLine": 3},
        None,
    ]


def test_then_the_first_summary_frame_then_the_harness_file() -> None:
    by_frame = crash(blame=None, frames=["pkg/slow.py:spin"])
    (result,) = only_run(report(by_frame, stacks={}))["results"]
    assert result["locations"][0]["physicalLocation"] == {
        "artifactLocation": {"uri": "pkg/slow.py", "uriBaseId": "SRCROOT"}
    }
    assert "codeFlows" not in result
    by_harness = crash(blame=None, frames=[], harness="tests/test_codec.py::test_roundtrip")
    (result,) = only_run(report(by_harness, stacks={}))["results"]
    assert result["locations"][0]["physicalLocation"] == {
        "artifactLocation": {"uri": "tests/test_codec.py", "uriBaseId": "SRCROOT"}
    }


def test_a_fixed_hypothesis_crash_carries_its_triage_in_properties() -> None:
    result = results_by_rule(report(ROUNDTRIP))[SIG_ROUNDTRIP]
    assert result["level"] == "note"
    assert result["properties"] == {
        "crashId": "g-3",
        "status": "fixed",
        "new": False,
        "reliability": 1.0,
        "introducedCommit": INTRODUCED,
        "fixedCommit": FIXED,
        "testcase": ROUNDTRIP["testcase"],
        "minimized": ROUNDTRIP["minimized"],
        "harness": "tests/test_codec.py::test_roundtrip",
    }
    assert result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == (
        "tests/test_codec.py"
    )


def test_a_flaky_signal_is_a_note_with_its_reliability() -> None:
    result = results_by_rule(report(FLAKY))[SIG_FLAKY]
    assert result["level"] == "note"
    assert result["properties"]["reliability"] == 0.25
    assert result["properties"]["status"] == "flaky"


def test_stacks_may_be_keyed_by_signature() -> None:
    (result,) = only_run(report(crash(), stacks={SIG_INDEX: ATHERIS_STACK}))["results"]
    assert len(result["codeFlows"][0]["threadFlows"][0]["locations"]) == len(ATHERIS_STACK)


def test_a_local_checkout_becomes_a_file_uri_base() -> None:
    log = valid(
        sarif_report(summary(crash()), {}, tool_version="1", repo_uri="/srv/checkouts/my demo")
    )
    run = only_run(log)
    assert run["originalUriBaseIds"] == {"SRCROOT": {"uri": "file:///srv/checkouts/my%20demo/"}}
    assert run["versionControlProvenance"][0]["repositoryUri"] == (
        "file:///srv/checkouts/my%20demo/"
    )


def test_without_a_repo_uri_there_is_no_base_and_no_provenance() -> None:
    run = only_run(valid(sarif_report(summary(crash()), {}, tool_version="1")))
    assert "originalUriBaseIds" not in run
    assert "versionControlProvenance" not in run


@pytest.mark.parametrize(
    "repo_uri", ["relative/path", "https://h/x?q=1", "https://h/a b", "", "javascript:alert(1)"]
)
def test_a_repo_uri_that_is_neither_url_nor_absolute_path_is_refused(repo_uri: str) -> None:
    with pytest.raises(ValueError, match="repo_uri") as caught:
        sarif_report(summary(), {}, tool_version="1", repo_uri=repo_uri)
    assert repr(repo_uri) in str(caught.value)


def test_the_input_is_not_modified() -> None:
    original = summary(crash(), TIMEOUT)
    stacks = {"g-1": copy.deepcopy(ATHERIS_STACK)}
    before = copy.deepcopy((original, stacks))
    sarif_report(original, stacks, tool_version="1")
    assert (original, stacks) == before


HOSTILE_TEXT = "<script>alert(1)</script> [click](https://evil.example) \x00\x1b[31m\u202e\ud800"


def test_hostile_input_still_gives_valid_bounded_sarif() -> None:
    hostile = crash(
        id="g-<b>/x",
        signature="not a signature",
        title=HOSTILE_TEXT,
        message="M" * 1_000_000,
        kind=None,
        exception_type=["list"],
        frames=[None, 3],
        harness=None,
        new="yes",
        status=None,
        reliability=float("nan"),
        introduced={"commit": "; rm -rf /"},
        fixed="fixed",
        blame={"path": "../../etc/passwd", "line": -3},
        testcase=None,
    )
    del hostile["minimized"]
    stacks: dict[str, Any] = {
        "g-<b>/x": [
            {"path": "pkg/a b%zz:c?.py", "line": 10**12, "function": None},
            {"path": "pkg/ok.py", "line": True, "function": "f\n# heading"},
            {"path": "C:\\windows\\x.py", "line": 3, "function": "w"},
            {"path": "/abs/\x00\ud800/é.py", "line": 7, "function": "g"},
            "not a frame",
            {},
        ]
    }
    odd_campaign = {"id": "a/b", "repo": None, "branch": 7, "commit": "HEAD"}
    log = valid(
        sarif_report(
            {"campaign": odd_campaign, "crashes": [hostile, None, "x", {}]},
            stacks,
            tool_version="1\x00",
            repo_uri="/srv/demo",
        )
    )
    run = only_run(log)
    assert run["automationDetails"]["id"] == "fuzzorch/unknown/unknown/a_b"
    assert "revisionId" not in run["versionControlProvenance"][0]
    first, empty = run["results"]
    assert first["ruleId"] == empty["ruleId"] == UNSIGNED_RULE
    assert "partialFingerprints" not in first
    text = first["message"]["text"]
    assert len(text) <= 1000
    assert "\\[click\\](https://evil.example)" in text
    assert not re.search(r"[\x00-\x1f\u202e\ud800-\udfff]", json.dumps(log, ensure_ascii=False))
    assert first["locations"] == []  # no frame with a line, blame escapes the repository
    steps = first["codeFlows"][0]["threadFlows"][0]["locations"]
    assert len(steps) == 5  # "not a frame" is dropped, an empty frame is still a step
    assert steps[-1] == {"location": {"message": {"text": "?"}}}
    assert steps[0]["location"]["physicalLocation"]["artifactLocation"]["uri"] == (
        "pkg/a%20b%25zz%3Ac%3F.py"
    )
    assert first["properties"]["new"] is None
    assert first["properties"]["reliability"] is None
    assert first["properties"]["introducedCommit"] is None
    assert len(json.dumps(log)) < 20_000


def test_a_deep_recursion_keeps_the_innermost_frames() -> None:
    stack = [{"path": "pkg/r.py", "line": i + 1, "function": "recurse"} for i in range(1500)]
    (result,) = only_run(report(crash(), stacks={"g-1": stack}))["results"]
    (flow,) = result["codeFlows"]
    steps = flow["threadFlows"][0]["locations"]
    assert len(steps) == 200
    assert steps[-1]["location"]["physicalLocation"]["region"] == {"startLine": 1500}
    assert flow["message"] == {"text": "1300 outer frames omitted"}
    assert result["locations"][0]["physicalLocation"]["region"] == {"startLine": 1500}


# Arbitrary-ish values: what a tampered or buggy summary could hold in any field.
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.sampled_from(["exception", "timeout", "oom", "signal", "exit", "open", "fixed", "flaky"]),
    st.sampled_from([SIG_INDEX, COMMIT, "pkg/x.py", "/usr/lib/x.py", "../x", "<string>"]),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=8,
)
_CRASH_KEYS = sorted(crash())
_crashes = st.lists(
    st.dictionaries(st.sampled_from([*_CRASH_KEYS, "path", "line"]), _values, max_size=12),
    max_size=4,
)
_frames = st.lists(
    st.dictionaries(st.sampled_from(["path", "line", "function"]), _scalars) | _scalars,
    max_size=6,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    crashes=_crashes,
    campaign_fields=st.dictionaries(st.sampled_from(sorted(campaign())), _values),
    stacks=st.dictionaries(st.sampled_from(["g-1", SIG_INDEX, "x"]) | st.text(), _frames | _values),
    version=st.text(max_size=20),
)
def test_any_summary_gives_schema_valid_sarif(
    crashes: list[dict[str, Any]],
    campaign_fields: dict[str, Any],
    stacks: dict[str, Any],
    version: str,
) -> None:
    document = {"schema": 1, "campaign": campaign_fields, "crashes": crashes}
    log = valid(sarif_report(document, stacks, tool_version=version, repo_uri="/srv/r"))
    run = only_run(log)
    assert len(run["results"]) == len(crashes)
    for result in run["results"]:
        assert len(result["message"]["text"]) <= 1000


@settings(max_examples=200, deadline=None)
@given(title=st.text(), message=st.text(), path=st.text(), function=st.text())
def test_any_text_in_any_text_field_gives_schema_valid_sarif(
    title: str, message: str, path: str, function: str
) -> None:
    group = crash(title=title, message=message, blame={"path": path, "line": 1})
    stacks = {"g-1": [{"path": path, "line": 2, "function": function}]}
    valid(sarif_report(summary(group), stacks, tool_version="1", repo_uri="https://h/r"))


def test_a_bounded_message_never_ends_inside_an_escape() -> None:
    for title in ("[" * 2000, "a" + "[" * 2000, "\\" * 2001):
        (result,) = only_run(report(crash(title=title, message=None)))["results"]
        text = result["message"]["text"]
        assert len(text) <= 1000
        body = text.removesuffix("…")
        assert (len(body) - len(body.rstrip("\\"))) % 2 == 0

"""The triage contract: round trips, and hostile outcome documents refused by name."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harnesses.model import HarnessKind, HarnessOptions
from workers.contract import ContractError
from workers.triage_contract import (
    TriageCode,
    TriageOutcome,
    TriageSpec,
    TriageTask,
)

SHA = "a" * 40
OTHER = "b" * 40


INTRODUCED = {
    "commit": SHA, "last_good": OTHER, "confidence": "high", "steps": 5, "note": None,
    "skipped": [],
}  # fmt: skip
BLAME = {
    "commit": OTHER, "path": "calc/parse.py", "line": 8, "author": "a", "date": "2026-01-01",
    "summary": "s",
}  # fmt: skip


def _spec(**changes: Any) -> TriageSpec:
    fields: dict[str, Any] = {
        "job_id": "triage-1",
        "task": TriageTask.VERIFY,
        "repo": "calc",
        "source": "/src/calc",
        "group_id": "crash-1",
        "signature": "c" * 40,
        "harness": "fuzz/fuzz_parse.py",
        "kind": HarnessKind.ATHERIS,
        "path": "fuzz/fuzz_parse.py",
        "commit": SHA,
        "testcase_key": "crashes/calc/0123456789abcdef/" + "d" * 40,
        "options": HarnessOptions(max_len=64),
        "known_bad": (OTHER,),
        "introduced": OTHER,
        "reliability": 0.5,
        "harness_commit": OTHER,
        "campaign_id": "cmp-1",
    }
    fields.update(changes)
    return TriageSpec(**fields)


def _outcome_json(**changes: Any) -> dict[str, Any]:
    document = TriageOutcome(
        job_id="triage-1",
        attempt=1,
        group_id="crash-1",
        task=TriageTask.ANALYZE,
        code=TriageCode.OK,
        commit=SHA,
        runs=10,
        reproduced=7,
        introduced=INTRODUCED,
        blame=BLAME,
    ).to_json()
    document.update(changes)
    return document


def test_a_spec_round_trips() -> None:
    spec = _spec()
    assert TriageSpec.from_json(spec.to_json()) == spec


def test_an_outcome_round_trips_and_derives_reliability() -> None:
    outcome = TriageOutcome.from_json(_outcome_json())
    assert outcome.reliability == 0.7
    assert TriageOutcome.from_json(outcome.to_json()) == outcome


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"commit": "HEAD"}, "'HEAD'"),
        ({"introduced": OTHER + "x"}, "introduced"),
        ({"known_bad": ("--upload-pack=evil",)}, "--upload-pack=evil"),
        ({"runs": 0}, "runs=0"),
        ({"confirm_runs": 99}, "confirm_runs=99"),
    ],
)
def test_bad_specs_are_refused_naming_the_value(changes: dict[str, Any], named: str) -> None:
    with pytest.raises(ContractError, match=named.replace("+", r"\+")):
        _spec(**changes)


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"runs": 3, "reproduced": 4}, "reproduced=4 of runs=3"),
        ({"commit": "not-a-sha"}, "not-a-sha"),
        ({"introduced": {"commit": "$(rm -rf /)", "confidence": "high"}}, "introduced.commit"),
        ({"introduced": {"commit": SHA, "confidence": "sure"}}, "'sure'"),
        ({"introduced": {"commit": SHA, "confidence": "low", "steps": -1}}, "steps -1"),
        ({"fixed": ["not", "an", "object"]}, "fixed must be an object"),
        ({"blame": {"commit": SHA, "line": 0}}, "blame.line 0"),
        ({"task": "explode"}, "explode"),
        ({"schema": 2}, "unsupported schema 2"),
    ],
)
def test_hostile_outcomes_are_refused_naming_the_field(changes: dict[str, Any], named: str) -> None:
    with pytest.raises(ContractError, match=named.replace("(", r"\(").replace(")", r"\)")):
        TriageOutcome.from_json(_outcome_json(**changes))


def test_texts_from_a_worker_are_bounded() -> None:
    outcome = TriageOutcome.from_json(
        _outcome_json(
            detail="x" * 100_000,
            falsifying_example="y" * 1_000_000,
            introduced={"commit": SHA, "confidence": "low", "note": "z" * 100_000},
        )
    )
    assert len(outcome.detail or "") == 2000
    assert len(outcome.falsifying_example or "") == 64 * 1024
    assert len((outcome.introduced or {})["note"]) == 2000


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=50),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)


@given(st.dictionaries(st.sampled_from(sorted(_outcome_json())), _JSON, max_size=8))
def test_any_outcome_document_parses_or_is_refused_as_a_contract_error(
    changes: dict[str, Any],
) -> None:
    with contextlib.suppress(ContractError):
        TriageOutcome.from_json(_outcome_json(**changes))

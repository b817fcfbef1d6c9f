"""The job contract: JSON round trips, and malformed documents refused with the reason."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harnesses.model import HarnessKind, HarnessOptions
from workers.contract import (
    ContractError,
    CrashReport,
    Frame,
    JobSpec,
    Outcome,
    OutcomeCode,
    Stats,
)

SPEC = JobSpec(
    job_id="job-1",
    repo="parser",
    source="https://example.com/parser.git",
    commit="a" * 40,
    harness="tests/test_p.py::test_roundtrip",
    kind=HarnessKind.HYPOTHESIS,
    path="tests/test_p.py",
    options=HarnessOptions(max_len=64, timeout=2.0),
    install=("pip install -e .",),
    duration_s=30.0,
    seed=7,
    attempt=2,
    campaign_id="cmp-1",
)
CRASH = CrashReport(
    signature="b" * 40,
    canonical="exception|IndexError|pkg/p.py:f|||",
    kind="exception",
    exception_type="IndexError",
    message="string index out of range",
    title="IndexError in f (pkg/p.py)",
    frames=("pkg/p.py:f",),
    stack=(Frame("pkg/p.py", "f", 3), Frame("<frozen>", "g", None)),
    testcase_key="crashes/parser/0123456789abcdef/" + "c" * 40,
    found_after_s=1.5,
    count=3,
)


def test_a_spec_survives_json() -> None:
    text = json.dumps(SPEC.to_json())
    assert JobSpec.from_json(json.loads(text)) == SPEC


def test_an_outcome_survives_json() -> None:
    outcome = Outcome(
        "job-1",
        2,
        OutcomeCode.CRASHED,
        stats=Stats(execs=10, exec_per_s=5.0, coverage=3, features=4, corpus_size=2, wall_s=2.0),
        crashes=(CRASH,),
        new_corpus_units=2,
        protections={"method": "bwrap", "network_isolated": True},
        log_key="logs/cmp-1/job-1-2.txt",
        detail=None,
    )
    assert Outcome.from_json(json.loads(json.dumps(outcome.to_json()))) == outcome


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"schema": 2}, "unsupported schema 2"),
        ({"kind": "libfuzzer"}, "libfuzzer"),
        ({"commit": 5}, "commit must be a string"),
        ({"runs": 10}, "exactly one of duration_s and runs"),
        ({"duration_s": None}, "exactly one of duration_s and runs"),
        ({"duration_s": -1}, "duration_s=-1"),
        ({"install": "pip install ."}, "install has the wrong type"),
        ({"seed": "7"}, "seed has the wrong type"),
        ({"options": {"max_len": 1, "bogus": 2}}, "bogus"),
    ],
)
def test_malformed_specs_are_refused_with_the_reason(
    change: dict[str, object], message: str
) -> None:
    with pytest.raises(ContractError, match=message):
        JobSpec.from_json({**SPEC.to_json(), **change})


@given(
    st.dictionaries(st.sampled_from(list(SPEC.to_json())), st.none() | st.integers() | st.text())
)
def test_any_damage_to_a_spec_is_a_contract_error_or_a_valid_spec(
    damage: dict[str, object],
) -> None:
    try:
        spec = JobSpec.from_json({**SPEC.to_json(), **damage})
    except ContractError:
        return
    assert JobSpec.from_json(spec.to_json()) == spec
    # What was accepted has the types the worker relies on.
    assert spec.install is None or all(isinstance(c, str) for c in spec.install)
    assert spec.seed is None or isinstance(spec.seed, int)
    assert isinstance(spec.attempt, int)


def test_an_outcome_with_an_unknown_code_is_refused() -> None:
    document = Outcome("j", 1, OutcomeCode.OK).to_json()
    with pytest.raises(ContractError, match="exploded"):
        Outcome.from_json({**document, "code": "exploded"})

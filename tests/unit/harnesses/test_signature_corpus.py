"""The signature corpus: real output, each case with the signature and title it must get.

Cases live in ``tests/data/tracebacks/`` (one ``<case>.json`` sidecar each, see its
README); the output is either a program's traceback captured by ``generate.py`` there or an
atheris capture from ``tests/data/engine_output/``. The crash is described the way the
worker does it (``workers/crashes.py``): the artifact's kind is given, a timeout, OOM or
signal takes the frames of a faulthandler dump, and anything else the parsed traceback.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from harnesses.libfuzzer_output import OutputParser
from harnesses.pytraceback import Frame, parse_crash
from harnesses.signature import Signature, crash_signature, crash_title
from harnesses.stackdump import parse_stack_dump

DATA = Path(__file__).resolve().parents[2] / "data"
CORPUS = DATA / "tracebacks"
_DUMP_KINDS = ("timeout", "oom", "signal")


@dataclass(frozen=True)
class CorpusCase:
    """One sidecar and the output it describes."""

    name: str
    text: str
    kind: str
    roots: tuple[str, ...]
    harness_path: str | None
    canonical: str
    sha1: str
    title: str
    from_engine: bool


def _load(sidecar: Path) -> CorpusCase:
    raw = json.loads(sidecar.read_text(encoding="utf-8"))
    return CorpusCase(
        name=raw["case"],
        text=(DATA / raw["output"]).read_text(encoding="utf-8"),
        kind=raw["kind"],
        roots=tuple(raw["roots"]),
        harness_path=raw["harness_path"],
        canonical=raw["canonical"],
        sha1=raw["sha1"],
        title=raw["title"],
        from_engine=raw["output"].startswith("engine_output/"),
    )


CASES = [_load(path) for path in sorted(CORPUS.glob("*.json"))]


def _described(case: CorpusCase) -> tuple[str, tuple[Frame, ...]]:
    """The exception type (or signal name) and the frames, outermost first."""
    if case.kind in _DUMP_KINDS:
        dump = parse_stack_dump(case.text)
        if dump is None:
            return "", ()
        return (dump.signal or "") if case.kind == "signal" else "", dump.frames
    parsed = parse_crash(case.text)
    assert parsed is not None, f"no traceback found in {case.name}"
    return parsed.exception_type, parsed.frames


def _signature(case: CorpusCase) -> Signature:
    exception_type, frames = _described(case)
    return crash_signature(
        case.kind, exception_type, frames, roots=case.roots, harness_path=case.harness_path
    )


def test_the_corpus_holds_every_required_case() -> None:
    names = {case.name for case in CASES}
    required = {
        "chain_from",
        "chain_context",
        "chain_three",
        "exception_group",
        "group_cause",
        "group_from_cause",
        "library_chain_through_repo",
        "hypothesis_multiple_failures",
        "recursion_repeated",
        "stdlib_only",
        "site_packages_only",
        "harness_only",
        "atheris_timeout",
        "atheris_oom",
        "atheris_segv_faulthandler",
    }
    assert required <= names
    outputs = {path.stem for path in CORPUS.glob("*.txt")}
    assert outputs <= names, "every captured output needs a sidecar"


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_corpus_case_gets_its_signature_and_title(case: CorpusCase) -> None:
    signature = _signature(case)
    assert signature.canonical == case.canonical
    assert signature.sha1 == case.sha1
    assert crash_title(case.kind, signature.exception_type, signature.frames) == case.title


ENGINE_CASES = [case for case in CASES if case.from_engine]


@pytest.mark.parametrize("case", ENGINE_CASES, ids=[case.name for case in ENGINE_CASES])
def test_engine_cases_have_the_kind_libfuzzer_reported(case: CorpusCase) -> None:
    parser = OutputParser()
    for line in case.text.splitlines():
        parser.feed(line)
    crashes = parser.final().crashes
    # With faulthandler on, the process dies before libFuzzer reports anything: the exit
    # status (-11) is all the worker has, so there is no report to check against.
    if crashes:
        assert crashes[-1].kind == case.kind


def test_a_library_cause_is_named_after_the_repository_frame_that_reached_it() -> None:
    # The cause's printed frames are all PyYAML's and base64's: named after those, every
    # repository that calls yaml.safe_load would share one crash group.
    by_name = {case.name: case for case in CASES}
    through_repo = _signature(by_name["library_chain_through_repo"])
    library_only = _signature(by_name["library_chain_stdlib_site"])
    assert through_repo.frames == ("pkg/config.py:load_config",)
    assert through_repo.sha1 != library_only.sha1

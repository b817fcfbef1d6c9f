"""A triage job on a hostile repository, through the worker's own code path (sandboxed).

The repository's history holds a link where the harness would be transplanted, and its
harness, when asked to minimize, leaves a link to the worker's environment where libFuzzer
would write the smaller input. Neither may make the worker write outside the worktree or
read (and store) anything but the harness's own output.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harnesses.identity import content_id, harness_id
from harnesses.model import HarnessKind
from harnesses.signature import crash_signature
from tests.support.gitrepo import GitRepo, Symlink
from tests.support.harness_repos import base_files
from tests.support.worker import MakeWorker
from workers.triage_contract import TriageCode, TriageSpec, TriageTask
from workers.triagejob import run_triage

HARNESS = "fuzz/fuzz_hostile.py"
SECRET = "fuzzorch-test-secret-3b1f"

FUZZ_HOSTILE = """\
import os
import sys

import atheris


def TestOneInput(data: bytes) -> None:
    if data[:1] != b"!":
        return
    for flag in sys.argv:
        if flag.startswith("-exact_artifact_path="):
            # Minimizing: leave a link to the reader's own environment as "the output".
            os.symlink("/proc/self/environ", flag.split("=", 1)[1])
            os._exit(77)
    raise ValueError("boom")


if __name__ == "__main__":
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()
"""


def test_links_in_the_history_and_in_the_output_are_never_followed(
    tmp_path: Path, make_worker: MakeWorker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FUZZORCH_TEST_SECRET", SECRET)
    outside = tmp_path / "outside"
    outside.mkdir()
    repo = GitRepo.init(tmp_path / "hostile")
    repo.commit({**base_files(), "README": "root\n"}, message="root")
    # An old commit where the harness's path is a link out of the tree: a transplant
    # written through it would create a file the attacker chose.
    planted = repo.commit({HARNESS: Symlink(str(outside / "pwned.py"))}, message="plant a link")
    crash_commit = repo.commit({HARNESS: FUZZ_HOSTILE}, message="the harness")
    caches = make_worker()
    testcase = b"!!!!"
    key = f"crashes/hostile/{harness_id(HARNESS)}/{content_id(testcase)}"
    caches.store.put_if_absent(key, testcase)
    signature = crash_signature(
        "exception", "ValueError", [(HARNESS, "TestOneInput")], roots=["/"], harness_path=HARNESS
    )
    spec = TriageSpec(
        job_id="triage-hostile",
        task=TriageTask.ANALYZE,
        repo="hostile",
        source=str(repo.path),
        group_id="crash-1",
        signature=signature.sha1,
        harness=HARNESS,
        kind=HarnessKind.ATHERIS,
        path=HARNESS,
        commit=crash_commit,
        testcase_key=key,
        runs=2,
    )
    outcome = run_triage(spec, caches)
    assert outcome.code is TriageCode.OK, outcome.detail
    assert outcome.reproduced == 2
    # Nothing was written through the planted link.
    assert not (outside / "pwned.py").exists()
    assert list(outside.iterdir()) == []
    # The planted commit could not run the harness: it bounds the search, with low confidence.
    assert outcome.introduced is not None
    assert outcome.introduced["commit"] == crash_commit
    assert outcome.introduced["boundary"] == planted
    assert outcome.introduced["confidence"] == "low"
    # The link the harness left as "the smaller input" was not read: the minimized testcase
    # is the testcase itself, and no stored object holds the worker's environment.
    assert outcome.minimized_key is not None
    assert caches.store.get(outcome.minimized_key, max_bytes=1 << 20) == testcase
    for stored in caches.store.iter_keys(""):
        assert SECRET.encode() not in caches.store.get(stored, max_bytes=1 << 24), stored
    assert os.environ["FUZZORCH_TEST_SECRET"] == SECRET  # the secret really was there

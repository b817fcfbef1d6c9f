"""Fuzz jobs end to end: real git, a real environment build, atheris in the real sandbox.

Each test runs ``run_job`` on a repository from ``tests/support/harness_repos.py`` and
checks what a user sees in the ``Outcome``: how the job ended, the crash groups with their
stored testcases, the corpus in the object store, and the logs.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import re
import signal
import sys
import threading
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from harnesses.identity import content_id, harness_id
from harnesses.libfuzzer import StatsLine
from harnesses.shims._fuzzorch_shim_hypothesis import _fuzz_target
from tests.support.harness_repos import (
    BROKEN,
    CLASSIFY,
    NATIVE_CRASH,
    PARSE,
    PYPROJECT,
    TEST_FUNCTION,
    TEST_METHOD,
    TargetRepo,
    parser_repo,
)
from tests.support.worker import MakeWorker, harness_processes, leftovers
from workers.contract import CrashReport, Outcome, OutcomeCode
from workers.corpus import corpus_prefix
from workers.envcache import (
    EnvironmentCache,
    default_install,
    dependency_files,
    fingerprint,
)
from workers.fuzzjob import MIN_RESTART_S, JobEvents, WorkerCaches, run_job
from workers.storage import ObjectStore
from workers.storage.s3 import S3ObjectStore

# The planted bug's crash group, whichever harness finds it: the harness's own frames
# (the atheris script, the Hypothesis test) are not part of the signature.
PLANTED_BUG = "exception|IndexError|pkg/parser.py:unescape|pkg/parser.py:parse|"


@pytest.fixture
def target(tmp_path: Path) -> TargetRepo:
    return parser_repo(tmp_path / "repos")


def log_of(store: ObjectStore, outcome: Outcome) -> str:
    assert outcome.log_key is not None
    return store.get(outcome.log_key).decode("utf-8", "replace")


def only_crash(outcome: Outcome) -> CrashReport:
    assert outcome.code is OutcomeCode.CRASHED, outcome.detail
    assert len(outcome.crashes) == 1, [c.title for c in outcome.crashes]
    return outcome.crashes[0]


def assert_planted_bug(
    crash: CrashReport, worker: WorkerCaches, target: TargetRepo, harness: str
) -> bytes:
    """The crash is the parser's bug, and its testcase is stored where the design says."""
    assert crash.canonical == PLANTED_BUG
    assert crash.signature == hashlib.sha1(PLANTED_BUG.encode()).hexdigest()
    assert (crash.kind, crash.exception_type) == ("exception", "IndexError")
    assert crash.frames == ("pkg/parser.py:unescape", "pkg/parser.py:parse")
    assert crash.title == "IndexError in unescape (pkg/parser.py)"
    assert crash.message == "index out of range"
    assert crash.stack[-1].path == "pkg/parser.py"
    assert crash.stack[-1].function == "unescape"
    assert crash.count >= 1
    data = worker.store.get(crash.testcase_key)
    assert crash.testcase_key == f"crashes/{target.name}/{harness_id(harness)}/{content_id(data)}"
    return data


def load_module(name: str, path: Path) -> ModuleType:
    """Import a fixture file in-process, under a name no other test uses."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_atheris_harness_finds_the_planted_bug_and_keeps_fuzzing(
    worker: WorkerCaches, target: TargetRepo
) -> None:
    reported: list[CrashReport] = []
    progress: list[tuple[float, StatsLine]] = []
    events = JobEvents(
        on_crash=reported.append, on_stats=lambda elapsed, line: progress.append((elapsed, line))
    )
    duration = 6.0

    outcome = run_job(
        target.spec(PARSE, "atheris-bug", duration_s=duration, seed=1), worker, events=events
    )

    crash = only_crash(outcome)
    data = assert_planted_bug(crash, worker, target, PARSE)
    # The stored testcase really is the bug: replayed through the fixture's own source.
    parser = load_module("fixture_parser_atheris", target.repo.path / "pkg" / "parser.py")
    with pytest.raises(IndexError) as raised:
        parser.parse(data)
    assert raised.traceback[-1].name == "unescape"
    # Announced once, the moment it was found; later sightings only count.
    assert [r.signature for r in reported] == [crash.signature]
    assert 0 < crash.found_after_s < outcome.stats.wall_s
    # The engine was restarted after the crash and fuzzed on until the job's time was up.
    log = log_of(worker.store, outcome)
    assert log.count("INFO: Seed:") >= 2
    assert any(elapsed > crash.found_after_s for elapsed, _ in progress)
    assert crash.count >= 2
    assert duration - MIN_RESTART_S <= outcome.stats.wall_s < duration + 5
    assert outcome.stats.execs > 0
    assert outcome.protections["method"] == "bwrap"
    assert leftovers(worker) == []


@pytest.mark.parametrize("harness", [TEST_FUNCTION, TEST_METHOD])
def test_hypothesis_test_finds_the_same_bug(
    worker: WorkerCaches, target: TargetRepo, harness: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    outcome = run_job(target.spec(harness, "hypothesis-bug", duration_s=5, seed=1), worker)

    crash = only_crash(outcome)
    # Same function chain as the atheris script, so the same crash group.
    data = assert_planted_bug(crash, worker, target, harness)
    test_frame = ("tests/test_parser.py", harness.rsplit("::", 1)[1])
    assert test_frame in [(frame.path, frame.function) for frame in crash.stack]
    # The testcase is a Hypothesis choice sequence: replay it the way the shim runs it.
    package = target.repo.path / "pkg"
    monkeypatch.setitem(sys.modules, "pkg", load_module("pkg", package / "__init__.py"))
    monkeypatch.setitem(sys.modules, "pkg.parser", load_module("pkg.parser", package / "parser.py"))
    tests = load_module("fixture_test_parser", target.repo.path / "tests" / "test_parser.py")
    fuzz_one_input = _fuzz_target(tests, harness.split("::", 1)[1])
    with pytest.raises(IndexError) as raised:
        fuzz_one_input(data)
    assert raised.traceback[-1].name == "unescape"


def test_clean_harness_grows_its_corpus_and_the_next_job_reuses_it(
    worker: WorkerCaches, target: TargetRepo
) -> None:
    prefix = corpus_prefix(target.name, CLASSIFY)

    first = run_job(target.spec(CLASSIFY, "clean-1", runs=3000, seed=1), worker)

    assert first.code is OutcomeCode.OK, first.detail
    assert first.crashes == ()
    assert first.stats.execs >= 3000
    assert first.stats.coverage > 0
    stored = sorted(worker.store.iter_keys(prefix))
    assert first.new_corpus_units == len(stored) > 1
    assert first.stats.corpus_size == len(stored)

    second = run_job(target.spec(CLASSIFY, "clean-2", runs=3000, seed=2), worker)

    assert second.code is OutcomeCode.OK, second.detail
    # libFuzzer loaded the first job's units from the worker's corpus cache.
    corpus = worker.corpus_dir(target.name, CLASSIFY)
    found = re.search(
        rf"INFO: +(\d+) files found in {re.escape(str(corpus))}\n", log_of(worker.store, second)
    )
    assert found is not None
    assert int(found.group(1)) == len(stored)
    assert second.new_corpus_units < first.new_corpus_units
    after = sorted(worker.store.iter_keys(prefix))
    assert len(after) == len(stored) + second.new_corpus_units
    assert leftovers(worker) == []


@pytest.mark.s3
def test_corpus_syncs_through_s3_without_duplicates(
    make_worker: MakeWorker,
    target: TargetRepo,
    s3_store: S3ObjectStore,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    prefix = corpus_prefix(target.name, CLASSIFY)
    first_worker = make_worker(s3_store, root=tmp_path / "worker-1")

    first = run_job(target.spec(CLASSIFY, "sync-1", runs=3000, seed=1), first_worker)

    assert first.code is OutcomeCode.OK, first.detail
    uploaded = sorted(s3_store.iter_keys(prefix))
    assert len(uploaded) == first.new_corpus_units > 2
    for key in uploaded:  # content-addressed: the name is the sha1 of the unit
        assert key.rsplit("/", 1)[1] == content_id(s3_store.get(key))

    # A second worker that already holds some units locally fetches only the others.
    second_worker = make_worker(s3_store, root=tmp_path / "worker-2")
    local = second_worker.corpus_dir(target.name, CLASSIFY)
    local.mkdir(parents=True)
    held = uploaded[::2]
    for key in held:
        (local / key.rsplit("/", 1)[1]).write_bytes(s3_store.get(key))
    fetched: list[str] = []
    real_get = s3_store.get

    def recording_get(key: str, **kwargs: Any) -> bytes:
        fetched.append(key)
        return real_get(key, **kwargs)

    monkeypatch.setattr(s3_store, "get", recording_get)

    second = run_job(target.spec(CLASSIFY, "sync-2", runs=1000, seed=2), second_worker)

    assert second.code is OutcomeCode.OK, second.detail
    assert sorted(k for k in fetched if k.startswith(prefix)) == sorted(set(uploaded) - set(held))
    after = sorted(s3_store.iter_keys(prefix))
    assert set(uploaded) <= set(after)
    assert len(after) == len(uploaded) + second.new_corpus_units
    assert sorted(p.name for p in local.iterdir()) == [k.rsplit("/", 1)[1] for k in after]
    for key in after:
        assert key.rsplit("/", 1)[1] == content_id(real_get(key))


def ready_environments(cache: EnvironmentCache) -> set[str]:
    return {ready.parent.name for ready in cache.root.glob("*/READY")}


def test_environment_is_built_once_per_dependency_fingerprint(
    worker: WorkerCaches, target: TargetRepo, caplog: pytest.LogCaptureFixture
) -> None:
    cache = worker.environments
    before = ready_environments(cache)
    caplog.set_level(logging.INFO, logger="workers.envcache")

    unchanged = run_job(target.spec(CLASSIFY, "env-same", runs=200), worker)

    assert unchanged.code is OutcomeCode.OK, unchanged.detail
    assert ready_environments(cache) == before
    assert not [r for r in caplog.records if r.getMessage().startswith("built environment")]

    edited = PYPROJECT + '\n[tool.fixture]\nnote = "a changed pyproject.toml"\n'
    changed = target.change({"pyproject.toml": edited})
    files = dependency_files(changed.repo.path)
    assert files == {"pyproject.toml": edited.encode()}
    expected = fingerprint(files, default_install(files), cache.python_version())
    assert expected not in before

    rebuilt = run_job(changed.spec(CLASSIFY, "env-changed", runs=200), worker)

    assert rebuilt.code is OutcomeCode.OK, rebuilt.detail
    assert ready_environments(cache) == before | {expected}
    built = [
        r.getMessage() for r in caplog.records if r.getMessage().startswith("built environment")
    ]
    assert len(built) == 1
    assert built[0].startswith(f"built environment {expected} ")


def test_failing_install_is_build_failed_with_its_log_stored(
    worker: WorkerCaches, target: TargetRepo
) -> None:
    install = ("echo fixture-install-output; echo oh no >&2; exit 3",)
    before = ready_environments(worker.environments)

    outcome = run_job(target.spec(CLASSIFY, "env-broken", runs=100, install=install), worker)

    assert outcome.code is OutcomeCode.BUILD_FAILED
    assert outcome.detail is not None
    assert outcome.detail.endswith("exited with 3")
    assert outcome.crashes == ()
    assert outcome.stats.execs == 0
    log = log_of(worker.store, outcome)
    assert f"&& {install[0]}" in log
    assert "fixture-install-output" in log
    assert "oh no" in log
    assert ready_environments(worker.environments) == before  # nothing half-built kept
    assert leftovers(worker) == []


def test_harness_failing_at_import_is_startup_failed(
    worker: WorkerCaches, target: TargetRepo
) -> None:
    outcome = run_job(target.spec(BROKEN, "import-error", duration_s=30), worker)

    assert outcome.code is OutcomeCode.STARTUP_FAILED
    assert outcome.detail is not None
    assert "ImportError: cannot import name 'no_such_function' from 'pkg.parser'" in outcome.detail
    assert outcome.crashes == ()
    assert outcome.stats.execs == 0
    assert outcome.stats.wall_s < 10  # not retried until the job's time is up
    assert leftovers(worker) == []


def test_harness_dying_of_a_signal_at_import_is_startup_failed(
    worker: WorkerCaches, target: TargetRepo
) -> None:
    outcome = run_job(target.spec(NATIVE_CRASH, "import-segv", duration_s=30), worker)

    # Nothing is printed (no traceback, no libFuzzer): the signal is all there is to say.
    assert outcome.code is OutcomeCode.STARTUP_FAILED
    assert outcome.detail is not None
    assert f"killed by signal {signal.SIGSEGV.value}" in outcome.detail
    assert outcome.crashes == ()
    assert outcome.stats.execs == 0
    assert outcome.stats.wall_s < 10
    assert harness_processes() == []
    assert leftovers(worker) == []


def test_stop_ends_a_long_job_promptly(worker: WorkerCaches, target: TargetRepo) -> None:
    stop = threading.Event()
    timer = threading.Timer(2.0, stop.set)
    started = time.monotonic()
    timer.start()
    try:
        outcome = run_job(target.spec(CLASSIFY, "stopped", duration_s=60), worker, stop=stop)
    finally:
        timer.cancel()
    returned = time.monotonic() - started

    assert stop.is_set()
    assert returned < 6
    assert outcome.code is OutcomeCode.OK, outcome.detail
    assert outcome.stats.execs > 0
    assert outcome.new_corpus_units > 0  # what it found before the stop is kept
    assert harness_processes() == []
    assert leftovers(worker) == []

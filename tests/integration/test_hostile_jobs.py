"""Hostile harnesses and builds, run as real fuzz jobs: contained, classified, nothing left.

Each harness (``tests/support/harness_repos.HOSTILE_BODIES``) misbehaves in one way on its
inputs. Every test checks the job came back with an outcome that says what happened, and
that the worker is intact: no process of the harness uid still running, no run folder,
worktree or scratch folder left under the worker's caches.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from harnesses.model import HarnessOptions
from tests.support.harness_repos import HOSTILE, PARSE, TargetRepo, hostile_repo, parser_repo
from tests.support.worker import MakeWorker, build_env, harness_processes, leftovers
from workers.contract import CrashReport, Outcome, OutcomeCode
from workers.envcache import Environment, EnvironmentCache
from workers.fuzzjob import MAX_LOG_BYTES, WorkerCaches, run_job
from workers.sandbox import Limits, Sandbox

SECRET = "fixture-secret-value-4f1c"
TOKEN = "fixture-token-value-9a2e"


def contained(worker: WorkerCaches, target: TargetRepo, job: str, **fields: object) -> Outcome:
    """Run the hostile harness's job and check the worker came through it intact."""
    assert harness_processes() == [], "a harness process was running before the job"
    outcome = run_job(target.spec(HOSTILE, job, **fields), worker)
    assert harness_processes() == []
    assert leftovers(worker) == []
    assert outcome.protections["method"] == "bwrap"
    assert outcome.protections["uid"] == 65534
    return outcome


def only_crash(outcome: Outcome) -> CrashReport:
    assert outcome.code is OutcomeCode.CRASHED, outcome.detail
    assert len(outcome.crashes) == 1, [c.title for c in outcome.crashes]
    return outcome.crashes[0]


def log_of(worker: WorkerCaches, outcome: Outcome) -> bytes:
    assert outcome.log_key is not None
    return worker.store.get(outcome.log_key)


@pytest.fixture
def repos(tmp_path: Path) -> Path:
    return tmp_path / "repos"


def test_secrets_in_the_worker_environment_do_not_reach_the_harness(
    make_worker: MakeWorker, repos: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("FUZZORCH_TOKEN", TOKEN)
    worker = make_worker()  # its sandbox is handed this os.environ, secrets and all
    target = hostile_repo(repos, "environment")

    outcome = contained(worker, target, "env-secrets", duration_s=3)

    crash = only_crash(outcome)
    assert crash.exception_type == "Contained"
    assert crash.message is not None
    names = crash.message.removeprefix("environment names: ").split()
    assert "HOME" in names  # it did report what it saw
    assert "AWS_SECRET_ACCESS_KEY" not in names
    assert "FUZZORCH_TOKEN" not in names
    # Neither in its own environment nor in any other process's it could read.
    log = log_of(worker, outcome)
    assert b"OWN ENVIRONMENT" in log
    assert SECRET.encode() not in log
    assert TOKEN.encode() not in log


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A TCP service on the host's loopback, which a harness must not reach."""
    server = socket.create_server(("127.0.0.1", 0))
    server.setblocking(False)
    yield server
    server.close()


def test_harness_cannot_reach_a_service_on_the_host(
    worker: WorkerCaches, repos: Path, listener: socket.socket
) -> None:
    port = listener.getsockname()[1]
    target = hostile_repo(repos, "network", port=port)

    outcome = contained(worker, target, "network", duration_s=3)

    crash = only_crash(outcome)
    # Its 127.0.0.1 is the sandbox's own loopback, where nothing listens.
    assert crash.exception_type == "Contained"
    assert crash.message is not None
    assert crash.message.startswith("no connection: ConnectionRefusedError")
    assert b"ESCAPED" not in log_of(worker, outcome)
    with pytest.raises(BlockingIOError):
        listener.accept()  # no connection ever arrived
    assert outcome.protections["network_isolated"] is True


def test_infinite_loop_is_a_timeout(worker: WorkerCaches, repos: Path) -> None:
    target = hostile_repo(repos, "infinite_loop")

    outcome = contained(worker, target, "loop", duration_s=4, options=HarnessOptions(timeout=1))

    crash = only_crash(outcome)
    assert crash.kind == "timeout"
    assert crash.exception_type is None
    assert crash.title == "Timeout in TestOneInput (fuzz/fuzz_hostile.py)"
    assert crash.frames[0] == "fuzz/fuzz_hostile.py:TestOneInput"
    assert outcome.stats.wall_s < 4 + 5


def test_unbounded_allocation_is_an_oom(worker: WorkerCaches, repos: Path) -> None:
    # The harness grows at about 400 MB/s: libFuzzer's RSS check (once a second) sees it
    # pass the limit long before the address-space limit (the RSS limit plus 2 GB of
    # headroom) would make an allocation fail. Allocating faster than that headroom per
    # second would end in a MemoryError instead: kind "exception", not "oom".
    target = hostile_repo(repos, "memory")
    options = HarnessOptions(timeout=10, rss_limit_mb=300)

    outcome = contained(worker, target, "memory", duration_s=4, options=options)

    crash = only_crash(outcome)
    assert crash.kind == "oom"
    assert crash.exception_type is None
    assert crash.title.startswith("Out of memory")
    assert b"ERROR: libFuzzer: out-of-memory (used: " in log_of(worker, outcome)


def test_fork_bomb_is_contained(worker: WorkerCaches, repos: Path) -> None:
    # Its children fork until the harness uid's process limit stops them, then sleep in
    # every slot they got; the harness itself then fails to fork, which is the crash.
    target = hostile_repo(repos, "fork_bomb")

    outcome = contained(worker, target, "fork-bomb", duration_s=3)

    crash = only_crash(outcome)
    assert crash.kind == "exception"
    assert crash.exception_type == "BlockingIOError"
    assert crash.message == "[Errno 11] Resource temporarily unavailable"
    assert "nproc" in outcome.protections["rlimits"]


def test_writing_past_the_file_size_limit_is_sigxfsz(worker: WorkerCaches, repos: Path) -> None:
    limit = Limits(wall_seconds=1).file_size_bytes
    assert limit is not None
    target = hostile_repo(repos, "file_size", offset=limit)

    outcome = contained(worker, target, "file-size", duration_s=3)

    # libFuzzer's SIGXFSZ handler reports "file size exceeded" and exits; its exit
    # callback then says "fuzz target exited". The crash is the signal, not an exit.
    crash = only_crash(outcome)
    assert crash.kind == "signal"
    assert crash.exception_type == "SIGXFSZ"
    assert b"ERROR: libFuzzer: file size exceeded" in log_of(worker, outcome)


def test_killing_the_parent_and_everything_else_reaches_nothing(
    worker: WorkerCaches, repos: Path
) -> None:
    target = hostile_repo(repos, "kill")

    outcome = contained(worker, target, "kill", duration_s=3)

    crash = only_crash(outcome)
    assert crash.exception_type == "Contained"
    # In its PID namespace its parent is the namespace's init (pid 1, not its uid's), and
    # kill(-1) finds no other process it may signal.
    assert crash.message == (
        "still running after kill 1: Operation not permitted, 1: Operation not permitted,"
        " -1: No such process"
    )
    assert outcome.protections["pid_namespace"] is True
    os.kill(os.getpid(), 0)  # and the test process is alive, obviously enough


def test_harness_cannot_write_its_environment_engines_worktree_or_corpus(
    worker: WorkerCaches, repos: Path, shared_environment: Environment
) -> None:
    target = hostile_repo(repos, "tamper")
    # (READY and the lock files are the worker's: it touches them on every use.)
    planted = (shared_environment.root / "venv", worker.environments.root / ".engines")
    before = [snapshot(folder) for folder in planted]
    corpus = worker.corpus_dir(target.name, HOSTILE)
    corpus.mkdir(parents=True)

    outcome = contained(worker, target, "tamper", duration_s=3)

    crash = only_crash(outcome)
    assert crash.exception_type == "Contained"
    assert crash.message is not None
    results = dict(part.split(": ", 1) for part in crash.message.split("; "))
    # Refused by the files' modes (the harness uid owns none of them) or by the read-only
    # mount, whichever the kernel checks first.
    assert results.keys() == {"environment", "engines", "worktree", "corpus"}
    assert set(results.values()) <= {"Permission denied", "Read-only file system"}
    assert [snapshot(folder) for folder in planted] == before
    assert list(corpus.iterdir()) == []


def test_os_exit_on_an_input_is_reported_and_fuzzing_goes_on(
    worker: WorkerCaches, repos: Path
) -> None:
    # os._exit() skips libFuzzer's exit callback: nothing is printed, no artifact written,
    # only the status (3) says it happened. There is no input to report, so the outcome
    # says so in its detail, and the engine is restarted for the rest of the job (it used
    # to return "ok" silently and stop fuzzing).
    target = hostile_repo(repos, "os_exit")
    duration = 8.0

    outcome = contained(worker, target, "os-exit", duration_s=duration)

    assert outcome.code is OutcomeCode.OK
    assert outcome.crashes == ()
    assert outcome.detail is not None
    assert "ended its own process" in outcome.detail
    assert "exit status 3" in outcome.detail
    assert outcome.stats.execs > 0  # it had started: INITED came before the exit
    assert log_of(worker, outcome).count(b"INFO: Seed:") >= 2  # restarted


def test_segfault_through_ctypes_is_a_signal(worker: WorkerCaches, repos: Path) -> None:
    target = hostile_repo(repos, "segfault")

    outcome = contained(worker, target, "segfault", duration_s=3)

    crash = only_crash(outcome)
    assert crash.kind == "signal"
    # libFuzzer's "deadly signal" report does not name the signal.
    assert crash.exception_type is None
    assert b"ERROR: libFuzzer: deadly signal" in log_of(worker, outcome)


def test_megabytes_of_output_per_input_keep_the_log_bounded(
    worker: WorkerCaches, repos: Path
) -> None:
    target = hostile_repo(repos, "chatty")

    outcome = contained(worker, target, "chatty", runs=300)

    # 300 MB printed; the job finishes, its statistics intact, its log cut to the bound.
    assert outcome.code is OutcomeCode.OK, outcome.detail
    assert outcome.stats.execs >= 300
    log = log_of(worker, outcome)
    assert len(log) <= MAX_LOG_BYTES
    assert b"Done 300 runs" in log


def snapshot(root: Path) -> dict[str, tuple[int, int, int, int]]:
    """Every entry under ``root``: mode, owner, size and modification time."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            found[path] = (st.st_mode, st.st_uid, st.st_size, st.st_mtime_ns)
    return found


def test_hostile_build_cannot_read_secrets_or_write_other_caches(
    make_worker: MakeWorker,
    shared_environment: Environment,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    # A cache on the session's environments folder whose build sandbox has seen the secret.
    environments_root = shared_environment.root.parent
    environments = EnvironmentCache(
        environments_root,
        Sandbox(scratch_root=tmp_path / "build-scratch", environ=os.environ),
        build_env=build_env(),
    )
    worker = make_worker(environments=environments)
    target = parser_repo(tmp_path / "repos", "hostile-build")
    mirror = worker.workspaces.mirror(target.name, target.source, target.commit)
    worktree = worker.workspaces.worktrees / "hostile-build-1"
    victims = [
        shared_environment.root / "READY",
        shared_environment.python,
        shared_environment.root / "src" / "pkg" / "parser.py",
        environments_root / ".engines" / "hypothesis" / "__init__.py",
        worktree / "pkg" / "parser.py",
        mirror / "HEAD",
    ]
    script = "\n".join(
        [
            'echo "secret: [$AWS_SECRET_ACCESS_KEY]"',
            "cat /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n'",
            f"for p in {' '.join(map(str, victims))}; do",
            'if echo planted >> "$p" 2>/dev/null',
            'then echo "$p: written"',
            'else echo "$p: denied"',
            "fi",
            "done",
            "exit 1",  # so the worker stores the build's log with the outcome
        ]
    )
    # (The mirror itself changes during a job: the worker adds and removes its worktree.)
    head = (mirror / "HEAD").read_bytes()
    caches = (shared_environment.root, environments_root / ".engines")
    before = {p: snapshot(p) for p in caches}

    outcome = run_job(target.spec(PARSE, "hostile-build", runs=10, install=(script,)), worker)

    assert outcome.code is OutcomeCode.BUILD_FAILED
    assert outcome.log_key is not None
    log = worker.store.get(outcome.log_key).decode()
    assert "secret: []" in log
    assert SECRET not in log
    for victim in victims:
        assert f"{victim}: denied" in log
    assert {p: snapshot(p) for p in caches} == before
    assert (mirror / "HEAD").read_bytes() == head
    assert harness_processes() == []
    assert leftovers(worker) == []

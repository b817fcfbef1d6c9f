"""The sandbox against hostile children: real processes, on every isolation method here.

Each test runs a small Python program that misbehaves in one way and checks that the
sandbox contained it and reported what happened. Every method this machine supports runs
every test; a method that should work and does not fails the test (no skips): bubblewrap
and util-linux are part of the test environment (scripts/test installs them).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from workers.errors import SandboxConfigError
from workers.sandbox import Limits, Policy, RunResult, Sandbox
from workers.sandbox_probe import Tools
from workers.sandbox_procs import processes
from workers.sandbox_scratch import unreachable

ROOT = os.geteuid() == 0
# Methods that confine a hostile child on this machine: as root all three (each with a
# separate uid); a non-root developer gets the namespace methods only.
METHODS = ("bwrap", "unshare", "uid") if ROOT else ("bwrap", "unshare")
# Distinct per test process, so two test runs on one machine never share a harness uid
# (the uid sweep of one would kill the other's children).
UID_BASE = 62_000 + (os.getpid() % 700) * 4


@dataclass
class Env:
    """One method's sandbox plus the paths and interpreter its children use."""

    method: str
    sandbox: Sandbox
    python: str
    uid: int | None
    base: Path
    scratch_root: Path
    readonly: tuple[Path, ...]
    venv_standin: Path
    worktree_standin: Path
    writable: Path
    runtime: tuple[Path, ...] = field(default=())

    def run(
        self,
        code: str,
        *args: str,
        limits: Limits | None = None,
        network: bool = False,
        extra_env: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> RunResult:
        """Run a Python snippet in the sandbox with the stand-in paths bound."""
        policy = Policy(
            network=network,
            readonly_paths=(*self.runtime, *self.readonly),
            writable_paths=(self.writable,),
            extra_env=dict(extra_env or {}),
        )
        argv = [self.python, "-c", textwrap.dedent(code), *args]
        return self.sandbox.run(
            argv, limits=limits or Limits(wall_seconds=20), policy=policy, **kwargs
        )


@pytest.fixture(scope="module")
def base() -> Iterator[Path]:
    # Not under pytest's tmp_path: /tmp/pytest-of-root is 0700, and without bwrap the
    # harness uid must be able to walk to its scratch directory and the stand-ins.
    path = Path(tempfile.mkdtemp(prefix="fuzzorch-sandbox-", dir="/tmp"))
    path.chmod(0o755)
    yield path
    subprocess.run(["rm", "-rf", "--one-file-system", str(path)], check=False)


def _interpreter_for(method: str, uid: int | None) -> tuple[str, tuple[Path, ...]]:
    """The venv's Python where bound by bwrap; else one the harness uid can reach."""
    venv_python = Path(sys.executable)
    runtime = (Path(sys.base_prefix), Path(sys.prefix))
    if method == "bwrap" or uid is None:
        return str(venv_python), runtime
    real = venv_python.resolve()
    if unreachable(real.parent, uid, uid, ancestors=True) is None:
        return str(real), ()
    # This machine's interpreter lives under /root (0700): use the system one.
    assert Path("/usr/bin/python3").exists(), "no Python the harness uid can run"
    return "/usr/bin/python3", ()


@pytest.fixture(scope="module", params=METHODS)
def env(request: pytest.FixtureRequest, base: Path) -> Env:
    method: str = request.param
    uid = UID_BASE + METHODS.index(method) if ROOT else None
    root = base / method
    (root / "scratch").mkdir(parents=True)
    venv, worktree, writable = (root / n for n in ("venv", "worktree", "out"))
    for path in (venv, worktree, writable):
        path.mkdir()
        (path / "existing.txt").write_text("original\n")
        path.chmod(0o755)
    (writable / "sub").mkdir(mode=0o755)
    # World-writable: only a read-only mount (bwrap) can keep the harness out of it.
    (venv / "open").mkdir(mode=0o777)
    (venv / "open").chmod(0o777)
    python, runtime = _interpreter_for(method, uid)
    sandbox = Sandbox(
        scratch_root=root / "scratch",
        harness_uid=uid,
        prefer=(method,),
        environ=os.environ,
    )
    caps = sandbox.capabilities()
    assert caps.method == method, f"sandbox method {method} does not work here"
    return Env(
        method=method,
        sandbox=sandbox,
        python=python,
        uid=uid,
        base=root,
        scratch_root=root / "scratch",
        readonly=(venv, worktree),
        venv_standin=venv,
        worktree_standin=worktree,
        writable=writable,
        runtime=runtime,
    )


def survivors(uid: int | None) -> list[int]:
    """Live processes of the harness uid (zombies excluded: they are already dead)."""
    if uid is None:
        return []
    return [info.pid for info in processes() if uid in info.uids]


def test_the_child_sees_only_the_allow_listed_environment(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-secret-value")
    monkeypatch.setenv("FUZZORCH_TOKEN", "fuzzorch-token-value")
    sandbox = Sandbox(
        scratch_root=env.scratch_root,
        harness_uid=env.uid,
        prefer=(env.method,),
        environ=os.environ,  # the mistake a caller could make: the whole environment
    )
    code = """
        import json, os, sys
        try:
            parent = open(f"/proc/{sys.argv[1]}/environ", "rb").read()
        except OSError as exc:
            parent = repr(exc).encode()
        print(json.dumps({"env": dict(os.environ), "cwd": os.getcwd(),
                          "parent": parent.decode("latin-1")}))
    """
    result = sandbox.run(
        [env.python, "-c", textwrap.dedent(code), str(os.getpid())],
        limits=Limits(wall_seconds=20),
        policy=Policy(readonly_paths=env.runtime, extra_env={"HARNESS_SEED": "7"}),
    )
    assert result.returncode == 0, result.output
    seen = json.loads(result.output)
    assert "aws-secret-value" not in result.output.decode()
    assert "fuzzorch-token-value" not in result.output.decode()
    assert not {"AWS_SECRET_ACCESS_KEY", "FUZZORCH_TOKEN"} & set(seen["env"])
    assert seen["env"]["HARNESS_SEED"] == "7"
    assert seen["env"]["HOME"] == seen["env"]["TMPDIR"] == seen["cwd"]
    assert set(seen["env"]) <= {
        *("PATH", "HOME", "TMPDIR", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "PWD", "HARNESS_SEED"),
        *("PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE", "PYTHONNOUSERSITE"),
    }
    # Nor can it read the worker's environment through /proc.
    assert "Error" in seen["parent"]
    assert result.protections.env_allowlist


def test_secret_looking_extra_variables_are_refused_unless_allowed(env: Env) -> None:
    with pytest.raises(SandboxConfigError, match="AWS_SECRET_ACCESS_KEY"):
        env.run("pass", extra_env={"AWS_SECRET_ACCESS_KEY": "x"})
    policy = Policy(
        readonly_paths=env.runtime,
        extra_env={"PIP_TOKEN": "allowed-on-purpose"},
        allow_secret_names=frozenset({"PIP_TOKEN"}),
    )
    code = "import os; print(os.environ['PIP_TOKEN'])"
    result = env.sandbox.run(
        [env.python, "-c", code], limits=Limits(wall_seconds=20), policy=policy
    )
    assert result.output.strip() == b"allowed-on-purpose"


@pytest.fixture
def tcp_server() -> Iterator[int]:
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    done = threading.Event()

    def serve() -> None:
        while not done.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.sendall(b"hello from the host\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    done.set()
    thread.join()
    server.close()


CONNECT = """
    import socket, sys
    try:
        with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=3) as s:
            print("connected", s.recv(100).decode().strip())
    except OSError as exc:
        print("refused", repr(exc))
"""


def test_network_is_off_for_harnesses_and_on_for_builds(env: Env, tcp_server: int) -> None:
    off = env.run(CONNECT, str(tcp_server))
    assert off.returncode == 0, off.output
    # Exactly what was recorded: isolated methods refuse, the uid-only method cannot.
    assert off.output.startswith(b"refused") == off.protections.network_isolated
    assert off.protections.network_isolated == (env.method in ("bwrap", "unshare"))

    on = env.run(CONNECT, str(tcp_server), network=True)
    assert on.output.strip() == b"connected hello from the host", on.output
    assert on.protections.network_isolated is False


def test_an_endless_loop_is_killed_at_the_deadline(env: Env) -> None:
    started = time.monotonic()
    result = env.run("while True: pass", limits=Limits(wall_seconds=1, kill_grace_seconds=0.5))
    elapsed = time.monotonic() - started
    assert result.timed_out
    assert not result.stopped
    assert result.signal in (signal.SIGTERM, signal.SIGKILL)
    assert result.returncode is None
    assert 1.0 <= result.wall_seconds < 2.0
    assert elapsed < 3.0


def test_a_harness_ignoring_sigterm_is_killed_after_the_grace_period(env: Env) -> None:
    code = """
        import signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("ignoring", flush=True)
        while True: time.sleep(0.01)
    """
    result = env.run(code, limits=Limits(wall_seconds=0.5, kill_grace_seconds=0.5))
    assert result.timed_out
    assert result.signal == signal.SIGKILL
    assert 1.0 <= result.wall_seconds < 2.0
    assert survivors(env.uid) == []


def test_unbounded_allocation_hits_the_memory_limit(env: Env) -> None:
    code = """
        chunks = []
        while True:
            chunks.append(bytearray(16 << 20))
    """
    result = env.run(code, limits=Limits(wall_seconds=20, memory_bytes=300 << 20))
    assert not result.timed_out
    raised = result.returncode == 1 and b"MemoryError" in result.output
    killed = result.signal in (signal.SIGKILL, signal.SIGSEGV, signal.SIGABRT)
    assert raised or killed, result
    assert "as" in result.protections.rlimits


def test_a_cpu_hog_is_stopped_by_the_cpu_limit(env: Env) -> None:
    result = env.run("while True: pass", limits=Limits(wall_seconds=10, cpu_seconds=1))
    assert not result.timed_out
    assert result.signal in (signal.SIGXCPU, signal.SIGKILL)
    assert result.wall_seconds < 5


FORK_BOMB = """
    import os, signal, sys, time
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # inherited: the polite stop is ignored
    kids = 0
    while True:
        try:
            pid = os.fork()
        except OSError:
            break
        if pid == 0:
            while True:  # every child is a bomb too
                try:
                    os.fork()
                except OSError:
                    time.sleep(0.001)
        kids += 1
    print("limit after", kids, "children", flush=True)
    time.sleep(60)
"""


def test_a_fork_bomb_is_bounded_and_fully_reaped(env: Env) -> None:
    limits = Limits(wall_seconds=1.5, max_processes=24, kill_grace_seconds=0.2)
    result = env.run(FORK_BOMB, limits=limits)
    assert result.timed_out
    words = result.output.split()
    assert b"limit" in words, result.output
    assert int(words[words.index(b"after") + 1]) < 24
    assert "nproc" in result.protections.rlimits
    assert survivors(env.uid) == []


def test_children_left_behind_by_a_clean_exit_are_killed(env: Env) -> None:
    code = """
        import os, time
        for _ in range(3):
            if os.fork() == 0:
                os.closerange(0, 3)
                time.sleep(60)
        print("parent exits", flush=True)
    """
    result = env.run(code)
    assert result.returncode == 0
    assert not result.timed_out
    assert result.wall_seconds < 2
    assert survivors(env.uid) == []


def test_a_double_forked_setsid_daemon_is_reaped(env: Env) -> None:
    beacon = env.writable / f"beacon-{env.method}"
    code = """
        import os, sys, time
        if os.fork() == 0:
            os.setsid()  # leave the process group and the session
            if os.fork() == 0:
                devnull = os.open(os.devnull, os.O_RDWR)
                for fd in (0, 1, 2):
                    os.dup2(devnull, fd)
                while True:
                    with open(sys.argv[1], "a") as f:
                        f.write("x")
                    time.sleep(0.02)
            os._exit(0)
        time.sleep(0.3)  # let the daemon start beating
        print("parent done", flush=True)
    """
    started = time.monotonic()
    result = env.run(code, str(beacon))
    assert result.returncode == 0, result.output
    assert not result.timed_out
    assert time.monotonic() - started < 3
    size = beacon.stat().st_size
    assert size > 0  # the daemon did run
    time.sleep(0.3)
    assert beacon.stat().st_size == size  # and nothing beats any more
    assert survivors(env.uid) == []


def test_a_daemon_holding_the_output_open_does_not_hang_the_run(env: Env) -> None:
    code = """
        import os, time
        if os.fork() == 0:
            os.setsid()
            while True:
                print("still here", flush=True)
                time.sleep(0.05)
        time.sleep(0.2)
    """
    started = time.monotonic()
    result = env.run(code)
    assert result.returncode == 0
    assert time.monotonic() - started < 1.5
    assert b"still here" in result.output
    assert survivors(env.uid) == []


def test_writing_past_the_file_size_limit_fails(env: Env) -> None:
    code = """
        with open("big", "wb") as f:
            for _ in range(4):
                f.write(b"x" * (1 << 20))
                f.flush()
    """
    result = env.run(code, limits=Limits(wall_seconds=20, file_size_bytes=1 << 20))
    by_signal = result.signal == signal.SIGXFSZ
    by_error = result.returncode == 1 and b"File too large" in result.output
    assert by_signal or by_error, result
    assert "fsize" in result.protections.rlimits


def test_the_open_files_limit_applies(env: Env) -> None:
    code = """
        import errno
        files = []
        try:
            while len(files) < 200:
                files.append(open("/dev/null"))
        except OSError as exc:
            print("stopped at", len(files), errno.errorcode[exc.errno])
    """
    result = env.run(code, limits=Limits(wall_seconds=20, open_files=40))
    words = result.output.split()
    assert words[-1] == b"EMFILE", result.output
    assert int(words[-2]) < 40


def test_the_harness_cannot_kill_its_runner(env: Env) -> None:
    protections = env.sandbox.capabilities()
    # Never run this unconfined: as the worker's own uid, kill(-1) would hit everything.
    assert protections.uid is not None or protections.pid_namespace
    sentinel = subprocess.Popen(["sleep", "30"], start_new_session=True)
    code = """
        import os, signal, sys
        runner, sentinel = int(sys.argv[1]), int(sys.argv[2])
        attempts = {
            "parent": lambda: os.kill(os.getppid(), signal.SIGKILL),
            "runner": lambda: os.kill(runner, signal.SIGKILL),
            "runner group": lambda: os.killpg(os.getpgid(runner), signal.SIGKILL),
            "runner group by id": lambda: os.killpg(runner, signal.SIGKILL),
            "sentinel group": lambda: os.killpg(sentinel, signal.SIGKILL),
            "init": lambda: os.kill(1, signal.SIGKILL),
            "everyone": lambda: os.kill(-1, signal.SIGKILL),
        }
        for name, attempt in attempts.items():
            try:
                attempt()
                print(name, "sent 0", flush=True)
            except OSError as exc:
                print(name, "refused", exc.errno, flush=True)
        print("still alive")
    """
    try:
        result = env.run(code, str(os.getpid()), str(sentinel.pid))
        assert sentinel.poll() is None, "the harness killed a process of the worker"
    finally:
        sentinel.kill()
        sentinel.wait()
    assert b"still alive" in result.output, result.output
    # "<attempt name> sent|refused <errno>" per line, then "still alive".
    outcomes = {
        line.rsplit(" ", 2)[0]: line.rsplit(" ", 2)[1]
        for line in result.output.decode().splitlines()
        if line != "still alive"
    }
    assert outcomes["runner"] == "refused", result.output
    assert outcomes["sentinel group"] == "refused", result.output
    assert os.getpgid(0) > 0  # we are still here to ask


def test_an_exit_code_comes_through_unchanged(env: Env) -> None:
    for code in (7, 77, 0, 1):
        result = env.run(f"import os; os._exit({code})")
        assert (result.returncode, result.signal) == (code, None)


def test_a_segfault_is_reported_as_sigsegv(env: Env) -> None:
    result = env.run("import ctypes; ctypes.string_at(0)")
    assert (result.returncode, result.signal) == (None, signal.SIGSEGV)
    assert not result.timed_out


def test_fifty_megabytes_of_output_are_captured_within_bounds(env: Env) -> None:
    code = """
        import sys
        line = b"y" * (1 << 20) + b"\\n"
        for _ in range(50):
            sys.stdout.buffer.write(line)
        sys.stdout.buffer.write(b"the end\\n")
    """
    lines: list[str] = []
    tracemalloc.start()
    try:
        result = env.run(code, on_line=lines.append)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    total = 50 * ((1 << 20) + 1) + len(b"the end\n")
    assert result.returncode == 0
    assert len(result.output) < (64 << 10) + (1 << 20) + 200
    assert result.output_dropped_bytes > 0
    kept = len(result.output) - len(
        f"\n[… {result.output_dropped_bytes} bytes of output dropped …]\n".encode()
    )
    assert kept + result.output_dropped_bytes == total
    assert result.output.endswith(b"the end\n")
    assert peak < 16 << 20, f"the runner held {peak} bytes at once"
    assert len(lines) == 51
    assert lines[-1] == "the end"
    assert all(len(line) < 20 << 10 for line in lines)


WRITABLE = ["writable WRITTEN", "writable append WRITTEN", "writable nested WRITTEN"]


def test_read_only_paths_cannot_be_written(env: Env) -> None:
    code = """
        import os, sys
        def attempt(name, action):
            try:
                action()
                print(name, "WRITTEN")
            except OSError as exc:
                print(name, "refused", exc.strerror)
        for root in sys.argv[1:3]:
            attempt(root + " new", lambda: open(os.path.join(root, "new"), "w").write("x"))
            attempt(root + " append", lambda: open(os.path.join(root, "existing.txt"), "a").write("x"))
            attempt(root + " delete", lambda: os.unlink(os.path.join(root, "existing.txt")))
        attempt("open dir", lambda: open(os.path.join(sys.argv[1], "open", "f"), "w").write("x"))
        out = sys.argv[3]
        attempt("writable", lambda: open(os.path.join(out, "made-here"), "w").write("x"))
        attempt("writable append", lambda: open(os.path.join(out, "existing.txt"), "a").write("x"))
        attempt("writable nested", lambda: open(os.path.join(out, "sub", "new"), "w").write("x"))
    """  # noqa: E501
    args = (str(env.venv_standin), str(env.worktree_standin), str(env.writable))
    result = env.run(code, *args)
    report = result.output.decode().splitlines()
    written = [line for line in report if line.endswith("WRITTEN")]
    if env.method == "bwrap":
        # The world-writable folder too: the mount is read-only, whatever the modes say.
        assert written == WRITABLE, report
        assert result.protections.readonly_mounts
    else:
        assert written == ["open dir WRITTEN", *WRITABLE], report
        (env.venv_standin / "open" / "f").unlink()
    for standin in env.readonly:
        assert (standin / "existing.txt").read_text() == "original\n"
        assert not (standin / "new").exists()
    made = env.writable / "made-here"
    assert made.read_text() == "x"
    # The lent tree was given back, with what the harness made in it.
    owners = {p.stat().st_uid for p in (env.writable, made, env.writable / "sub" / "new")}
    assert owners == {os.geteuid()}
    made.unlink()
    (env.writable / "sub" / "new").unlink()
    (env.writable / "existing.txt").write_text("original\n")


def test_the_scratch_directory_is_removed_even_when_locked(env: Env) -> None:
    code = """
        import os
        os.makedirs("sub/deeper")
        open("sub/deeper/file", "w").write("x")
        os.mkfifo("sub/pipe")
        os.symlink("/", "sub/root-link")
        os.chmod("sub/deeper", 0)
        os.chmod("sub", 0)
        print(os.getcwd())
        os.chmod(".", 0)
    """
    result = env.run(code, cwd_files={"input/seed": b"abc"})
    assert result.returncode == 0, result.output
    scratch = Path(result.output.decode().strip())
    assert scratch.parent == env.scratch_root
    assert not scratch.exists()
    assert list(env.scratch_root.iterdir()) == []


def test_cwd_files_are_in_place(env: Env) -> None:
    result = env.run("print(open('in/seed', 'rb').read())", cwd_files={"in/seed": b"\x00\xff"})
    assert result.output.strip() == b"b'\\x00\\xff'"
    with pytest.raises(SandboxConfigError, match=r"\.\./escape"):
        env.run("pass", cwd_files={"../escape": b""})


def test_the_stop_event_ends_a_run(env: Env) -> None:
    stop = threading.Event()
    timer = threading.Timer(0.5, stop.set)
    timer.start()
    try:
        result = env.run("while True: pass", stop=stop, limits=Limits(wall_seconds=30))
    finally:
        timer.cancel()
    assert result.stopped
    assert not result.timed_out
    assert 0.5 <= result.wall_seconds < 1.5


def test_lines_are_streamed_as_they_are_printed(env: Env) -> None:
    code = """
        import time
        for i in range(3):
            print("line", i)
            time.sleep(0.3)
    """
    seen: list[tuple[float, str]] = []
    started = time.monotonic()
    result = env.run(code, on_line=lambda line: seen.append((time.monotonic(), line)))
    ended = time.monotonic()
    assert [line for _, line in seen] == ["line 0", "line 1", "line 2"]
    stamps = [stamp for stamp, _ in seen]
    assert stamps[1] - stamps[0] > 0.2
    assert stamps[2] - stamps[1] > 0.2
    assert stamps[0] - started < ended - started - 0.5  # the first long before the end
    assert result.returncode == 0


def test_reported_protections_match_what_the_child_sees(env: Env) -> None:
    code = """
        import json, os, resource
        names = {"as": resource.RLIMIT_AS, "cpu": resource.RLIMIT_CPU,
                 "nproc": resource.RLIMIT_NPROC, "fsize": resource.RLIMIT_FSIZE,
                 "nofile": resource.RLIMIT_NOFILE, "core": resource.RLIMIT_CORE}
        status = dict(line.split(":", 1) for line in open("/proc/self/status"))
        print(json.dumps({
            "limits": {n: resource.getrlimit(r)[0] for n, r in names.items()},
            "uid": os.getuid(), "pgrp": os.getpgrp(), "pid": os.getpid(),
            "no_new_privs": status["NoNewPrivs"].strip(), "caps": status["CapEff"].strip(),
        }))
    """
    limits = Limits(
        wall_seconds=20,
        cpu_seconds=30,
        memory_bytes=1 << 30,
        max_processes=50,
        file_size_bytes=1 << 25,
        open_files=100,
    )
    result = env.run(code, limits=limits)
    seen = json.loads(result.output)
    protections = result.protections
    expected = {"as": 1 << 30, "cpu": 30, "nproc": 50, "fsize": 1 << 25, "nofile": 100}
    expected["core"] = 0
    assert set(protections.rlimits) == set(expected)
    assert seen["limits"] == expected
    assert protections.method == env.method
    assert protections.process_group
    assert protections.deadline
    assert protections.scratch
    assert protections.uid == env.uid
    if env.uid is not None:
        assert seen["uid"] == env.uid
        assert seen["caps"] == "0000000000000000"
    assert seen["no_new_privs"] == "1"
    assert protections.pid_namespace == (env.method == "bwrap")
    if protections.pid_namespace:
        assert seen["pid"] < 10  # a fresh PID namespace
    else:
        assert seen["pgrp"] == seen["pid"]  # the leader of its own process group
    again = type(protections).from_json(json.loads(json.dumps(protections.to_json())))
    assert again == protections
    assert json.loads(json.dumps(result.to_json()))["protections"]["method"] == env.method


def test_without_limits_only_core_dumps_are_limited(env: Env) -> None:
    limits = Limits(wall_seconds=20, max_processes=None, file_size_bytes=None, open_files=None)
    result = env.run("pass", limits=limits)
    assert result.protections.rlimits == ("core",)


def test_the_default_harness_uid_is_nobody_for_a_root_worker(base: Path) -> None:
    sandbox = Sandbox(scratch_root=base / "default-uid")
    caps = sandbox.capabilities()
    assert caps.uid == (65534 if ROOT else None)
    assert caps.method == "bwrap"


def _time_runs(runner: Callable[[], object], count: int = 10) -> float:
    times = []
    for _ in range(count):
        started = time.perf_counter()
        runner()
        times.append(time.perf_counter() - started)
    return sorted(times)[count // 2]


def test_start_up_overhead_is_small(env: Env) -> None:
    bare = _time_runs(lambda: subprocess.run([env.python, "-c", "pass"], check=True))
    boxed = _time_runs(lambda: env.run("pass"))
    print(f"{env.method}: bare {bare * 1000:.1f} ms, sandboxed {boxed * 1000:.1f} ms")
    assert boxed < bare + 0.5


def test_limits_apply_through_preexec_when_prlimit_is_missing(env: Env) -> None:
    without = Sandbox(
        scratch_root=env.scratch_root,
        harness_uid=env.uid,
        prefer=(env.method,),
        tools=replace(Tools.find(), prlimit=None),
    )
    code = """
        import resource
        print(resource.getrlimit(resource.RLIMIT_NOFILE)[0], resource.getrlimit(resource.RLIMIT_AS)[0])
    """  # noqa: E501
    policy = Policy(readonly_paths=env.runtime)
    argv = [env.python, "-c", textwrap.dedent(code)]
    limits = Limits(wall_seconds=20, open_files=77, memory_bytes=1 << 31)
    result = without.run(argv, limits=limits, policy=policy)
    assert result.output.split() == [b"77", str(1 << 31).encode()]


NON_ROOT_RUNNER = """
import json, os, sys
from pathlib import Path
from workers.sandbox import Limits, Policy, Sandbox

python, scratch, port = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
code = '''
import os, socket, sys
try:
    os.kill(int(sys.argv[1]), 9)
    print("killed the runner")
except OSError as exc:
    print("kill refused", exc.errno)
try:
    socket.create_connection(("127.0.0.1", int(sys.argv[2])), timeout=2)
    print("connected")
except OSError as exc:
    print("network refused", exc.errno)
print("uid", os.getuid())
'''
sandbox = Sandbox(scratch_root=scratch, prefer=("bwrap",))
result = sandbox.run([python, "-c", code, str(os.getpid()), port],
                     limits=Limits(wall_seconds=20), policy=Policy())
print(json.dumps({"result": result.to_json(), "runner_uid": os.getuid()}))
"""


def test_a_non_root_worker_gets_namespaces_without_a_uid_change(
    base: Path, tcp_server: int
) -> None:
    if not ROOT:
        pytest.skip("starting a worker under another uid needs root")
    uid = UID_BASE + 3
    package = base / "nonroot" / "pkg" / "workers"
    package.mkdir(parents=True)
    source = Path(__file__).resolve().parents[2] / "workers"
    for module in ("__init__.py", "errors.py", *(p.name for p in source.glob("sandbox*.py"))):
        (package / module).write_bytes((source / module).read_bytes())
    scratch = base / "nonroot" / "scratch"
    scratch.mkdir()
    os.chown(scratch, uid, uid)
    python, _ = _interpreter_for("uid", uid)
    runner = [
        *("setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--"),
        *(python, "-c", NON_ROOT_RUNNER, python, str(scratch), str(tcp_server)),
    ]
    done = subprocess.run(
        runner,
        capture_output=True,
        timeout=60,
        cwd=package.parent,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(package.parent)},
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    report = json.loads(done.stdout.decode().splitlines()[-1])
    result = report["result"]
    assert report["runner_uid"] == uid
    assert result["protections"]["method"] == "bwrap"
    assert result["protections"]["uid"] is None
    assert result["protections"]["pid_namespace"] is True
    assert result["protections"]["network_isolated"] is True
    assert "nproc" in result["protections"]["rlimits"]
    lines = result["output"].splitlines()
    assert lines[0].startswith("kill refused"), lines
    assert lines[1].startswith("network refused"), lines
    assert lines[2] == f"uid {uid}"


def test_paths_the_harness_uid_cannot_reach_are_refused_up_front(env: Env) -> None:
    private = env.base / "private"
    private.mkdir(mode=0o700, exist_ok=True)
    private.chmod(0o700)
    policy = Policy(readonly_paths=(*env.runtime, private))
    argv = [env.python, "-c", "pass"]
    if env.uid is not None:
        with pytest.raises(SandboxConfigError, match=r"cannot reach .*private.*0o700"):
            env.sandbox.run(argv, limits=Limits(wall_seconds=5), policy=policy)
    missing = Policy(readonly_paths=(env.base / "missing",))
    with pytest.raises(SandboxConfigError, match="does not exist"):
        env.sandbox.run(argv, limits=Limits(wall_seconds=5), policy=missing)
    assert list(env.scratch_root.iterdir()) == []


def test_ordinary_harness_needs_still_work(env: Env) -> None:
    code = """
        import multiprocessing, os, subprocess, tempfile
        multiprocessing.Lock()  # needs a writable /dev/shm
        with tempfile.TemporaryFile(dir="/tmp") as f:
            f.write(b"x")
        with tempfile.TemporaryFile() as f:  # TMPDIR: the scratch directory
            f.write(b"x")
        print(subprocess.run(["sh", "-c", "echo child $((6 * 7))"], capture_output=True,
                             text=True, check=True).stdout.strip())
    """
    result = env.run(code)
    assert result.returncode == 0, result.output
    assert result.output.strip() == b"child 42"


def test_concurrent_runs_do_not_disturb_each_other(env: Env) -> None:
    # Under the uid sweep a second run of the same uid would kill the first one's
    # processes; the sandbox serializes those, and namespaces keep the others apart.
    results: dict[str, RunResult] = {}

    def run(name: str, code: str) -> None:
        results[name] = env.run(code)

    slow = "import time; time.sleep(0.6); print('slow done')"
    fast = "print('fast done')"
    threads = [threading.Thread(target=run, args=args) for args in (("slow", slow),)]
    threads[0].start()
    time.sleep(0.2)
    threads.append(threading.Thread(target=run, args=("fast", fast)))
    threads[1].start()
    for thread in threads:
        thread.join()
    assert results["slow"].output.strip() == b"slow done", results["slow"]
    assert results["fast"].output.strip() == b"fast done", results["fast"]
    assert results["slow"].returncode == results["fast"].returncode == 0

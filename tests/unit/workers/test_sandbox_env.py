"""The sandbox's pure parts: environment, command lines, exit statuses, output bounds."""

from __future__ import annotations

import itertools
import json
import os
import stat
from pathlib import Path, PurePosixPath
from typing import ClassVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from workers.errors import SandboxConfigError, SandboxUnavailableError
from workers.sandbox import Limits, Policy, Protections, RunResult, Sandbox
from workers.sandbox_command import (
    HostFiles,
    Mounts,
    bwrap_argv,
    decode_status,
    prlimit_argv,
    rlimit_values,
    setpriv_argv,
    unshare_argv,
)
from workers.sandbox_env import build_env, looks_secret
from workers.sandbox_output import CUT_MARK, BoundedCapture, LineSplitter
from workers.sandbox_probe import Tools
from workers.sandbox_procs import processes, read_child_pid, read_proc
from workers.sandbox_scratch import check_file_name, give_back, lend, remove_tree, unreachable

SCRATCH = Path("/scratch/run-1")

# --- environment -----------------------------------------------------------------------


def test_only_allow_listed_variables_pass_through() -> None:
    environ = {
        "PATH": "/opt/bin:/usr/bin",
        "LANG": "de_DE.UTF-8",
        "AWS_SECRET_ACCESS_KEY": "s3cr3t",
        "FUZZORCH_TOKEN": "t0k3n",
        "PYTHONPATH": "/worker/src",
        "LD_PRELOAD": "/evil.so",
        "HOME": "/root",
    }
    env = build_env(environ, {}, scratch=SCRATCH)
    assert env == {
        "PATH": "/opt/bin:/usr/bin",
        "LANG": "de_DE.UTF-8",
        "HOME": str(SCRATCH),
        "TMPDIR": str(SCRATCH),
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONNOUSERSITE": "1",
    }


def test_an_empty_environ_still_gives_a_usable_path() -> None:
    env = build_env({}, {"HARNESS_SEED": "3"}, scratch=SCRATCH)
    assert env["PATH"] == "/usr/local/bin:/usr/bin:/bin"
    assert env["LANG"] == "C.UTF-8"
    assert env["HARNESS_SEED"] == "3"


def test_a_secret_looking_extra_variable_is_refused_without_showing_its_value() -> None:
    with pytest.raises(SandboxConfigError, match="'GITHUB_TOKEN'") as caught:
        build_env({}, {"GITHUB_TOKEN": "ghp_value"}, scratch=SCRATCH)
    assert "ghp_value" not in str(caught.value)


def test_an_explicitly_allowed_secret_name_passes() -> None:
    env = build_env(
        {}, {"PIP_TOKEN": "x"}, scratch=SCRATCH, allow_secret_names=frozenset({"PIP_TOKEN"})
    )
    assert env["PIP_TOKEN"] == "x"


@pytest.mark.parametrize("name", ["", "A=B", "1X", "A B", "A\0B", "É"])
def test_malformed_variable_names_are_refused(name: str) -> None:
    with pytest.raises(SandboxConfigError, match="Invalid environment variable name"):
        build_env({}, {name: "v"}, scratch=SCRATCH)


def test_a_value_with_nul_is_refused() -> None:
    with pytest.raises(SandboxConfigError, match="'X'"):
        build_env({}, {"X": "a\0b"}, scratch=SCRATCH)


@pytest.mark.parametrize(
    "name",
    [
        "AWS_ACCESS_KEY_ID",
        "aws_secret_access_key",
        "FUZZORCH_DATABASE_URL",
        "FUZZORCH_ANYTHING",
        "GITHUB_TOKEN",
        "HF_TOKEN",
        "ACCESS_TOKEN_FILE",
        "MY_API_KEY",
        "APIKEY",
        "DB_PASSWORD",
        "PGPASSWORD",
        "SENTRY_DSN",
        "HTTP_AUTHORIZATION",
        "BASIC_AUTH",
        "SSH_PRIVATE_KEY",
        "SIGNING_KEY",
        "DATABASE_URL",
        "CLIENT_SECRET",
        "GOOGLE_APPLICATION_CREDENTIALS",
    ],
)
def test_secret_names_are_recognised(name: str) -> None:
    assert looks_secret(name)


@pytest.mark.parametrize(
    "name",
    [
        "PATH",
        "HOME",
        "PYTHONHASHSEED",
        "GIT_AUTHOR_NAME",
        "TOKENIZERS_PARALLELISM",
        "PIP_INDEX_URL",
        "HARNESS_SEED",
        "KEYBOARD",
        "MONKEY",
        "ATHERIS_OPTIONS",
    ],
)
def test_ordinary_names_are_not_taken_for_secrets(name: str) -> None:
    assert not looks_secret(name)


# --- values ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("wall_seconds", 0),
        ("wall_seconds", -1),
        ("wall_seconds", float("nan")),
        ("wall_seconds", float("inf")),
        ("cpu_seconds", 0),
        ("memory_bytes", -5),
        ("max_processes", 1.5),
        ("open_files", 0),
        ("file_size_bytes", -1),
        ("kill_grace_seconds", -0.1),
    ],
)
def test_limits_refuse_nonsense(field: str, value: float) -> None:
    arguments: dict[str, float] = {"wall_seconds": 10, field: value}
    with pytest.raises(SandboxConfigError, match=field):
        Limits(**arguments)  # type: ignore[arg-type]


def test_a_policy_wants_absolute_paths_listed_once() -> None:
    with pytest.raises(SandboxConfigError, match="'relative/venv'"):
        Policy(readonly_paths=(Path("relative/venv"),))
    with pytest.raises(SandboxConfigError, match="both"):
        Policy(readonly_paths=(Path("/a"),), writable_paths=(Path("/a"),))


def test_a_policy_keeps_its_own_copy_of_the_environment() -> None:
    extra = {"A": "1"}
    policy = Policy(extra_env=extra)
    extra["B"] = "2"
    assert dict(policy.extra_env) == {"A": "1"}
    with pytest.raises(TypeError):
        policy.extra_env["C"] = "3"  # type: ignore[index]


PROTECTIONS = Protections(
    method="bwrap",
    process_group=True,
    deadline=True,
    rlimits=("as", "nproc", "core"),
    network_isolated=True,
    pid_namespace=True,
    uid=65534,
    env_allowlist=True,
    scratch=True,
    readonly_mounts=True,
)


def test_protections_round_trip_through_json() -> None:
    data = json.loads(json.dumps(PROTECTIONS.to_json()))
    assert data["rlimits"] == ["as", "nproc", "core"]
    assert Protections.from_json(data) == PROTECTIONS


def test_a_run_result_becomes_json_with_its_output_as_text() -> None:
    result = RunResult(
        returncode=None,
        signal=11,
        timed_out=False,
        stopped=False,
        wall_seconds=0.123456,
        output=b"boom \xff\n",
        output_dropped_bytes=0,
        protections=PROTECTIONS,
    )
    data = json.loads(json.dumps(result.to_json()))
    assert data["output"] == "boom \ufffd\n"
    assert data["signal"] == 11
    assert data["wall_seconds"] == 0.123
    assert data["protections"]["method"] == "bwrap"


# --- exit statuses ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "via_bwrap", "expected"),
    [
        (0, True, (0, None)),
        (77, True, (77, None)),
        (1, False, (1, None)),
        (-11, False, (None, 11)),
        (-9, True, (None, 9)),  # we killed bwrap itself
        (139, True, (None, 11)),  # bwrap's 128 + SIGSEGV
        (137, True, (None, 9)),
        (139, False, (139, None)),  # without bwrap an exit code is an exit code
        (128, True, (128, None)),
        (193, True, (193, None)),
    ],
)
def test_exit_statuses_are_decoded(
    status: int, via_bwrap: bool, expected: tuple[int | None, int | None]
) -> None:
    assert decode_status(status, via_bwrap=via_bwrap) == expected


# --- command lines ---------------------------------------------------------------------


def test_rlimits_skip_the_process_limit_where_the_kernel_ignores_it() -> None:
    limits = Limits(wall_seconds=5, cpu_seconds=7, memory_bytes=1 << 30, max_processes=9)
    assert rlimit_values(limits, drop_uid=True, root=True) == {
        "as": 1 << 30,
        "cpu": 7,
        "nproc": 9,
        "fsize": 1 << 30,
        "nofile": 1024,
        "core": 0,
    }
    assert "nproc" not in rlimit_values(limits, drop_uid=False, root=True)
    assert "nproc" in rlimit_values(limits, drop_uid=False, root=False)
    bare = Limits(wall_seconds=5, max_processes=None, file_size_bytes=None, open_files=None)
    assert rlimit_values(bare, drop_uid=True, root=True) == {"core": 0}


def test_prlimit_gets_a_second_of_grace_on_cpu_only() -> None:
    argv = prlimit_argv("/usr/bin/prlimit", {"as": 100, "cpu": 5, "core": 0})
    assert argv == ["/usr/bin/prlimit", "--as=100:100", "--cpu=5:6", "--core=0:0", "--"]


def test_setpriv_drops_to_the_harness_uid_with_no_capabilities() -> None:
    argv = setpriv_argv("/usr/bin/setpriv", 65534, 65533)
    assert argv[0] == "/usr/bin/setpriv"
    assert {"--reuid=65534", "--regid=65533", "--clear-groups"} <= set(argv)
    assert {"--inh-caps=-all", "--bounding-set=-all", "--no-new-privs"} <= set(argv)
    assert argv[-1] == "--"
    hardening_only = setpriv_argv("/usr/bin/setpriv", None, None)
    assert hardening_only == ["/usr/bin/setpriv", "--no-new-privs", "--pdeathsig=KILL", "--"]


def test_unshare_needs_a_user_namespace_only_without_root() -> None:
    assert unshare_argv("unshare", root=True) == ["unshare", "--net", "--ipc", "--"]
    assert "--map-current-user" in unshare_argv("unshare", root=False)


class FakeHost(HostFiles):
    """A merged-/usr host without /lib32 and /libx32."""

    links: ClassVar[dict[str, str]] = {
        "/bin": "usr/bin",
        "/sbin": "usr/sbin",
        "/lib": "usr/lib",
        "/lib64": "usr/lib64",
    }

    def kind(self, path: str) -> str:
        return "link" if path in self.links else ""

    def readlink(self, path: str) -> str:
        return self.links[path]


def _options(argv: list[str], option: str) -> list[str]:
    return [argv[i + 1] for i, arg in enumerate(argv) if arg == option]


def test_bwrap_binds_the_system_read_only_and_the_callers_paths_in_order() -> None:
    mounts = Mounts(
        readonly=(Path("/root/.pyenv/versions/3.11"), Path("/srv/cache/venv")),
        writable=(Path("/tmp/fz/run-1"), Path("/srv/cache/venv/out")),
        chdir=Path("/tmp/fz/run-1"),
    )
    argv = bwrap_argv("bwrap", mounts, network=False, root=True, host=FakeHost())
    assert argv[:2] == ["bwrap", "--die-with-parent"]
    assert "--unshare-net" in argv
    assert "--unshare-pid" in argv
    assert "--unshare-all" not in argv  # as root: no user namespace, a real uid instead
    assert argv[argv.index("--symlink") + 1 : argv.index("--symlink") + 3] == ["usr/bin", "/bin"]
    assert "/lib32" not in argv
    assert _options(argv, "--ro-bind")[:1] == ["/usr"]
    assert "/etc/shadow" not in argv
    assert "/etc/passwd" in _options(argv, "--ro-bind-try")
    # Parents the harness uid must walk through, made world-searchable; none inside binds.
    assert _options(argv, "--dir") == [
        "/etc",
        "/srv",
        "/srv/cache",
        "/tmp/fz",
        "/root",
        "/root/.pyenv",
        "/root/.pyenv/versions",
    ]
    assert _options(argv, "--perms").count("0755") == 7
    assert _options(argv, "--tmpfs") == ["/dev/shm", "/tmp"]
    binds = [(a, argv[i + 1]) for i, a in enumerate(argv) if a in ("--bind", "--ro-bind")]
    # Shallow before deep, so a writable path inside a read-only one is bound over it.
    assert binds[1:] == [
        ("--ro-bind", "/srv/cache/venv"),
        ("--bind", "/tmp/fz/run-1"),
        ("--ro-bind", "/root/.pyenv/versions/3.11"),
        ("--bind", "/srv/cache/venv/out"),
    ]
    assert argv[-3:] == ["--chdir", "/tmp/fz/run-1", "--"]


def test_bwrap_shares_the_network_for_builds_and_reports_its_namespace() -> None:
    mounts = Mounts(readonly=(), writable=(Path("/s"),), chdir=Path("/s"))
    as_root = bwrap_argv("bwrap", mounts, network=True, root=True, status_fd=5, host=FakeHost())
    assert "--unshare-net" not in as_root
    assert as_root[as_root.index("--json-status-fd") + 1] == "5"
    unprivileged = bwrap_argv("bwrap", mounts, network=True, root=False, host=FakeHost())
    assert "--unshare-all" in unprivileged
    assert "--share-net" in unprivileged
    isolated = bwrap_argv("bwrap", mounts, network=False, root=False, host=FakeHost())
    assert "--share-net" not in isolated


# --- output ----------------------------------------------------------------------------


def test_a_capture_keeps_head_and_tail_and_counts_the_rest() -> None:
    capture = BoundedCapture(head=4, tail=6)
    for chunk in (b"abc", b"defghij", b"klmnop"):
        capture.feed(chunk)
    assert capture.dropped == 6
    assert capture.value() == b"abcd\n[\xe2\x80\xa6 6 bytes of output dropped \xe2\x80\xa6]\nklmnop"


@given(data=st.binary(max_size=400), cuts=st.lists(st.integers(0, 400), max_size=10))
def test_a_capture_is_the_same_however_the_stream_is_cut(data: bytes, cuts: list[int]) -> None:
    capture = BoundedCapture(head=16, tail=32)
    bounds = sorted({0, len(data), *(c for c in cuts if c <= len(data))})
    for start, end in itertools.pairwise(bounds):
        capture.feed(data[start:end])
    assert capture.total == len(data)
    if len(data) <= 48:
        assert capture.dropped == 0
        assert capture.value() == data
    else:
        assert capture.dropped == len(data) - 48
        value = capture.value()
        assert value.startswith(data[:16])
        assert value.endswith(data[-32:])


def _split(chunks: list[bytes], max_line: int = 10) -> list[str]:
    lines: list[str] = []
    splitter = LineSplitter(lines.append, max_line=max_line)
    for chunk in chunks:
        splitter.feed(chunk)
    splitter.close()
    return lines


def test_lines_are_joined_across_chunks_and_cut_when_too_long() -> None:
    assert _split([b"ab", b"c\nde\r\n", b"f"]) == ["abc", "de", "f"]
    long = _split([b"0123456", b"789abcdef", b"ghij\nnext\n"])
    assert long == ["0123456789" + CUT_MARK, "next"]
    assert _split([b"\xff\xfe ok\n"]) == ["\ufffd\ufffd ok"]
    assert _split([b"\n\n"]) == ["", ""]


@given(
    lines=st.lists(st.text(alphabet="abc xyz", max_size=8), max_size=10),
    cuts=st.lists(st.integers(0, 120), max_size=6),
)
def test_lines_are_the_same_however_the_stream_is_cut(lines: list[str], cuts: list[int]) -> None:
    data = "".join(line + "\n" for line in lines).encode()
    bounds = sorted({0, len(data), *(c for c in cuts if c <= len(data))})
    chunks = [data[a:b] for a, b in itertools.pairwise(bounds)]
    assert _split(chunks) == lines


# --- scratch ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["seed", "in/seed", "a/b/c.txt", ".hidden"])
def test_plain_relative_file_names_are_accepted(name: str) -> None:
    assert check_file_name(name) == PurePosixPath(name)


@pytest.mark.parametrize("name", ["", "/etc/passwd", "../x", "a/../../x", "a//b", "a/", "x\0y"])
def test_file_names_that_could_escape_are_refused(name: str) -> None:
    with pytest.raises(SandboxConfigError, match="Invalid scratch file name"):
        check_file_name(name)


def test_reachability_is_judged_from_the_modes(tmp_path: Path) -> None:
    top = tmp_path / "top"
    inner = top / "inner"
    inner.mkdir(parents=True)
    top.chmod(0o700)
    inner.chmod(0o755)
    stranger = 54321
    assert unreachable(inner, stranger, stranger, ancestors=False) is None
    why = unreachable(inner, stranger, stranger, ancestors=True)
    assert why is not None
    assert "0o700" in why
    owner = top.stat().st_uid
    assert unreachable(top, owner, -1, ancestors=False) is None
    top.chmod(0o750)
    assert unreachable(top, stranger, top.stat().st_gid, ancestors=False) is None
    top.chmod(0o755)


def test_a_locked_tree_is_removed(tmp_path: Path) -> None:
    root = tmp_path / "scratch"
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "b" / "f").write_text("x")
    (root / "link").symlink_to(tmp_path)
    (root / "a" / "b").chmod(0)
    (root / "a").chmod(0)
    root.chmod(stat.S_IRUSR)
    assert remove_tree(root)
    assert not root.exists()
    assert tmp_path.exists()  # the symlink was not followed


# --- /proc and bwrap's status ----------------------------------------------------------


def _fake_proc(root: Path, pid: int, comm: str, *, state: str, pgrp: int, uid: int) -> None:
    (root / str(pid)).mkdir(parents=True)
    stat_line = f"{pid} ({comm}) {state} 1 {pgrp} {pgrp} 0 -1 4194560 0 0\n"
    (root / str(pid) / "stat").write_text(stat_line)
    status = f"Name:\t{comm}\nState:\t{state}\nUid:\t{uid}\t{uid}\t{uid}\t{uid}\n"
    (root / str(pid) / "status").write_text(status)


def test_proc_entries_are_parsed_even_with_a_hostile_command_name(tmp_path: Path) -> None:
    _fake_proc(tmp_path, 10, "evil) R 1 1 1", state="S", pgrp=77, uid=65534)
    _fake_proc(tmp_path, 11, "zombie", state="Z", pgrp=77, uid=65534)
    (tmp_path / "self").mkdir()
    info = read_proc(10, str(tmp_path))
    assert info is not None
    assert (info.state, info.pgrp, info.uids) == ("S", 77, (65534,) * 4)
    assert read_proc(12, str(tmp_path)) is None
    assert [p.pid for p in processes(str(tmp_path))] == [10]


def test_bwraps_status_line_names_the_namespace_init() -> None:
    read_fd, write_fd = os.pipe()
    try:
        os.write(write_fd, b'{ "child-pid": 4242, "pid-namespace": 1 }\n{ "exit-code": 0 }\n')
        assert read_child_pid(read_fd, 1.0) == 4242
    finally:
        os.close(read_fd)
        os.close(write_fd)
    for payload in (b"", b"garbage\n", b'{"child-pid": "x"}\n'):
        read_fd, write_fd = os.pipe()
        os.write(write_fd, payload)
        os.close(write_fd)
        try:
            assert read_child_pid(read_fd, 1.0) is None
        finally:
            os.close(read_fd)


# --- construction ----------------------------------------------------------------------


def test_a_sandbox_refuses_unknown_methods_and_a_root_harness(tmp_path: Path) -> None:
    with pytest.raises(SandboxConfigError, match="'firejail'"):
        Sandbox(scratch_root=tmp_path, prefer=("bwrap", "firejail"))
    with pytest.raises(SandboxConfigError, match="absolute"):
        Sandbox(scratch_root=Path("relative"))
    if os.geteuid() == 0:
        with pytest.raises(SandboxConfigError, match="unprivileged"):
            Sandbox(scratch_root=tmp_path, harness_uid=0)
    else:
        with pytest.raises(SandboxConfigError, match="needs a root worker"):
            Sandbox(scratch_root=tmp_path, harness_uid=os.getuid() + 1)


def test_a_root_worker_never_falls_back_to_running_code_as_root(tmp_path: Path) -> None:
    nothing = Tools(prlimit=None, setpriv=None, unshare=None, bwrap=None, true="/bin/true")
    if os.geteuid() != 0:
        pytest.skip("only a root worker could run harnesses as root")
    sandbox = Sandbox(scratch_root=tmp_path, tools=nothing)
    with pytest.raises(SandboxUnavailableError, match="as root"):
        sandbox.capabilities()
    allowed = Sandbox(scratch_root=tmp_path, tools=nothing, prefer=("bwrap", "none"))
    caps = allowed.capabilities()
    assert caps.method == "none"
    assert caps.uid is None
    assert not caps.network_isolated
    assert "nproc" not in caps.rlimits  # root's processes are not counted


def test_a_lent_tree_is_handed_over_and_back_except_hard_links(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("changing owners needs root")
    harness = (54321, 54321)
    tree = tmp_path / "corpus"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "unit").write_bytes(b"1")
    outside = tmp_path / "outside-secret"
    outside.write_text("s")
    os.link(outside, tree / "planted")  # what an earlier run could have left behind
    (tree / "link").symlink_to(outside)
    lent = lend([tree], harness)
    assert {(tree / n).lstat().st_uid for n in ("", "sub", "sub/unit", "link")} == {54321}
    assert outside.stat().st_uid == 0
    os.chown(tree / "sub" / "unit", 777, 777)  # not the harness's any more: left alone
    (tree / "made").write_bytes(b"2")
    os.chown(tree / "made", *harness)
    give_back(lent, harness)
    assert {(tree / n).lstat().st_uid for n in ("", "sub", "made", "link")} == {0}
    assert (tree / "sub" / "unit").stat().st_uid == 777
    assert outside.stat().st_uid == 0

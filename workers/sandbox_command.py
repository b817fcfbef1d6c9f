"""The command line that confines a child: pure functions from values to an argv.

A run is a chain of small util-linux and bubblewrap programs that each set one thing up and
then ``exec`` the next, so no Python runs between ``fork`` and ``exec`` in a threaded worker:

    prlimit --as=… --nproc=… --            resource limits (inherited by everything below)
    bwrap … --  |  unshare --net --        namespaces (either, or neither)
    setpriv --reuid U --regid G … --       the unprivileged uid, no new privileges
    argv

``setpriv`` comes last because mounting and creating a network namespace need root; inside
bwrap the uid drop happens after the mounts, so the harness uid never needs to reach the
host paths (only the bound copies of them, whose parents bwrap creates world-searchable).
"""

from __future__ import annotations

import resource
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from workers.sandbox_model import Limits

# (prlimit option, resource) in the order they are applied; "core" is always 0.
_RLIMITS = (
    ("as", resource.RLIMIT_AS),
    ("cpu", resource.RLIMIT_CPU),
    ("nproc", resource.RLIMIT_NPROC),
    ("fsize", resource.RLIMIT_FSIZE),
    ("nofile", resource.RLIMIT_NOFILE),
    ("core", resource.RLIMIT_CORE),
)

# Host top-level entries the child sees: /usr read-only, plus the merged-/usr links.
_SYSTEM_DIRS = ("/usr",)
# The child's own /tmp: an empty tmpfs inside the mount namespace, not the host's.
_SANDBOX_TMP = "/tmp"  # noqa: S108
_SANDBOX_SHM = "/dev/shm"  # noqa: S108
_SYSTEM_LINKS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
# Just enough of /etc for the dynamic loader, name lookups, TLS and the locale; never the
# whole of it (shadow, the worker's own configuration, …).
_ETC_FILES = (
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/alternatives",
    "/etc/passwd",
    "/etc/group",
    "/etc/nsswitch.conf",
    "/etc/host.conf",
    "/etc/hosts",
    "/etc/resolv.conf",
    "/etc/gai.conf",
    "/etc/protocols",
    "/etc/services",
    "/etc/localtime",
    "/etc/mime.types",
    "/etc/ssl",
    "/etc/ca-certificates",
    "/etc/pki",
)


def rlimit_values(limits: Limits, *, drop_uid: bool, root: bool) -> dict[str, int]:
    """The limits to set, by prlimit name; soft and hard are equal except for CPU."""
    values: dict[str, int] = {"core": 0}
    if limits.memory_bytes is not None:
        values["as"] = limits.memory_bytes
    if limits.cpu_seconds is not None:
        values["cpu"] = limits.cpu_seconds
    # The kernel does not count root's processes: a limit there would only be for show.
    if limits.max_processes is not None and (drop_uid or not root):
        values["nproc"] = limits.max_processes
    if limits.file_size_bytes is not None:
        values["fsize"] = limits.file_size_bytes
    if limits.open_files is not None:
        values["nofile"] = limits.open_files
    return {name: values[name] for name, _ in _RLIMITS if name in values}


def _soft_hard(name: str, value: int) -> tuple[int, int]:
    # SIGXCPU at the soft limit lets the child be classified; SIGKILL a second later.
    return (value, value + 1) if name == "cpu" else (value, value)


def prlimit_argv(prlimit: str, values: dict[str, int]) -> list[str]:
    """``prlimit --NAME=SOFT:HARD … --``: limits set on itself, then inherited."""
    options = [f"--{name}={':'.join(map(str, _soft_hard(name, v)))}" for name, v in values.items()]
    return [prlimit, *options, "--"]


def apply_rlimits(values: dict[str, int]) -> None:
    """Set the limits on the current process (the fallback when prlimit is missing)."""
    by_name = dict(_RLIMITS)
    for name, value in values.items():
        resource.setrlimit(by_name[name], _soft_hard(name, value))


def setpriv_argv(setpriv: str, uid: int | None, gid: int | None) -> list[str]:
    """``setpriv`` to the harness uid with no capabilities, or just hardening if None."""
    argv = [setpriv]
    if uid is not None and gid is not None:
        argv += [
            f"--reuid={uid}",
            f"--regid={gid}",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
        ]
    # After the uid change, which would clear it: die with the process that started us.
    return [*argv, "--no-new-privs", "--pdeathsig=KILL", "--"]


def unshare_argv(unshare: str, *, root: bool) -> list[str]:
    """``unshare`` into a new network (and IPC) namespace; as non-root via a user namespace."""
    argv = [unshare, "--net", "--ipc"]
    if not root:
        argv += ["--user", "--map-current-user"]
    return [*argv, "--"]


@dataclass(frozen=True)
class Mounts:
    """The caller's part of the child's filesystem: bind sources at the same paths."""

    readonly: tuple[Path, ...]
    writable: tuple[Path, ...]
    chdir: Path


def bwrap_argv(
    bwrap: str,
    mounts: Mounts,
    *,
    network: bool,
    root: bool,
    status_fd: int | None = None,
    host: HostFiles | None = None,
) -> list[str]:
    """``bwrap`` with fresh namespaces, the system read-only, and the caller's binds."""
    argv = [bwrap, "--die-with-parent"]
    if status_fd is not None:
        # Tells us the namespace's first process, whose exit means everything is gone.
        argv += ["--json-status-fd", str(status_fd)]
    if root:
        # No user namespace: the child is a real unprivileged uid (setpriv, next in the
        # chain), so the process limit counts and host files it writes are its own.
        argv += ["--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
        if not network:
            argv.append("--unshare-net")
    else:
        argv.append("--unshare-all")
        if network:
            argv.append("--share-net")
    argv += ["--hostname", "sandbox"]  # not the worker's
    argv += _system_binds(host or HOST)
    argv += ["--proc", "/proc", "--dev", "/dev"]
    # Sticky and world-writable like the real ones: created by root, they would be 0755.
    for tmpfs in (_SANDBOX_SHM, _SANDBOX_TMP):
        argv += ["--perms", "1777", "--tmpfs", tmpfs]
    argv += _caller_binds(mounts)
    return [*argv, "--chdir", str(mounts.chdir), "--"]


class HostFiles:
    """How the builder looks at the host's top-level entries (a seam for tests)."""

    def kind(self, path: str) -> str:
        """``"dir"``, ``"file"``, ``"link"``, or ``""`` when absent."""
        p = Path(path)
        if p.is_symlink():
            return "link"
        if p.is_dir():
            return "dir"
        return "file" if p.exists() else ""

    def readlink(self, path: str) -> str:
        """A symlink's target."""
        return str(Path(path).readlink())


HOST = HostFiles()


def _system_binds(exists: HostFiles) -> list[str]:
    argv: list[str] = []
    for path in _SYSTEM_DIRS:
        argv += ["--ro-bind", path, path]
    for path in _SYSTEM_LINKS:
        kind = exists.kind(path)
        if kind == "link":
            argv += ["--symlink", exists.readlink(path), path]
        elif kind == "dir":
            argv += ["--ro-bind", path, path]
    argv += ["--perms", "0755", "--dir", "/etc"]
    for path in _ETC_FILES:
        argv += ["--ro-bind-try", path, path]
    return argv


def _caller_binds(mounts: Mounts) -> list[str]:
    """Binds in depth order, each after ``--dir`` for parents no earlier mount provides."""
    binds = [(p, "--ro-bind") for p in mounts.readonly] + [(p, "--bind") for p in mounts.writable]
    binds.sort(key=lambda item: len(item[0].parts))
    # Inside a bind the host's tree is visible, so its subdirectories already exist; the
    # empty directories (tmpfs, --dir) have only what we create in them.
    bound = {PurePosixPath(p) for p in _SYSTEM_DIRS}
    made = {PurePosixPath(p) for p in ("/", "/etc", "/proc", "/dev", _SANDBOX_TMP)}
    argv: list[str] = []
    for path, option in binds:
        target = PurePosixPath(path)
        for parent in reversed(target.parents):
            if parent in bound:
                break
            if parent not in made:
                # bwrap would create it 0700 as root: the harness uid could not walk through.
                argv += ["--perms", "0755", "--dir", str(parent)]
                made.add(parent)
        argv += [option, str(target), str(target)]
        bound.add(target)
    return argv


def decode_status(returncode: int, *, via_bwrap: bool) -> tuple[int | None, int | None]:
    """``(returncode, signal)`` of the harness from the exit status of the chain's head.

    bwrap turns a child killed by signal N into its own exit code 128+N, so under bwrap
    those codes are read as signals: a harness that itself exits with 129 to 192 is reported
    as killed by that signal (harnesses do not use those codes; libFuzzer uses 77 and 1).
    """
    if returncode < 0:
        return None, -returncode
    if via_bwrap and 128 < returncode <= 128 + 64:
        return None, returncode - 128
    return returncode, None


def command(*parts: Sequence[str]) -> list[str]:
    """Concatenate argv pieces."""
    return [arg for part in parts for arg in part]

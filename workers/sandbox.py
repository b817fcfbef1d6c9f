"""Running untrusted code (fuzz harnesses, environment builds) in a contained child process.

The strongest method that works here is probed once and recorded with every result:

- ``bwrap``: bubblewrap gives fresh PID, network (unless ``network=True``), IPC, UTS and
  mount namespaces. The child sees ``/usr`` and a few ``/etc`` files read-only, the
  caller's read-only and writable paths bound at their own paths, a fresh ``/proc``, a
  minimal ``/dev`` and an empty ``/tmp``; nothing else of the host. Ending bwrap ends its
  PID namespace, so every process the harness forked dies with it, ``setsid`` or not.
- ``unshare``: a network (and IPC) namespace only; the filesystem is the host's.
- ``uid``: no namespace. Reaping relies on the uid: after the run every process of the
  harness uid is killed, found by scanning ``/proc``.
- ``none``: rlimits, the process group and the deadline only (a worker that is neither
  root nor allowed user namespaces). Never chosen for a root worker unless asked for.

When the worker is root, the child runs as ``harness_uid`` (default 65534, ``nobody``,
which exists in every Debian ``/etc/passwd``, so tools that look up the current user
work): the process limit then counts, the harness cannot signal the worker, and without
bwrap it can write only what file modes allow it to. So the caller must make read-only
paths (interpreter prefix, virtualenv, worktree) readable by that uid (world-readable
files, world-searchable directories; without bwrap every parent directory too) and not
writable by it; writable paths (whole trees) are handed to the uid for the run and
handed back after, with what the harness created in them.
Give each concurrently running Sandbox its own uid: the process limit is per uid, and the
``unshare``/``uid`` sweeps kill every process of the uid (runs sharing a uid under those
methods are serialized here to stay correct).

Under bwrap, the harness's death by signal N reaches us as bwrap's exit code 128+N; it
is reported as ``signal=N`` (see ``sandbox_command.decode_status``).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path

from workers.errors import SandboxConfigError, SandboxUnavailableError
from workers.sandbox_command import (
    Mounts,
    command,
    prlimit_argv,
    rlimit_values,
)
from workers.sandbox_env import build_env
from workers.sandbox_exec import Launch, execute, preexec_limits
from workers.sandbox_model import METHODS, Limits, Policy, Protections, RunResult
from workers.sandbox_probe import Identity, Tools, chain, usable
from workers.sandbox_procs import BwrapStatus, uid_lock
from workers.sandbox_scratch import give_back, lend, make_scratch, remove_tree, unreachable

__all__ = ["Limits", "Policy", "Protections", "RunResult", "Sandbox"]

logger = logging.getLogger(__name__)

DEFAULT_HARNESS_UID = 65534


class Sandbox:
    """Runs argv vectors confined by the strongest isolation method available here."""

    def __init__(
        self,
        *,
        scratch_root: Path,
        harness_uid: int | None = None,
        harness_gid: int | None = None,
        prefer: Sequence[str] = ("bwrap", "unshare", "uid"),
        environ: Mapping[str, str] | None = None,
        tools: Tools | None = None,
    ) -> None:
        unknown = [m for m in prefer if m not in METHODS]
        if unknown:
            raise SandboxConfigError(f"Unknown sandbox methods {unknown!r}; known: {METHODS!r}")
        self._scratch_root = Path(scratch_root)
        if not self._scratch_root.is_absolute():
            raise SandboxConfigError(f"scratch_root must be absolute, got {str(scratch_root)!r}")
        self._who = _identity(harness_uid, harness_gid)
        self._prefer = tuple(prefer)
        # Only the allow-listed names are ever read from it (sandbox_env.PASSTHROUGH).
        self._environ = dict(environ or {})
        self._tools = tools or Tools.find()
        self._caps: Protections | None = None
        self._caps_lock = threading.Lock()

    def capabilities(self) -> Protections:
        """The protections a run gets here (probed on first use, then cached)."""
        with self._caps_lock:
            if self._caps is None:
                self._caps = self._probe()
            return self._caps

    def run(
        self,
        argv: Sequence[str],
        *,
        limits: Limits,
        policy: Policy,
        cwd_files: Mapping[str, bytes] | None = None,
        on_line: Callable[[str], None] | None = None,
        stop: threading.Event | None = None,
    ) -> RunResult:
        """Run ``argv`` confined, within ``limits``; a fresh scratch dir is its cwd and HOME."""
        if not argv or not all(isinstance(a, str) and "\0" not in a for a in argv):
            raise SandboxConfigError(f"Invalid argv {argv!r}")
        caps = self.capabilities()
        who = self._identity_for(caps.method)
        owner = None if who.uid is None or who.gid is None else (who.uid, who.gid)
        self._check_paths(policy, caps.method, owner)
        sweep_uid = owner[0] if owner and caps.method in ("unshare", "uid") else None
        with ExitStack() as cleanup:
            if sweep_uid is not None:
                cleanup.enter_context(uid_lock(sweep_uid))
            scratch = make_scratch(self._scratch_root, cwd_files or {}, owner)
            cleanup.callback(remove_tree, scratch)
            env = build_env(
                self._environ,
                policy.extra_env,
                scratch=scratch,
                allow_secret_names=policy.allow_secret_names,
            )
            cleanup.callback(give_back, lend(policy.writable_paths, owner), owner)
            status = cleanup.enter_context(BwrapStatus()) if caps.method == "bwrap" else None
            values = rlimit_values(limits, drop_uid=owner is not None, root=who.root)
            launch = self._launch(
                argv,
                caps.method,
                who=who,
                policy=policy,
                scratch=scratch,
                values=values,
                status=status,
            )
            launch.env, launch.sweep_uid = env, sweep_uid
            protections = _applied(caps, policy, tuple(values))
            return execute(launch, limits, protections, on_line=on_line, stop=stop)
        raise AssertionError("unreachable")  # pragma: no cover - ExitStack swallows nothing

    def _launch(
        self,
        argv: Sequence[str],
        method: str,
        *,
        who: Identity,
        policy: Policy,
        scratch: Path,
        values: dict[str, int],
        status: BwrapStatus | None,
    ) -> Launch:
        mounts = Mounts(policy.readonly_paths, (scratch, *policy.writable_paths), scratch)
        status_fd = status.write_fd if status else None
        prefix = chain(
            method, self._tools, who, network=policy.network, mounts=mounts, status_fd=status_fd
        )
        launch = Launch(argv=command(prefix, argv), env={}, cwd=scratch, status=status)
        if self._tools.prlimit:
            launch.argv[:0] = prlimit_argv(self._tools.prlimit, values)
        else:
            launch.preexec = preexec_limits(values)  # set between fork and exec instead
        return launch

    def _probe(self) -> Protections:
        self._scratch_root.mkdir(parents=True, exist_ok=True)
        for method in self._prefer:
            who = self._identity_for(method)
            if method == "none" or usable(method, self._tools, who, self._scratch_root):
                return self._announce(method)
        if self._who.root:
            raise SandboxUnavailableError(
                f"None of the sandbox methods {self._prefer!r} works here, and untrusted code"
                " would run as root: install bubblewrap and util-linux, or add 'none' to prefer"
            )
        return self._announce("none")

    def _announce(self, method: str) -> Protections:
        who = self._identity_for(method)
        caps = Protections(
            method=method,
            process_group=True,
            deadline=True,
            rlimits=tuple(rlimit_values(_ALL_LIMITS, drop_uid=who.uid is not None, root=who.root)),
            network_isolated=method in ("bwrap", "unshare"),
            pid_namespace=method == "bwrap",
            uid=who.uid,
            env_allowlist=True,
            scratch=True,
            readonly_mounts=method == "bwrap",
        )
        logger.info("sandbox capabilities: %s", caps.to_json())
        if method == "none":
            logger.warning("sandboxed code runs without namespaces or a separate uid")
        return caps

    def _identity_for(self, method: str) -> Identity:
        # "none" changes nothing, the uid included.
        return Identity(self._who.root, None, None) if method == "none" else self._who

    def _check_paths(self, policy: Policy, method: str, owner: tuple[int, int] | None) -> None:
        for path in (*policy.readonly_paths, *policy.writable_paths):
            if not os.path.lexists(path):
                raise SandboxConfigError(f"Sandbox path {str(path)!r} does not exist")
        if owner is None:
            return
        if method == "bwrap":
            # Bound at their own paths under parents bwrap makes world-searchable, so only
            # the read-only paths themselves matter (writable ones are lent to the uid).
            checks = [(p, False, True) for p in policy.readonly_paths]
        else:
            checks = [(p, True, True) for p in policy.readonly_paths]
            checks += [(p.parent, True, False) for p in policy.writable_paths]
            checks.append((self._scratch_root, True, False))
        for path, ancestors, read in checks:
            why = unreachable(path, *owner, ancestors=ancestors, read=read)
            if why:
                raise SandboxConfigError(
                    f"Harness uid {owner[0]} cannot reach {str(path)!r}: {why}"
                )


_ALL_LIMITS = Limits(1, cpu_seconds=1, memory_bytes=1)


def _identity(harness_uid: int | None, harness_gid: int | None) -> Identity:
    root = os.geteuid() == 0
    if not root:
        if harness_uid not in (None, os.getuid()):
            raise SandboxConfigError(
                f"harness_uid={harness_uid!r} needs a root worker (running as uid {os.getuid()})"
            )
        return Identity(False, None, None)
    uid = DEFAULT_HARNESS_UID if harness_uid is None else harness_uid
    gid = uid if harness_gid is None else harness_gid
    if uid <= 0 or gid <= 0:
        raise SandboxConfigError(
            f"harness uid/gid must be unprivileged, got {uid!r}/{gid!r}: it runs untrusted code"
        )
    return Identity(True, uid, gid)


def _applied(caps: Protections, policy: Policy, rlimits: tuple[str, ...]) -> Protections:
    return Protections(
        method=caps.method,
        process_group=True,
        deadline=True,
        rlimits=rlimits,
        network_isolated=caps.network_isolated and not policy.network,
        pid_namespace=caps.pid_namespace,
        uid=caps.uid,
        env_allowlist=True,
        scratch=True,
        readonly_mounts=caps.readonly_mounts,
    )

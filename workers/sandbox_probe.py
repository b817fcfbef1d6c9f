"""Which isolation method works on this machine: each is tried for real, once.

Having ``bwrap`` installed proves little (containers often forbid the namespaces it needs,
and old versions lack options we use), so a probe runs ``true`` through exactly the chain
a run would use and keeps the first method, in the caller's order of preference, that
succeeds.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from workers.sandbox_command import (
    Mounts,
    bwrap_argv,
    command,
    setpriv_argv,
    unshare_argv,
)

logger = logging.getLogger(__name__)

# Tools are looked up here only: never on a PATH that the caller or a harness could steer.
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_PROBE_SECONDS = 15.0


@dataclass(frozen=True)
class Tools:
    """Absolute paths of the helper programs, None where missing."""

    prlimit: str | None
    setpriv: str | None
    unshare: str | None
    bwrap: str | None
    true: str | None

    @classmethod
    def find(cls, path: str = SYSTEM_PATH) -> Tools:
        """Look the helpers up on the system path."""
        names = ("prlimit", "setpriv", "unshare", "bwrap", "true")
        return cls(*(shutil.which(name, path=path) for name in names))


@dataclass(frozen=True)
class Identity:
    """Who the worker is and whom the harness runs as (None: the worker's own uid)."""

    root: bool
    uid: int | None
    gid: int | None


def chain(
    method: str,
    tools: Tools,
    who: Identity,
    *,
    network: bool,
    mounts: Mounts,
    status_fd: int | None = None,
) -> list[str]:
    """The confining prefix for ``method`` (without prlimit and the harness argv)."""
    drop = setpriv_argv(tools.setpriv, who.uid, who.gid) if tools.setpriv else []
    if method == "bwrap" and tools.bwrap:
        box = bwrap_argv(tools.bwrap, mounts, network=network, root=who.root, status_fd=status_fd)
        return command(box, drop)
    if method == "unshare" and tools.unshare:
        isolate = [] if network else unshare_argv(tools.unshare, root=who.root)
        return command(isolate, drop)
    if method in ("uid", "none"):
        return drop if method == "uid" or not who.root else []
    raise ValueError(f"no tools for sandbox method {method!r}")


def usable(method: str, tools: Tools, who: Identity, scratch_root: Path) -> bool:
    """Whether ``method`` can run a trivial program here, as a run would."""
    if tools.true is None or not _has_tools(method, tools, who):
        return False
    mounts = Mounts(readonly=(), writable=(scratch_root,), chdir=scratch_root)
    argv = [*chain(method, tools, who, network=False, mounts=mounts), tools.true]
    try:
        done = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=_PROBE_SECONDS,
            env={"PATH": SYSTEM_PATH},
            cwd=scratch_root,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        logger.info("sandbox method %s is unavailable: %s", method, exc)
        return False
    if done.returncode != 0:
        why = (done.stderr or done.stdout).decode("utf-8", "replace").strip()[-300:]
        logger.info("sandbox method %s is unavailable: exit %d: %s", method, done.returncode, why)
        return False
    return True


def _has_tools(method: str, tools: Tools, who: Identity) -> bool:
    # A uid change needs setpriv whatever the method; an unprivileged worker has no uid to
    # change to, so "uid" means nothing for it.
    if who.uid is not None and tools.setpriv is None:
        return False
    if method == "bwrap":
        return tools.bwrap is not None
    if method == "unshare":
        return tools.unshare is not None
    if method == "uid":
        return who.uid is not None
    return method == "none"

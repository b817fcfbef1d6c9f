"""Starting one confined child, watching it, and ending it and everything it started.

The calling thread enforces the deadline and the stop event while a reader thread drains
the output; when the child's first process exits (or is ended), whatever it left behind
is killed before the output is drained and the run returns: the rest of its process
group, the PID namespace under bwrap, and every process of the harness uid where that is
the only handle on escaped processes.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from workers.errors import SandboxStartError
from workers.sandbox_command import apply_rlimits, decode_status
from workers.sandbox_model import Limits, Protections, RunResult
from workers.sandbox_output import OutputPump
from workers.sandbox_procs import (
    BwrapStatus,
    ExitWatch,
    NamespaceInit,
    kill_uid,
    killpg_quietly,
    signal_group_except,
)

logger = logging.getLogger(__name__)

_STOP_POLL_SECONDS = 0.05
_OUTPUT_DRAIN_SECONDS = 2.0
_REAP_SECONDS = 10.0


@dataclass
class Launch:
    """Everything needed to start one confined child."""

    argv: list[str]
    env: dict[str, str]
    cwd: Path
    preexec: Callable[[], None] | None = None
    sweep_uid: int | None = None  # kill every process of this uid after the run
    status: BwrapStatus | None = None


def execute(
    launch: Launch,
    limits: Limits,
    protections: Protections,
    *,
    on_line: Callable[[str], None] | None,
    stop: threading.Event | None,
) -> RunResult:
    """Run the launch to its end within ``limits``; nothing it started survives."""
    logger.debug("sandbox run (%s): %s", protections.method, launch.argv)
    status = launch.status
    start = time.monotonic()
    try:
        proc = subprocess.Popen(
            launch.argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=launch.cwd,
            env=launch.env,
            start_new_session=True,
            pass_fds=(status.write_fd,) if status else (),
            preexec_fn=launch.preexec,  # noqa: PLW1509 - None unless prlimit is missing
        )
    except OSError as exc:
        raise SandboxStartError(f"Could not start {launch.argv[0]!r}: {exc}") from exc
    assert proc.stdout is not None  # noqa: S101 - Popen with stdout=PIPE
    pump = OutputPump(proc.stdout.fileno(), on_line)
    pump.start()
    ns_init = None
    try:
        ns_init = status.started(proc.pid) if status else None
        timed_out, stopped = _supervise(proc, limits, stop, via_bwrap=status is not None)
        wall = time.monotonic() - start
    finally:
        _end_group(proc)
        _end_rest(ns_init, launch.sweep_uid)
        if not pump.finish(_OUTPUT_DRAIN_SECONDS):
            logger.warning("sandboxed processes outlived the run and hold its output open")
        proc.stdout.close()
    returncode, sig = decode_status(proc.returncode, via_bwrap=status is not None)
    return RunResult(
        returncode=returncode,
        signal=sig,
        timed_out=timed_out,
        stopped=stopped,
        wall_seconds=wall,
        output=pump.capture.value(),
        output_dropped_bytes=pump.capture.dropped,
        protections=protections,
    )


def _end_rest(ns_init: NamespaceInit | None, sweep_uid: int | None) -> None:
    """Make sure nothing the child started is still running (before draining its output)."""
    if ns_init is not None:
        # bwrap exits when the harness does; its namespace's init may still be reaping.
        if not ns_init.kill_and_wait(_REAP_SECONDS):
            logger.warning("the sandbox's PID namespace did not end within %s s", _REAP_SECONDS)
        ns_init.close()
    if sweep_uid is not None:
        kill_uid(sweep_uid)


def preexec_limits(values: dict[str, int]) -> Callable[[], None]:
    """A ``preexec_fn`` setting the limits: the fallback when prlimit is missing."""

    # Python between fork and exec is unsafe in a threaded process (a lock another thread
    # held at fork stays held); setrlimit takes none, and this runs only without prlimit.
    def set_limits() -> None:
        apply_rlimits(values)

    return set_limits


def _supervise(
    proc: subprocess.Popen[bytes],
    limits: Limits,
    stop: threading.Event | None,
    *,
    via_bwrap: bool,
) -> tuple[bool, bool]:
    """Wait for the child, ending it at the deadline or on ``stop``; (timed_out, stopped)."""
    watch = ExitWatch(proc.pid)
    try:
        deadline = time.monotonic() + limits.wall_seconds
        timed_out = stopped = False
        while True:
            remaining = deadline - time.monotonic()
            slice_ = remaining if stop is None else min(remaining, _STOP_POLL_SECONDS)
            if watch.wait(slice_):
                return timed_out, stopped
            if stop is not None and stop.is_set():
                stopped = True
                break
            if time.monotonic() >= deadline:
                timed_out = True
                break
        _terminate(proc.pid, via_bwrap=via_bwrap)
        if not watch.wait(limits.kill_grace_seconds):
            killpg_quietly(proc.pid, signal.SIGKILL)
        return timed_out, stopped
    finally:
        watch.close()


def _terminate(pgrp: int, *, via_bwrap: bool) -> None:
    if via_bwrap:
        # bwrap dies of SIGTERM at once and takes its namespace with it; spare it, so the
        # harness (in our group, inside the namespace) gets its grace period.
        signal_group_except(pgrp, signal.SIGTERM, spare=pgrp)
    else:
        killpg_quietly(pgrp, signal.SIGTERM)


def _end_group(proc: subprocess.Popen[bytes]) -> None:
    """Kill what is left of the child's group, then reap the child."""
    # The leader is not reaped yet, so its pid (the group id) cannot name another group.
    if proc.returncode is None:
        killpg_quietly(proc.pid, signal.SIGKILL)
    proc.wait()

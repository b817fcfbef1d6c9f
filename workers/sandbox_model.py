"""The sandbox's values: what to bound, what to allow, what applied, and what happened.

Re-exported by ``workers.sandbox``; import them from there.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from workers.errors import SandboxConfigError

METHODS = ("bwrap", "unshare", "uid", "none")


@dataclass(frozen=True)
class Limits:
    """Resource bounds of one run; None leaves a limit at the worker's own value."""

    wall_seconds: float
    cpu_seconds: int | None = None
    memory_bytes: int | None = None  # address space (RLIMIT_AS), not resident memory
    max_processes: int | None = 64  # per harness uid, counted across its concurrent runs
    file_size_bytes: int | None = 1 << 30
    open_files: int | None = 1024
    kill_grace_seconds: float = 2.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.wall_seconds) and self.wall_seconds > 0):
            raise SandboxConfigError(f"wall_seconds must be positive, got {self.wall_seconds!r}")
        if not (math.isfinite(self.kill_grace_seconds) and self.kill_grace_seconds >= 0):
            raise SandboxConfigError(
                f"kill_grace_seconds must be >= 0, got {self.kill_grace_seconds!r}"
            )
        for name in ("cpu_seconds", "memory_bytes", "max_processes", "open_files"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise SandboxConfigError(f"{name} must be a positive integer, got {value!r}")
        size = self.file_size_bytes
        if size is not None and (not isinstance(size, int) or size < 0):
            raise SandboxConfigError(f"file_size_bytes must be >= 0, got {size!r}")


@dataclass(frozen=True)
class Policy:
    """What the child may reach: network, paths (absolute, existing) and extra variables."""

    network: bool = False
    readonly_paths: tuple[Path, ...] = ()
    writable_paths: tuple[Path, ...] = ()
    extra_env: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    # Names in extra_env that look like credentials but the child really needs.
    allow_secret_names: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        # Freeze the caller's mapping so the policy cannot change under a running child.
        object.__setattr__(self, "extra_env", MappingProxyType(dict(self.extra_env)))
        object.__setattr__(self, "readonly_paths", tuple(map(Path, self.readonly_paths)))
        object.__setattr__(self, "writable_paths", tuple(map(Path, self.writable_paths)))
        object.__setattr__(self, "allow_secret_names", frozenset(self.allow_secret_names))
        for path in (*self.readonly_paths, *self.writable_paths):
            if not path.is_absolute():
                raise SandboxConfigError(f"Sandbox paths must be absolute, got {str(path)!r}")
        both = set(self.readonly_paths) & set(self.writable_paths)
        if both:
            raise SandboxConfigError(
                f"Paths listed both read-only and writable: {sorted(map(str, both))!r}"
            )


@dataclass(frozen=True)
class Protections:
    """Which protections applied to a run (or are available, from ``capabilities``)."""

    method: str  # "bwrap" | "unshare" | "uid" | "none"
    process_group: bool
    deadline: bool
    rlimits: tuple[str, ...]  # applied limits by prlimit name: as, cpu, nproc, fsize, …
    network_isolated: bool
    pid_namespace: bool
    uid: int | None  # host uid of the child when it differs from the worker's own
    env_allowlist: bool
    scratch: bool
    readonly_mounts: bool = False  # read-only paths enforced by mounts, not only by modes

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "method": self.method,
            "process_group": self.process_group,
            "deadline": self.deadline,
            "rlimits": list(self.rlimits),
            "network_isolated": self.network_isolated,
            "pid_namespace": self.pid_namespace,
            "uid": self.uid,
            "env_allowlist": self.env_allowlist,
            "scratch": self.scratch,
            "readonly_mounts": self.readonly_mounts,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Protections:
        """The inverse of ``to_json``."""
        return cls(
            method=str(data["method"]),
            process_group=bool(data["process_group"]),
            deadline=bool(data["deadline"]),
            rlimits=tuple(str(name) for name in data["rlimits"]),
            network_isolated=bool(data["network_isolated"]),
            pid_namespace=bool(data["pid_namespace"]),
            uid=None if data["uid"] is None else int(data["uid"]),
            env_allowlist=bool(data["env_allowlist"]),
            scratch=bool(data["scratch"]),
            readonly_mounts=bool(data.get("readonly_mounts", False)),
        )


@dataclass(frozen=True)
class RunResult:
    """How a run ended; exactly one of ``returncode`` and ``signal`` is set."""

    returncode: int | None
    signal: int | None  # the signal that ended it (SIGSEGV, or SIGKILL from us)
    timed_out: bool
    stopped: bool
    wall_seconds: float
    output: bytes  # stdout and stderr merged, head and tail kept (see sandbox_output)
    output_dropped_bytes: int
    protections: Protections

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict; the output becomes text (undecodable bytes replaced)."""
        return {
            "returncode": self.returncode,
            "signal": self.signal,
            "timed_out": self.timed_out,
            "stopped": self.stopped,
            "wall_seconds": round(self.wall_seconds, 3),
            "output": self.output.decode("utf-8", "replace"),
            "output_dropped_bytes": self.output_dropped_bytes,
            "protections": self.protections.to_json(),
        }

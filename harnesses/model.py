"""What discovery produces: harnesses found and files skipped, as frozen values."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class HarnessKind(enum.StrEnum):
    """The two kinds of harness fuzzorch runs."""

    ATHERIS = "atheris"
    HYPOTHESIS = "hypothesis"


class SkipReason(enum.StrEnum):
    """Why a file that looked like a harness was not collected (DESIGN.md, "Identities")."""

    SYNTAX_ERROR = "syntax-error"
    NOT_UTF8 = "not-utf8"
    TOO_LARGE = "too-large"
    SYMLINK_OUTSIDE = "symlink-outside"
    UNSUPPORTED = "unsupported"
    DISABLED = "disabled"


@dataclass(frozen=True)
class HarnessOptions:
    """Per-harness engine options; None means the engine's default."""

    max_len: int | None = None
    timeout: float | None = None
    rss_limit_mb: int | None = None
    dictionary: str | None = None
    seeds: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The options that are set, as a JSON object."""
        return {k: v for k, v in self.__dict__.items() if v is not None}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> HarnessOptions:
        """The inverse of to_json."""
        return cls(**dict(data))


@dataclass(frozen=True)
class Harness:
    """A harness found at a commit. Its name is its identity across commits."""

    name: str
    kind: HarnessKind
    path: str
    options: HarnessOptions = field(default_factory=HarnessOptions)

    def to_json(self) -> dict[str, Any]:
        """The harness as a JSON object."""
        return {
            "name": self.name,
            "kind": self.kind.value,
            "path": self.path,
            "options": self.options.to_json(),
        }


@dataclass(frozen=True)
class Skipped:
    """A file (or test) considered and not collected, with the reason code and a detail."""

    name: str
    path: str
    reason: SkipReason
    detail: str

    def to_json(self) -> dict[str, Any]:
        """The skipped entry as a JSON object."""
        return {
            "name": self.name,
            "path": self.path,
            "status": "skipped",
            "reason": self.reason.value,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class Collection:
    """Everything discovery decided at one commit: found harnesses and skipped files."""

    harnesses: tuple[Harness, ...]
    skipped: tuple[Skipped, ...]
    install: tuple[str, ...] | None = None
    configured: bool = False

    def names(self) -> list[str]:
        """The found harnesses' names, sorted."""
        return sorted(h.name for h in self.harnesses)

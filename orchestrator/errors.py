"""Errors raised by the trusted side, with the CLI exit code each maps to."""


class FuzzorchError(Exception):
    """Base class of every error raised by ``orchestrator``.

    ``exit_code`` follows DESIGN.md's CLI contract: 2 for bad usage, configuration or
    input, 3 for infrastructure failures.
    """

    exit_code = 3


class SettingsError(FuzzorchError, ValueError):
    """An environment variable holds a value fuzzorch cannot use."""

    exit_code = 2


class StoreError(FuzzorchError):
    """The SQL store failed or refused an operation."""


class NotFoundError(StoreError, LookupError):
    """A record does not exist."""

    exit_code = 2


class ConflictError(StoreError):
    """A record already exists or changed underneath the caller."""

    exit_code = 2


class UsageError(FuzzorchError, ValueError):
    """The command line asks for something that cannot be done as asked."""

    exit_code = 2

"""Errors raised by the ``workers`` package: one root, a family per adapter.

``transient`` says whether retrying the same call later may succeed; callers retry only
those, and everything else is terminal.
"""


class WorkerError(Exception):
    """Base class of every error raised by ``workers``."""

    transient = False


class StorageError(WorkerError):
    """The object store refused or failed an operation."""


class TransientStorageError(StorageError):
    """The object store is unreachable or overloaded; the same call may succeed later."""

    transient = True


class InvalidKeyError(StorageError, ValueError):
    """An object key is malformed or would escape the store."""


class ObjectNotFoundError(StorageError, KeyError):
    """No object is stored under the key."""

    def __str__(self) -> str:
        # KeyError.__str__ repr()s its argument; keep the message readable.
        return str(self.args[0]) if self.args else ""


class GitError(WorkerError):
    """A git operation failed."""


class InvalidRefError(GitError, ValueError):
    """A ref, branch name or commit id was refused before reaching git."""


class InvalidSourceError(GitError, ValueError):
    """A repository source (URL or path) was refused before reaching git."""


class RefNotFoundError(GitError, LookupError):
    """A well-formed ref names no branch, tag or commit of the repository."""


class GitTimeoutError(GitError):
    """git did not finish within its time bound."""

    transient = True


class SandboxError(WorkerError):
    """The sandbox could not run a child process as asked."""


class SandboxConfigError(SandboxError, ValueError):
    """A sandbox argument was refused before anything ran (path, environment, limit)."""


class SandboxUnavailableError(SandboxError):
    """No isolation method works on this machine, and running unconfined was not allowed."""


class SandboxStartError(SandboxError):
    """The child process could not be started (fork or exec failed)."""

    transient = True

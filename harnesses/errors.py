"""The root of every error raised by the ``harnesses`` package."""


class HarnessError(Exception):
    """Base class of every error raised by ``harnesses``."""


class ConfigError(HarnessError, ValueError):
    """A target's ``[tool.fuzzorch]`` configuration is invalid."""


class InvalidPathError(HarnessError, ValueError):
    """A repository-relative path is malformed or escapes the repository."""


class EngineArgsError(HarnessError, ValueError):
    """An engine option (runs, timeout, a path…) is out of range or malformed."""


class SignatureError(HarnessError, ValueError):
    """A crash signature was asked for with an unknown kind or malformed parts."""

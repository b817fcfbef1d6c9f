"""The root of every error raised by the ``harnesses`` package."""


class HarnessError(Exception):
    """Base class of every error raised by ``harnesses``."""

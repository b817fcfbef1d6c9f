"""Retrying transient failures with capped exponential backoff and jitter.

Which failures are transient is declared by the errors themselves (``WorkerError.transient``,
see ``workers/errors.py``); adapters translate their client's exceptions into those classes
before this module sees them, so the policy here stays generic. Sleep, clock and randomness
are injectable so tests run in no time and deterministically.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from workers.errors import TransientStorageError, WorkerError

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry.

    ``retries`` is the number of attempts after the first. The delay before retry ``n``
    (1-based) is ``min(max_delay, base_delay * multiplier ** (n - 1))`` scaled by a random
    factor in ``(1 - jitter, 1]``, so racing clients spread out instead of retrying in step.
    ``max_elapsed``, when set, stops retrying once that many seconds have passed.
    """

    retries: int = 5
    base_delay: float = 0.5
    max_delay: float = 8.0
    multiplier: float = 2.0
    jitter: float = 0.5
    max_elapsed: float | None = None

    def __post_init__(self) -> None:
        if self.retries < 0:
            raise ValueError(f"Invalid retries {self.retries!r}: must be >= 0")
        if self.base_delay < 0 or self.max_delay < 0:
            raise ValueError(
                f"Invalid delays base={self.base_delay!r} max={self.max_delay!r}: must be >= 0"
            )
        if self.multiplier < 1:
            raise ValueError(f"Invalid multiplier {self.multiplier!r}: must be >= 1")
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"Invalid jitter {self.jitter!r}: must be within [0, 1]")

    def delay(self, retry: int, random_fraction: float) -> float:
        """The pause before retry number ``retry`` (1-based), given a number in [0, 1)."""
        ceiling = min(self.max_delay, self.base_delay * self.multiplier ** (retry - 1))
        return ceiling * (1.0 - self.jitter * random_fraction)


def is_transient(exc: BaseException) -> bool:
    """The declared classification: only errors marked ``transient`` are worth retrying."""
    return isinstance(exc, WorkerError) and exc.transient


def call_with_retry(
    operation: Callable[[], T],
    *,
    policy: RetryPolicy,
    what: str,
    classify: Callable[[BaseException], bool] = is_transient,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    rand: Callable[[], float] = random.random,
) -> T:
    """Run ``operation``, retrying transient failures; give up with ``TransientStorageError``.

    Terminal errors propagate at once, unchanged. When retries run out, the last transient
    error is chained (``raise ... from``) under a message that says how long we tried.
    """
    started = clock()
    attempt = 0
    while True:
        attempt += 1
        try:
            return operation()
        except Exception as exc:
            if not classify(exc):
                raise
            elapsed = clock() - started
            delay = policy.delay(attempt, rand())
            out_of_time = policy.max_elapsed is not None and elapsed + delay > policy.max_elapsed
            if attempt > policy.retries or out_of_time:
                raise TransientStorageError(
                    f"{what}: gave up after {attempt} attempt(s) in {elapsed:.1f}s: {exc}"
                ) from exc
            logger.warning(
                "%s: attempt %d failed (%s); retrying in %.2fs", what, attempt, exc, delay
            )
            sleep(delay)

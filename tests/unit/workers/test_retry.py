"""Retry with backoff (``workers.storage.retry``), driven by a fake clock."""

from __future__ import annotations

import pytest

from workers.errors import (
    InvalidKeyError,
    ObjectNotFoundError,
    StorageError,
    TransientStorageError,
    WorkerError,
)
from workers.storage.retry import RetryPolicy, call_with_retry, is_transient


class FakeClock:
    """A monotonic clock that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds


class Flaky:
    """Fails with the given errors in turn, then returns ``result``."""

    def __init__(self, errors: list[Exception], result: str = "done") -> None:
        self.errors = list(errors)
        self.calls = 0
        self.result = result

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return self.result


def run(operation: Flaky, policy: RetryPolicy, clock: FakeClock, rand: float = 0.0) -> str:
    return call_with_retry(
        operation,
        policy=policy,
        what="S3 put of 'k'",
        sleep=clock.sleep,
        clock=clock.time,
        rand=lambda: rand,
    )


def test_transient_errors_are_retried_with_growing_delays_until_success() -> None:
    clock = FakeClock()
    operation = Flaky([TransientStorageError(f"down {i}") for i in range(4)])
    policy = RetryPolicy(retries=5, base_delay=0.5, max_delay=100.0, jitter=0.0)

    assert run(operation, policy, clock) == "done"

    assert operation.calls == 5
    assert clock.sleeps == [0.5, 1.0, 2.0, 4.0]


def test_delays_are_capped_at_max_delay() -> None:
    clock = FakeClock()
    operation = Flaky([TransientStorageError("down")] * 6)
    policy = RetryPolicy(retries=6, base_delay=1.0, max_delay=3.0, jitter=0.0)

    run(operation, policy, clock)

    assert clock.sleeps == [1.0, 2.0, 3.0, 3.0, 3.0, 3.0]


def test_jitter_shortens_delays_within_its_fraction() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=60.0, jitter=0.5)
    assert policy.delay(3, 0.0) == 4.0
    assert policy.delay(3, 0.999) == pytest.approx(2.002)
    assert all(2.0 < policy.delay(3, r / 10) <= 4.0 for r in range(10))
    # Even with the worst jitter the next retry never waits less than the previous one.
    assert policy.delay(4, 0.999) >= policy.delay(3, 0.0)


def test_random_draws_spread_racing_clients() -> None:
    draws = iter([0.0, 0.9])
    clock = FakeClock()
    operation = Flaky([TransientStorageError("down")] * 2)
    call_with_retry(
        operation,
        policy=RetryPolicy(retries=3, base_delay=1.0, jitter=0.5),
        what="op",
        sleep=clock.sleep,
        clock=clock.time,
        rand=lambda: next(draws),
    )
    assert clock.sleeps == [1.0, pytest.approx(2.0 * (1 - 0.45))]


@pytest.mark.parametrize(
    "error",
    [
        StorageError("AccessDenied"),
        InvalidKeyError("bad key"),
        ObjectNotFoundError("no such key"),
        ValueError("a bug"),
    ],
)
def test_terminal_errors_are_raised_at_once_unchanged(error: Exception) -> None:
    clock = FakeClock()
    operation = Flaky([error])

    with pytest.raises(type(error)) as info:
        run(operation, RetryPolicy(retries=5), clock)

    assert info.value is error
    assert operation.calls == 1
    assert clock.sleeps == []


def test_exhausted_retries_raise_transient_error_chained_to_the_last_failure() -> None:
    clock = FakeClock()
    errors = [TransientStorageError(f"connection refused #{i}") for i in range(10)]
    operation = Flaky(errors)

    with pytest.raises(TransientStorageError) as info:
        run(operation, RetryPolicy(retries=3, base_delay=0.1, jitter=0.0), clock)

    assert operation.calls == 4  # the first attempt and three retries
    assert len(clock.sleeps) == 3
    assert info.value.__cause__ is not None
    assert str(info.value.__cause__) == "connection refused #3"
    message = str(info.value)
    assert "S3 put of 'k'" in message
    assert "4 attempt(s)" in message
    assert "connection refused #3" in message


def test_zero_retries_means_one_attempt() -> None:
    clock = FakeClock()
    operation = Flaky([TransientStorageError("down")])
    with pytest.raises(TransientStorageError, match="1 attempt"):
        run(operation, RetryPolicy(retries=0), clock)
    assert operation.calls == 1
    assert clock.sleeps == []


def test_max_elapsed_stops_retrying_before_the_deadline_is_passed() -> None:
    clock = FakeClock()
    operation = Flaky([TransientStorageError("down")] * 20)
    policy = RetryPolicy(retries=20, base_delay=1.0, max_delay=100.0, jitter=0.0, max_elapsed=10.0)

    with pytest.raises(TransientStorageError):
        run(operation, policy, clock)

    assert clock.sleeps == [1.0, 2.0, 4.0]  # 7 s slept; sleeping 8 more would pass 10 s
    assert clock.now - 100.0 <= 10.0


def test_a_terminal_error_after_transient_ones_stops_the_retries() -> None:
    clock = FakeClock()
    denied = StorageError("AccessDenied")
    operation = Flaky([TransientStorageError("slow down"), denied])
    with pytest.raises(StorageError) as info:
        run(operation, RetryPolicy(retries=5, jitter=0.0), clock)
    assert info.value is denied
    assert operation.calls == 2


def test_the_classification_is_the_declared_transient_flag() -> None:
    assert is_transient(TransientStorageError("x"))
    assert not is_transient(StorageError("x"))
    assert not is_transient(OSError("x"))

    class Flappy(WorkerError):
        transient = True

    assert is_transient(Flappy())


def test_a_custom_classifier_can_declare_other_errors_transient() -> None:
    clock = FakeClock()
    operation = Flaky([ConnectionResetError("reset")])
    result = call_with_retry(
        operation,
        policy=RetryPolicy(retries=1, jitter=0.0),
        what="op",
        classify=lambda exc: isinstance(exc, ConnectionError),
        sleep=clock.sleep,
        clock=clock.time,
    )
    assert result == "done"


@pytest.mark.parametrize(
    "options",
    [
        {"retries": -1},
        {"base_delay": -0.1},
        {"multiplier": 0.5},
        {"jitter": 1.5},
    ],
)
def test_nonsense_policies_are_refused(options: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="Invalid"):
        RetryPolicy(**options)  # type: ignore[arg-type]

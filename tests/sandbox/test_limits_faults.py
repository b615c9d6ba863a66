"""The shared rate-limit primitives and the seeded fault injector."""

from __future__ import annotations

import pytest

from conveyor import FakeClock
from conveyor.sandbox.faults import FaultConfig, FaultInjector, FaultKind
from conveyor.sandbox.limits import FixedWindow, TokenBucket


def test_fixed_window_counts_until_the_next_aligned_window() -> None:
    clock = FakeClock(start=120.5)
    window = FixedWindow(limit=2, seconds=60, clock=clock)
    assert [window.try_take(), window.try_take(), window.try_take()] == [True, True, False]
    assert window.remaining() == 0
    assert window.reset_at() == 180.0
    clock.set(179.9)
    assert not window.try_take()
    clock.set(180.0)
    assert window.remaining() == 2
    assert window.try_take()


def test_token_bucket_refills_at_its_rate_up_to_capacity() -> None:
    clock = FakeClock(start=0)
    bucket = TokenBucket(capacity=10, rate=2, clock=clock)
    assert bucket.try_take(10)
    assert not bucket.try_take(1)
    clock.advance(1.5)
    assert bucket.available() == pytest.approx(3)
    bucket.refund(100)
    assert bucket.available() == 10
    clock.advance(60)
    assert bucket.used() == 0


def test_same_seed_gives_same_faults_and_rates_are_respected() -> None:
    config = FaultConfig(seed=7, error_rate=0.2, throttle_rate=0.1, timeout_rate=0.1)
    first = [FaultInjector(config).draw().kind for _ in range(1)]
    a, b = FaultInjector(config), FaultInjector(config)
    run_a = [a.draw().kind for _ in range(2000)]
    run_b = [b.draw().kind for _ in range(2000)]
    assert run_a == run_b
    assert run_a[:1] == first
    errors = run_a.count(FaultKind.ERROR) / 2000
    throttles = run_a.count(FaultKind.THROTTLE) / 2000
    assert 0.17 < errors < 0.23
    assert 0.07 < throttles < 0.13
    assert run_a != [FaultInjector(FaultConfig(seed=8, error_rate=0.2)).draw().kind for _ in range(2000)]


def test_forced_faults_come_first_in_order() -> None:
    injector = FaultInjector(FaultConfig(error_statuses=(503,)))
    injector.force(FaultKind.TIMEOUT, FaultKind.ERROR)
    drawn = [injector.draw() for _ in range(3)]
    assert [d.kind for d in drawn] == [FaultKind.TIMEOUT, FaultKind.ERROR, None]
    assert drawn[1].status == 503


def test_fault_rates_must_be_shares() -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        FaultInjector(FaultConfig(error_rate=1.5))


def test_limits_count_the_moments_they_ran_out() -> None:
    clock = FakeClock()
    window, bucket = FixedWindow(2, 1.0, clock), TokenBucket(2, 1.0, clock)
    outcomes = [window.try_take() for _ in range(3)] + [bucket.try_take() for _ in range(4)]
    clock.advance(1)
    outcomes += [window.try_take(), bucket.try_take(), bucket.try_take()]
    assert outcomes == [True, True, False, True, True, False, False, True, True, False]
    # One window filled up (the second is not full yet); the bucket ran short twice, not three times.
    assert (window.exhausted, bucket.ran_short) == (1, 2)

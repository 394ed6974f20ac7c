"""Readiness checks and a loop's Health: ready, or not ready since the first failure, with the reason."""

from datetime import UTC, datetime, timedelta

import pytest

from ferry_shared.readiness import Health, Readiness


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def test_a_health_that_starts_not_ready_says_why_and_since_when() -> None:
    clock = Clock()
    health = Health(not_ready="loading", clock=clock)
    assert not health.is_ready
    assert health.check() == "loading (since 2026-01-02T03:04:05Z)"
    health.ready()
    assert health.check() is None


def test_repeated_failures_keep_the_time_of_the_first_and_the_latest_reason() -> None:
    clock = Clock()
    health = Health(clock=clock)
    assert health.check() is None
    clock.now += timedelta(minutes=1)
    health.not_ready("fetch failed: first")
    clock.now += timedelta(minutes=5)
    health.not_ready("fetch failed: second")
    assert health.check() == "fetch failed: second (since 2026-01-02T03:05:05Z)"
    health.ready()
    clock.now += timedelta(minutes=1)
    health.not_ready("again")
    assert health.check() == "again (since 2026-01-02T03:11:05Z)"


def test_readiness_lists_the_failing_checks_with_their_reasons() -> None:
    up, down = Health(), Health(not_ready="gone", clock=Clock())
    readiness = Readiness({"up": up.check})
    readiness.extend({"down": down.check})
    assert dict(readiness) == {"up": up.check, "down": down.check}
    assert readiness.failing() == {"down": "gone (since 2026-01-02T03:04:05Z)"}


def test_a_check_name_is_registered_once() -> None:
    readiness = Readiness({"consumer": Health().check})
    with pytest.raises(ValueError, match="consumer"):
        readiness.add("consumer", Health().check)

"""The store's circuit breaker: opens after the configured consecutive failures, says when
to try again, lets one trial through after the cooldown."""

from __future__ import annotations

import threading

import pytest

from log_archiver.errors import (
    StorageConflictError,
    StoragePermissionError,
    StorageTimeoutError,
    StorageTransientError,
)
from log_archiver.queue.breaker import CircuitBreaker, store_is_down


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def breaker(threshold=3, cooldown=60.0):
    clock = Clock()
    return CircuitBreaker(threshold, cooldown, clock=clock, wall_clock=lambda: 1_700_000_000.0 +
                          clock.now - 1000.0), clock


def test_opens_after_threshold_consecutive_failures_and_names_the_time_to_retry():
    cb, clock = breaker(3, 60)
    down = StorageTransientError("connection refused by 127.0.0.1:9", "check the network")
    for _ in range(2):
        assert cb.allow()
        cb.record_failure(down)
    assert cb.allow() and not cb.is_open and cb.open_until is None
    cb.record_failure(down)
    assert cb.is_open and not cb.allow()
    assert cb.last_error is down
    assert cb.open_until == "2023-11-14T22:14:20Z"  # 1_700_000_000 + 60 s
    clock.now += 59
    assert not cb.allow()
    assert cb.state()["last_error"]["type"] == "storage_transient"


def test_a_success_resets_the_count():
    cb, _ = breaker(2)
    cb.record_failure(StorageTimeoutError("timed out", ""))
    cb.record_success()
    cb.record_failure(StorageTimeoutError("timed out", ""))
    assert not cb.is_open and cb.allow() and cb.failures == 1


def test_after_the_cooldown_one_trial_then_closed_or_open_again():
    cb, clock = breaker(1, 10)
    cb.record_failure(StorageTransientError("down", ""))
    clock.now += 10
    assert cb.allow()            # the trial
    assert not cb.allow()        # only one at a time
    cb.record_failure(StorageTransientError("still down", ""))
    assert cb.is_open and not cb.allow()
    clock.now += 10
    assert cb.allow()
    cb.record_success()
    assert not cb.is_open and cb.allow() and cb.allow() and cb.open_until is None


def test_one_trial_among_many_threads():
    cb, clock = breaker(1, 5)
    cb.record_failure(StorageTransientError("down", ""))
    clock.now += 5
    allowed = []
    threads = [threading.Thread(target=lambda: allowed.append(cb.allow())) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert allowed.count(True) == 1


@pytest.mark.parametrize("bad", [(0, 1.0), (3, -1.0), (3, float("nan"))])
def test_bad_settings_are_refused(bad):
    with pytest.raises(ValueError):
        CircuitBreaker(*bad)


def test_what_counts_as_the_store_being_down():
    assert store_is_down(StorageTransientError("x", ""))
    assert store_is_down(StorageTimeoutError("x", ""))
    assert not store_is_down(StoragePermissionError("x", ""))   # a refusal, not an outage
    assert not store_is_down(StorageConflictError("x", ""))
    assert not store_is_down(OSError("disk"))
    assert store_is_down({"type": "storage_throttled", "retryable": True})
    assert store_is_down({"type": "storage", "retryable": True})
    assert not store_is_down({"type": "storage", "retryable": False})
    assert not store_is_down({"type": "checksum_mismatch", "retryable": False})

"""A circuit breaker for the store: after several consecutive failures, stop trying.

Without it a store that is down costs every issue of a batch (or every job of a worker)
the whole retry policy, ten minutes each in the worst case. The breaker counts failures
the caller says are the store's (:func:`store_is_down`); ``threshold`` of them in a row
open it. While open, :meth:`CircuitBreaker.allow` says no until ``cooldown_seconds`` have
passed; then one trial is let through (half open): a success closes the breaker, a
failure opens it again for another cooldown. Any success in between resets the count.
A trial that tells neither (it never used the store, or its caller lost it) is handed
back with :meth:`CircuitBreaker.release_trial`, and lapses by itself after another
cooldown: an open breaker never stays shut for ever.

Thread-safe: a worker running jobs in threads shares one breaker.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from log_archiver.errors import ArchiveError, StorageError, StorageTransientError
from log_archiver.util.clock import from_timestamp

# Upload failures (the ``type`` of a failed file) that say the store is unreachable or
# failing, after the retry policy gave up: network, timeout, throttling, 5xx.
STORE_DOWN_TYPES = frozenset({"storage_transient", "storage_timeout", "storage_throttled"})


def store_is_down(error: BaseException | dict) -> bool:
    """Whether ``error`` (an exception, or a failure's dict with ``type``/``retryable``)
    says the store itself is failing, as opposed to one bad file or a refusal."""
    if isinstance(error, dict):
        kind = error.get("type")
        return kind in STORE_DOWN_TYPES or (kind == "storage" and error.get("retryable") is True)
    return isinstance(error, StorageError) and isinstance(error, ArchiveError) \
        and error.retryable


def record_upload(breaker: CircuitBreaker, result: dict) -> None:
    """Tell ``breaker`` what an archive's upload (``result["upload"]``) found of the store:
    down (a failure :func:`store_is_down`), or working (something verified or found
    stored); nothing when the archive did not use it."""
    upload = result.get("upload") or {}
    down = [failure for failure in upload.get("failed") or [] if store_is_down(failure)]
    if down:
        breaker.record_failure(StorageTransientError(str(down[-1].get("message")),
                                                     str(down[-1].get("hint") or "")))
    elif upload.get("verified") or upload.get("already_stored"):
        breaker.record_success()


class CircuitBreaker:
    def __init__(self, threshold: int, cooldown_seconds: float,
                 clock: Callable[[], float] = time.monotonic,
                 wall_clock: Callable[[], float] = time.time):
        if int(threshold) < 1:
            raise ValueError(f"breaker threshold {threshold!r} must be at least 1")
        if not float(cooldown_seconds) >= 0:
            raise ValueError(f"breaker cooldown {cooldown_seconds!r} must be 0 or more seconds")
        self.threshold = int(threshold)
        self.cooldown_seconds = float(cooldown_seconds)
        self._clock = clock
        self._wall = wall_clock
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None  # on ``clock``
        self._trial = 0  # half open: the trial let through, its outcome not known yet
        self._trials = 0  # trials let through so far (each one's number)
        self._trial_at = 0.0  # when the current trial was let through, on ``clock``
        self._last_error: Exception | None = None

    @property
    def failures(self) -> int:
        """Consecutive failures so far."""
        return self._failures

    @property
    def is_open(self) -> bool:
        """Open: calls are refused (until the cooldown has passed)."""
        return self._opened_at is not None

    @property
    def last_error(self) -> Exception | None:
        return self._last_error

    @property
    def open_until(self) -> str | None:
        """When the store may be tried again (UTC, ISO 8601), or None while closed."""
        with self._lock:
            if self._opened_at is None:
                return None
            left = max(self._opened_at + self.cooldown_seconds - self._clock(), 0.0)
        return from_timestamp(self._wall() + left + 0.999)  # rounded up to the second

    def allow(self) -> bool:
        """Whether to try the store now. After the cooldown, True once (the trial)."""
        return self.admit() is not None

    def admit(self) -> int | None:
        """As :meth:`allow`, naming the call let through: None (refused), 0 (closed), or
        the trial's number, to give to :meth:`release_trial` if it tells no outcome."""
        with self._lock:
            if self._opened_at is None:
                return 0
            now = self._clock()
            if now - self._opened_at < self.cooldown_seconds:
                return None
            if self._trial and now - self._trial_at < self.cooldown_seconds:
                return None
            self._trials += 1
            self._trial, self._trial_at = self._trials, now
            return self._trial

    def release_trial(self, trial: int | None) -> None:
        """Trial ``trial`` ended without telling whether the store works: let another."""
        with self._lock:
            if trial and self._trial == trial:
                self._trial = 0

    def record_success(self) -> None:
        with self._lock:
            self._failures = 0
            self._opened_at = None
            self._trial = 0

    def record_failure(self, error: Exception) -> None:
        with self._lock:
            self._failures += 1
            self._last_error = error
            if self._trial or self._failures >= self.threshold:
                self._opened_at = self._clock()
            self._trial = 0

    def state(self) -> dict:
        """For a command's output: ``open``, ``failures``, ``open_until``, ``last_error``."""
        error = self._last_error
        return {"open": self.is_open, "failures": self._failures, "threshold": self.threshold,
                "open_until": self.open_until,
                "last_error": None if error is None else
                (error.to_dict() if isinstance(error, ArchiveError)
                 else {"type": "internal", "message": str(error) or type(error).__name__,
                       "retryable": False, "hint": ""})}

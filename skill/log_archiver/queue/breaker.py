"""A circuit breaker for the store: after ``threshold`` consecutive failures, stop trying
for ``cooldown_seconds``, then let one attempt through."""

from __future__ import annotations

import threading
import time


class CircuitBreaker:
    def __init__(self, threshold: int, cooldown_seconds: float, clock=time.monotonic):
        self.threshold = threshold
        self.cooldown_seconds = cooldown_seconds
        self.clock = clock
        self.failures = 0
        self.open_until: float | None = None
        self.last_error = None
        self._lock = threading.Lock()

    def allow(self) -> bool:
        with self._lock:
            return self.open_until is None or self.clock() >= self.open_until

    def record_success(self) -> None:
        with self._lock:
            self.failures, self.open_until = 0, None

    def record_failure(self, error) -> None:
        with self._lock:
            self.failures += 1
            self.last_error = error
            if self.failures >= self.threshold:
                self.open_until = self.clock() + self.cooldown_seconds

"""One retry policy for every remote call (storage and GitHub).

Delays follow the workflow spec: network errors 2, 4, 8 s; throttling 10, 30, 60 s;
timeouts twice with a longer timeout; never for permanent errors; at most 3 retries and
10 minutes per file. Tests build the policy with ``sleep`` set to a no-op.

``LOG_ARCHIVER_RETRY_DELAY_SCALE`` multiplies every wait (default 1: the delays above;
0: retry at once). It exists for tests and demos that run the installed scripts in a
subprocess, where no policy object can be handed in; a policy built with an explicit
``delay_scale`` ignores it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from log_archiver.errors import ArchiveError
from log_archiver.util.retry_scale import (  # noqa: F401 - also imported from here
    DELAY_SCALE_ENV,
    MAX_DELAY_SCALE,
    delay_scale_from_environment,
)

T = TypeVar("T")
@dataclass
class RetryPolicy:
    network_delays: tuple[float, ...] = (2.0, 4.0, 8.0)
    throttle_delays: tuple[float, ...] = (10.0, 30.0, 60.0)
    timeout_delays: tuple[float, ...] = (2.0, 4.0)
    max_retries: int = 3
    max_seconds: float = 600.0
    timeout_growth: float = 2.0
    delay_scale: float | None = None  # None: from the environment (see module notes)
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)

    @classmethod
    def immediate(cls) -> RetryPolicy:
        """The same rules with no waiting, for tests."""
        return cls(sleep=lambda _s: None)

    def delay_for(self, error: BaseException, retry_number: int) -> float | None:
        """Seconds to wait before retry ``retry_number`` (1-based), or None to give up."""
        if not isinstance(error, ArchiveError) or not error.retryable:
            return None
        if retry_number > self.max_retries:
            return None
        kind = getattr(error, "kind", "network")
        delays = {
            "throttle": self.throttle_delays,
            "timeout": self.timeout_delays,
        }.get(kind, self.network_delays)
        if retry_number > len(delays):
            return None
        return delays[retry_number - 1]

    def run(
        self,
        call: Callable[[float], T],
        *,
        base_timeout: float = 60.0,
        on_retry: Callable[[BaseException, int, float], None] | None = None,
    ) -> tuple[T, int]:
        """Call ``call(timeout)`` until it succeeds or the policy gives up.

        Returns the result and the number of retries it took. A timeout error makes the
        next attempt use a longer timeout.
        """
        scale = (delay_scale_from_environment() if self.delay_scale is None
                 else self.delay_scale)
        started = self.clock()
        timeout = base_timeout
        retries = 0
        while True:
            try:
                return call(timeout), retries
            except ArchiveError as error:
                delay = self.delay_for(error, retries + 1)
                if delay is not None:
                    delay *= scale
                if delay is None or self.clock() - started + delay > self.max_seconds:
                    error.retries = retries
                    raise
                if getattr(error, "kind", "") == "timeout":
                    timeout *= self.timeout_growth
                retries += 1
                if on_retry is not None:
                    on_retry(error, retries, delay)
                self.sleep(delay)

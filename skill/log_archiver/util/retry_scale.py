"""``LOG_ARCHIVER_RETRY_DELAY_SCALE``: the factor every retry delay is multiplied by.

Apart from :mod:`.retry` so that reading the configuration (which checks it) does not
import the retry policy and what it needs.
"""

from __future__ import annotations

import math
import os

from log_archiver.errors import ConfigError

DELAY_SCALE_ENV = "LOG_ARCHIVER_RETRY_DELAY_SCALE"
MAX_DELAY_SCALE = 10.0


def delay_scale_from_environment(environ=None) -> float:
    """The factor ``LOG_ARCHIVER_RETRY_DELAY_SCALE`` sets (1 when unset)."""
    raw = (os.environ if environ is None else environ).get(DELAY_SCALE_ENV, "").strip()
    if not raw:
        return 1.0
    try:
        scale = float(raw)
    except ValueError:
        scale = math.nan
    if not 0 <= scale <= MAX_DELAY_SCALE:  # also refuses nan
        raise ConfigError(f"{DELAY_SCALE_ENV}={raw!r} is not a number from 0 to "
                          f"{MAX_DELAY_SCALE:g}",
                          f"unset {DELAY_SCALE_ENV} to wait as the retry rules say, or set "
                          "it to 0 to retry at once")
    return scale

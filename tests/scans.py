"""Which folders this process reads (``os.scandir``, what ``os.walk`` uses), through an
audit hook: how a test sees how much of a file:// store an operation looked at."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

_RECORDERS: list[list[str]] = []


def _audit(event: str, args: tuple) -> None:
    if event == "os.scandir" and _RECORDERS:
        for scans in _RECORDERS:
            scans.append(str(args[0]))


sys.addaudithook(_audit)  # audit hooks cannot be removed: this one is idle unless recording


@contextmanager
def recording_scans() -> Iterator[list[str]]:
    """Yield a list that receives the path of every folder scanned meanwhile."""
    scans: list[str] = []
    _RECORDERS.append(scans)
    try:
        yield scans
    finally:
        _RECORDERS.remove(scans)

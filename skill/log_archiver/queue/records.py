"""What a job message's arguments and a job record may hold, checked in this one place.

Both are read from the broker, which whoever can write the SQLite file or the Redis
database can fill: hostile until checked. A message that fails is set aside (never run), a
record that fails is skipped by every reader (never re-sent, never fatal), so one bad
record cannot stop a worker, loop for ever, or grow the queue.
"""

from __future__ import annotations

import math

from log_archiver.model.issues import MAX_ISSUE
from log_archiver.queue.jobs import FAILED, REASONS, STATES

UNREADABLE_PREFIX = "unreadable-"  # the record of a message set aside (its issue unknown)
MAX_ID = 64
MAX_ATTEMPTS = 1_000_000
_TIMES = ("enqueued_at", "started_at", "finished_at")
_TEXTS = ("worker", "note", "result_status")
_ERRORS = ("error", "last_error")
_ERROR_FIELDS = {"type": str, "message": str, "retryable": bool, "hint": str}


def valid_job(job_id, issue, reason) -> bool:
    """A job the worker may run: a plain id, an issue number in range, a known reason."""
    return (isinstance(job_id, str) and 0 < len(job_id) <= MAX_ID and job_id.isascii()
            and job_id.isalnum() and type(issue) is int and 0 < issue <= MAX_ISSUE
            and reason in REASONS)


def runnable(record: dict) -> bool:
    """The record names a job that can be sent again (an unreadable message's cannot)."""
    return valid_job(record.get("id"), record.get("issue"), record.get("reason"))


def _unreadable(record: dict) -> bool:
    job_id = record.get("id")
    return (isinstance(job_id, str) and len(job_id) <= MAX_ID
            and job_id.startswith(UNREADABLE_PREFIX)
            and job_id[len(UNREADABLE_PREFIX):].isdigit() and job_id.isascii()
            and record.get("issue") is None and record.get("reason") is None
            and record.get("state") == FAILED)


def _time(value) -> bool:
    return value is None or (type(value) in (int, float) and math.isfinite(value)
                             and value >= 0)


def _error(value) -> bool:
    return value is None or (isinstance(value, dict) and set(value) == set(_ERROR_FIELDS)
                             and all(type(value[key]) is kind
                                     for key, kind in _ERROR_FIELDS.items()))


def checked_record(record) -> dict | None:
    """``record`` when every field readers use holds what it should; else None."""
    if not isinstance(record, dict) or record.get("state") not in STATES:
        return None
    if not (runnable(record) or _unreadable(record)):
        return None
    attempts = record.get("attempts", 0)
    if type(attempts) is not int or not 0 <= attempts <= MAX_ATTEMPTS:
        return None
    if not all(_time(record.get(key)) for key in _TIMES):
        return None
    if any(record.get(key) is not None and not isinstance(record[key], str) for key in _TEXTS):
        return None
    return record if all(_error(record.get(key)) for key in _ERRORS) else None

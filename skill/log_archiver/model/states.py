"""The per-file state machine: the one place a log's ``upload_status`` is written.

::

    pending -> uploaded -> verified -> cleaned
        \\-> failed / retrying (on the side)      lost: stored copy gone, no local copy
                          verified / cleaned -> expired (gc only: a tombstone)

A local file may be deleted only in ``verified`` (its stored object was checked against
the recorded size and SHA-256). ``verified`` and ``cleaned`` are reached only through a
check of the store, never by a claim: :func:`transition` refuses every move the table
below does not list, so a bug elsewhere cannot skip a step.

``expired`` is a tombstone: gc deleted the stored object once its retention ran out, and
the record stays (with ``expired_at`` and ``expired_rule``) so the history remains and a
rerun does nothing. It is reached only from a checked stored state, by :func:`expire`, and
is final. A tombstone is *settled* (nothing is left to do for it): an entry whose logs are
all stored or expired is complete, and its totals still count the expired records, which
describe the archive as it was made (bytes held now: the logs in :data:`STORED`).

An entry's state (:func:`entry_state`) is decided here too.
"""

from __future__ import annotations

from log_archiver.errors import ArchiveError

PENDING, RETRYING, FAILED = "pending", "retrying", "failed"
UPLOADED, VERIFIED, CLEANED, LOST = "uploaded", "verified", "cleaned", "lost"
EXPIRED = "expired"

# Order matters: the merge driver keeps the record furthest along (a tombstone wins).
STATES = (PENDING, RETRYING, FAILED, UPLOADED, VERIFIED, CLEANED, LOST, EXPIRED)
STORED = frozenset({UPLOADED, VERIFIED, CLEANED})   # the store holds it (maybe unchecked)
SETTLED = STORED | {EXPIRED}                        # nothing left to upload
EXPIRABLE = frozenset({VERIFIED, CLEANED})          # gc may delete its object
UPLOADABLE = frozenset({PENDING, RETRYING, UPLOADED})
HAND_SETTABLE = (PENDING, RETRYING, FAILED, UPLOADED)  # update-file-status may claim these

# Every state may be planned again (a re-prepare replaces the record with a pending one),
# fail, or be found lost; the rest of the table is the happy path and its checks.
_ANY = {PENDING, FAILED, RETRYING, LOST}
TRANSITIONS: dict[str, frozenset[str]] = {
    PENDING: frozenset(_ANY | {UPLOADED, VERIFIED}),
    RETRYING: frozenset(_ANY | {UPLOADED, VERIFIED}),
    FAILED: frozenset(_ANY | {UPLOADED, VERIFIED}),
    UPLOADED: frozenset(_ANY | {UPLOADED, VERIFIED}),
    VERIFIED: frozenset(_ANY | {VERIFIED, CLEANED, LOST, EXPIRED}),
    CLEANED: frozenset(_ANY | {CLEANED, VERIFIED, LOST, EXPIRED}),
    LOST: frozenset(_ANY | {LOST, VERIFIED, CLEANED}),
    EXPIRED: frozenset({PENDING}),  # only a new version of the log, archived again (--force)
}


class TransitionError(ArchiveError):
    type = "internal"
    retryable = False


def check_transition(before: str, after: str) -> None:
    if after not in TRANSITIONS.get(before, ()):
        raise TransitionError(f"a log cannot move from {before!r} to {after!r}",
                              "this is a bug in log-archiver; the index was not changed")


def transition(log: dict, after: str, **fields) -> dict:
    """Move ``log`` to ``after`` (checked against the table), setting ``fields`` too.

    Returns the log.
    """
    check_transition(log["upload_status"], after)
    log.update(fields)
    log["upload_status"] = after
    return log


def start(log: dict) -> dict:
    """A record being built: it starts ``pending``."""
    log["upload_status"] = PENDING
    return log


def adopt(log: dict, status: str) -> dict:
    """A record built from what the store holds (a reindex): the state the check found."""
    if status not in (VERIFIED, CLEANED):
        raise TransitionError(f"a rebuilt record cannot start as {status!r}",
                              "this is a bug in log-archiver; the index was not changed")
    log["upload_status"] = status
    return log


def claim(log: dict, status: str) -> dict:
    """A record given by hand (update-index): its claim, to be verified before it counts."""
    if status not in STATES:
        raise TransitionError(f"status {status!r} is not one of {', '.join(STATES)}",
                              "use one of the listed states")
    log["upload_status"] = status
    return log


def is_stored(log: dict) -> bool:
    return log["upload_status"] in STORED


def is_settled(log: dict) -> bool:
    """Stored, or expired by gc: nothing is left to upload for it."""
    return log["upload_status"] in SETTLED


def expire(log: dict, *, at: str, rule: str) -> dict:
    """gc deleted the log's stored object: the record becomes a tombstone."""
    if log["upload_status"] not in EXPIRABLE:
        raise TransitionError(f"a log cannot expire from {log['upload_status']!r}",
                              "this is a bug in log-archiver; the index was not changed")
    log.pop("expiring", None)
    return transition(log, EXPIRED, expired_at=at, expired_rule=rule)


def entry_state(entry: dict | None) -> str:
    """``none``, ``incomplete`` (uploads to do), ``stored`` (local files left) or ``done``."""
    if entry is None:
        return "none"
    if not entry["upload_complete"] or entry["partial_archive"]:
        return "incomplete"
    if any(log["upload_status"] not in (CLEANED, EXPIRED) for log in entry["logs"]):
        return "stored"
    return "done"


ARCHIVE_STATES = ("complete", "partial", "held", "expired")


def archive_state(entry: dict) -> str:
    """An archive's state for ``list --state``: ``held`` while a hold is set, ``expired``
    once every log is (its records kept as tombstones), ``partial`` while logs are still
    to store or a reason is recorded, else ``complete``."""
    if entry.get("hold"):
        return "held"
    logs = entry.get("logs") or []
    if logs and all(log.get("upload_status") == "expired" for log in logs):
        return "expired"
    if entry.get("partial_archive") or not entry.get("upload_complete", True):
        return "partial"
    return "complete"

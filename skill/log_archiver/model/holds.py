"""Legal holds: an entry whose ``hold`` is set is never deleted by anything.

``hold`` is ``null`` (or absent) or ``{"reason", "by", "at"}``. gc, ``gc --orphans``,
``cleanup-local --orphans`` and an ``archive --force`` that would move the entry to another
store all ask :func:`is_held` first.
"""

from __future__ import annotations

from log_archiver.errors import UsageError


def is_held(entry: dict | None) -> bool:
    return bool(entry) and isinstance(entry.get("hold"), dict)


def held_issues(entries) -> set[int]:
    return {entry["issue_number"] for entry in entries if is_held(entry)}


class HeldError(UsageError):
    """A command would delete or move what a legal hold protects."""

    type = "held"


def held_error(entry: dict, doing: str) -> HeldError:
    hold = entry["hold"]
    issue = entry["issue_number"]
    return HeldError(f"issue {issue} is on legal hold ({hold['reason']!r}, by {hold['by']} at "
                     f"{hold['at']}); it cannot {doing}",
                     f"run `log-archiver release {issue}` first if the hold is over")

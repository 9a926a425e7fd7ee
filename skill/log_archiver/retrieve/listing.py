"""``log-archiver list``: the archives, newest first, a page at a time.

Pages are cut by a keyset cursor, not an offset: the cursor names the last entry shown by
its ``(archived_at, issue_number)``, and the next page starts strictly after it. Walking
every page therefore returns every entry exactly once, even while archives are added (a
new one sorts before the cursor, so it is never shown twice and never shifts the rest).

The cursor is opaque to callers (URL-safe base64 of a small JSON object) and hostile to
us: it is decoded, its version checked and both values validated before use.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from bisect import bisect_left
from dataclasses import dataclass
from datetime import date, datetime

from log_archiver.errors import UsageError
from log_archiver.model.states import ARCHIVE_STATES, archive_state
from log_archiver.repository import Repository
from log_archiver.retrieve.list_cache import cached_rows

CURSOR_VERSION = 1
DEFAULT_LIMIT, MAX_LIMIT = 20, 1000
_ISO = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z")
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class Filters:
    since: str | None = None   # normalised instants, both included
    until: str | None = None
    log_type: str | None = None
    state: str | None = None
    reason: str | None = None
    label: str | None = None

    def keeps(self, entry: dict, moment: str) -> bool:
        if self.since and moment < self.since or self.until and moment > self.until:
            return False
        if self.log_type and not any(log.get("type") == self.log_type
                                     for log in entry.get("logs") or []):
            return False
        if self.reason and entry.get("archive_reason") != self.reason:
            return False
        if self.label and self.label not in (entry.get("labels") or []):
            return False
        return not self.state or archive_state(entry) == self.state


def instant(stamp: str) -> str:
    """``archived_at`` in a form that sorts as time does: a fraction of 9 digits always
    (``00.5Z`` must sort after ``00Z``)."""
    if len(stamp) == 20:  # the common form, with no fraction
        return stamp[:19] + ".000000000Z"
    base, _, fraction = stamp.rstrip("Z").partition(".")
    return f"{base}.{fraction.ljust(9, '0')}Z"


def parse_date(value: str | None, option: str, *, end_of_day: bool) -> str | None:
    """``--since``/``--until``: a day (``2025-01-15``, the whole day) or an instant."""
    if value is None:
        return None
    text = value.strip()
    try:
        if _DAY.fullmatch(text):
            day = date.fromisoformat(text)
            return f"{day.isoformat()}T23:59:59.999999999Z" if end_of_day \
                else f"{day.isoformat()}T00:00:00.000000000Z"
        if _ISO.fullmatch(text):
            datetime.strptime(text[:19], "%Y-%m-%dT%H:%M:%S")
            return instant(text)
    except ValueError:
        pass
    raise UsageError(f"{option} {value!r} is not a date", f"give {option} as YYYY-MM-DD or "
                     "YYYY-MM-DDTHH:MM:SSZ (UTC)")


def encode_cursor(moment: str, issue: int) -> str:
    raw = json.dumps({"v": CURSOR_VERSION, "at": moment, "issue": issue},
                     separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, int]:
    """The ``(archived_at, issue_number)`` a cursor names; :class:`UsageError` otherwise."""
    bad = UsageError(f"--cursor {cursor[:80]!r} is not a cursor this command printed",
                     "pass the next_cursor of the previous page as it was printed, or "
                     "leave --cursor out to start from the newest archive")
    if not isinstance(cursor, str) or not 0 < len(cursor) <= 200 \
            or not re.fullmatch(r"[A-Za-z0-9_-]+", cursor):
        raise bad
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise bad from None
    if not isinstance(data, dict) or set(data) != {"v", "at", "issue"} \
            or data["v"] != CURSOR_VERSION:
        raise bad
    moment, issue = data["at"], data["issue"]
    if not isinstance(moment, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}"
                                                       r"\.\d{9}Z", moment) \
            or type(issue) is not int or not 0 < issue < 1 << 63:
        raise bad
    return moment, issue


def summary(entry: dict) -> dict:
    logs = entry.get("logs") or []
    return {
        "issue_number": entry["issue_number"],
        "issue_title": entry.get("issue_title"),
        "archived_at": entry["archived_at"],
        "archive_reason": entry.get("archive_reason"),
        "state": archive_state(entry),
        "labels": list(entry.get("labels") or []),
        "types": sorted({log["type"] for log in logs if isinstance(log.get("type"), str)}),
        "total_logs": entry.get("total_logs", len(logs)),
        "total_size_bytes": entry.get("total_size_bytes", 0),
        "total_original_size_bytes": entry.get("total_original_size_bytes", 0),
    }


def list_archives(repo: Repository, filters: Filters, *, limit: int = DEFAULT_LIMIT,
                  cursor: str | None = None) -> dict:
    """One page of archive summaries, newest first, and the cursor of the next page."""
    if not 1 <= limit <= MAX_LIMIT:
        raise UsageError(f"--limit {limit} is out of range", f"give 1 to {MAX_LIMIT}")
    if filters.state is not None and filters.state not in ARCHIVE_STATES:
        raise UsageError(f"--state {filters.state!r} is not one of {', '.join(ARCHIVE_STATES)}",
                         "pick one of the listed states")
    after = decode_cursor(cursor) if cursor is not None else None
    # Most filters need whole entries; the rest of a page needs each entry's sort key
    # and reason only (kept between runs by list_cache), and parses just what it shows.
    if filters.log_type or filters.state or filters.label:
        keys, entry = _rows(repo, whole=True)
    else:
        keys, entry = cached_rows(repo, lambda: _rows(repo, whole=False))
    # rows are newest first: the page starts at the first row strictly after the cursor
    start = 0 if after is None else bisect_left(keys, True, key=lambda k: (k[0], k[1]) < after)
    if filters == Filters():
        rows = range(start, len(keys))
    else:
        rows = [row for row in range(start, len(keys))
                if filters.keeps(keys[row][2] if isinstance(keys[row][2], dict)
                                 else {"archive_reason": keys[row][2]}, keys[row][0])]
    page = [(*keys[row][:2], row) for row in rows[:limit]]
    more = len(rows) > limit
    try:
        shown = [summary(entry(row)) for _moment, _issue, row in page]
    except (OSError, ValueError):  # a list cache that lies about where entries are
        keys, entry = _rows(repo, whole=False)
        by_issue = {issue: row for row, (_m, issue, _r) in enumerate(keys)}
        shown = [summary(entry(by_issue[issue])) for _moment, issue, _row in page]
    return {"status": "ok" if page else "noop", "archives": shown,
            "count": len(page), "remaining": len(rows) - len(page),
            "next_cursor": encode_cursor(page[-1][0], page[-1][1]) if more else None}


def _rows(repo: Repository, *, whole: bool):
    """(instant, issue, reason) of every entry, or with ``whole`` (instant, issue, entry),
    and a function giving the entry of a row."""
    document = repo.index.snapshot()
    keys = []
    for position, issue in enumerate(document.issues()):
        stamp = document.scalar_field(position, "archived_at")
        reason = document.scalar_field(position, "archive_reason")
        if whole or not isinstance(stamp, str) or not isinstance(reason, str | None):
            parsed = document.entry_at(position)
            stamp, reason = parsed["archived_at"], parsed if whole else parsed.get(
                "archive_reason")
        keys.append((instant(stamp), issue, reason, position))
    keys.sort(key=lambda key: key[:2], reverse=True)
    return [key[:3] for key in keys], lambda row: document.entry_at(keys[row][3])

"""Issue numbers: parsing them strictly, and telling which file names belong to one."""

from __future__ import annotations

import re

from log_archiver.errors import UsageError

MAX_ISSUE = 2**31 - 1
_DIGITS = re.compile(r"[1-9][0-9]{0,9}")
_LEADING_ZERO = re.compile(r"0+[1-9][0-9]{0,9}")
# Dates and times inside names (2025-01-12, 20250112, T14-30-00) hold numbers that are no issue.
_DATE_OR_TIME = re.compile(
    r"\d{4}-\d{2}-\d{2}|(?:19|20)\d{2}(?:0[1-9]|1[0-2])[0-3]\d|[T_]\d{2}[-:]\d{2}(?:[-:]\d{2})?")
_SESSION_OWNER = re.compile(r"^session-([0-9]+)(?:[-_.]|$)")


def parse_issue(value) -> int:
    """A positive issue number from user input, or :class:`UsageError`.

    The one rule: an optional leading ``#``, then a positive decimal number with no
    leading zero (``7`` and ``#7``; never ``007``, ``+7`` or ``7.0``). Surrounding
    whitespace is ignored.
    """
    text = str(value).strip() if value is not None else ""
    if text.startswith("#"):
        text = text[1:]
    if _LEADING_ZERO.fullmatch(text) and 0 < int(text) <= MAX_ISSUE:
        raise UsageError(
            f"issue number {str(value)!r} has a leading zero",
            f"write it as {int(text)}, e.g. `log-archiver archive {int(text)}`",
        )
    if not _DIGITS.fullmatch(text) or int(text) > MAX_ISSUE:
        raise UsageError(
            f"issue number {str(value)!r} is not a positive whole number",
            "pass the issue number alone (an optional leading # is allowed), "
            "e.g. `log-archiver archive 123`",
        )
    return int(text)


def session_matches(name: str, issue: int) -> bool:
    """``session-N-*``, or any session name holding N as a number of its own."""
    owner = _SESSION_OWNER.match(name)
    if owner:
        return int(owner.group(1)) == issue
    cleaned = _DATE_OR_TIME.sub(" ", name)
    return re.search(rf"(?<![0-9]){issue}(?![0-9])", cleaned) is not None


def prefixed_matches(name: str, issue: int) -> bool:
    """Build, deployment and debug logs: ``N-*``."""
    prefix = f"{issue}-"
    return name.startswith(prefix) and len(name) > len(prefix)

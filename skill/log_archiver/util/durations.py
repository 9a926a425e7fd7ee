"""Durations as people write them: retention (``30d``, ``2w``, ``6m``, ``1y``, ``forever``,
optionally named ``audit: 7y``) and grace periods (``90s``, ``24h``, ``7d``).

Months and years are calendar ones: ``1m`` after January 31 is the last day of February.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

FOREVER = "forever"
_RETENTION = re.compile(r"^(?:([A-Za-z0-9][A-Za-z0-9_.-]{0,63}): *)?([1-9][0-9]{0,4})([dwmy])$")
_FOREVER = re.compile(r"^(?:([A-Za-z0-9][A-Za-z0-9_.-]{0,63}): *)?forever$")
_GRACE = re.compile(r"^([0-9]{1,7})([smhd])$")
_UNIT_DAYS = {"d": 1, "w": 7}
_UNIT_MONTHS = {"m": 1, "y": 12}
_GRACE_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}
RETENTION_FORMS = "30d, 2w, 6m, 1y, 7y or forever, optionally named as in 'audit: 7y'"


@dataclass(frozen=True)
class Retention:
    """How long a rule keeps a log: ``days`` and ``months`` (both 0 and ``forever``)."""

    text: str           # the duration as written, without the name: 7y
    name: str | None    # the name the config gave the rule, if any
    days: int = 0
    months: int = 0
    forever: bool = False

    def sort_key(self) -> tuple:
        """Longer first compares greater; a month counts as 31 days so 1m > 30d."""
        return (self.forever, self.months * 31 + self.days, self.months)

    def until(self, start: datetime) -> datetime | None:
        """When a log archived at ``start`` is due (None: never)."""
        if self.forever:
            return None
        try:
            return add_months(start, self.months) + timedelta(days=self.days)
        except OverflowError:  # past the year 9999: never, in practice
            return None


def parse_retention(text: str) -> Retention | None:
    """The retention ``text`` says, or None when it is not one (see ``RETENTION_FORMS``)."""
    if not isinstance(text, str):
        return None
    if match := _FOREVER.match(text.strip()):
        return Retention(FOREVER, match.group(1), forever=True)
    match = _RETENTION.match(text.strip())
    if match is None:
        return None
    name, number, unit = match.group(1), int(match.group(2)), match.group(3)
    return Retention(f"{number}{unit}", name, days=number * _UNIT_DAYS.get(unit, 0),
                     months=number * _UNIT_MONTHS.get(unit, 0))


def parse_grace(text: str) -> float | None:
    """Seconds in a grace period (``0s``, ``90s``, ``30m``, ``24h``, ``7d``), or None."""
    match = _GRACE.match(str(text).strip())
    if match is None:
        return None
    return float(int(match.group(1)) * _GRACE_SECONDS[match.group(2)])


def add_months(moment: datetime, months: int) -> datetime:
    """``moment`` plus calendar months, the day clamped to the month's last day."""
    if not months:
        return moment
    total = moment.month - 1 + months
    year, month = moment.year + total // 12, total % 12 + 1
    if year > 9999:
        return datetime.max.replace(tzinfo=moment.tzinfo)
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    last = [31, 29 if leap else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]
    return moment.replace(year=year, month=month, day=min(moment.day, last))

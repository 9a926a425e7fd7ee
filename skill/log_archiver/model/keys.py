"""Remote keys: ``archive/logs/{year}/{month}/{issue}/{filename}`` under the store's root.

The one place keys are built and parsed. Within an entry every key is unique by
construction: a name another log of the entry already holds gets the log's type in
front, then a number, until it is free.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from log_archiver.util.clock import parse_iso

ROOT = "archive/logs/"
LAYOUT = "archive/logs/YYYY/MM/ISSUE/NAME"  # how messages describe a key
_KEY = re.compile(r"^archive/logs/(\d{4})/(\d{2})/([1-9][0-9]*)/([^/]+)$")
_YEAR, _MONTH = re.compile(r"[0-9]{4}"), re.compile(r"[0-9]{2}")


@dataclass(frozen=True)
class Key:
    year: str
    month: str
    issue: int
    name: str


def remote_folder(issue: int, archived_at: str) -> str:
    moment = parse_iso(archived_at)
    return f"{ROOT}{moment.year:04d}/{moment.month:02d}/{issue}"


def month_prefix(year: str, month: str, issue: int) -> str:
    """The folder of ``issue`` in one month: what a lookup of one issue lists."""
    return f"{ROOT}{year}/{month}/{issue}/"


def issue_prefixes(list_folders: Callable[[str], list[str]], issue: int) -> list[str]:
    """Every folder that can hold objects of ``issue``: ``archive/logs/Y/M/ISSUE/`` for each
    year and month folder ``list_folders`` (a store's) names. The year comes first in a key,
    so one issue is found one folder level at a time, never by listing every key."""
    found = []
    for year in list_folders(ROOT):
        if _YEAR.fullmatch(year):
            found += [month_prefix(year, month, issue)
                      for month in list_folders(f"{ROOT}{year}/") if _MONTH.fullmatch(month)]
    return found


def parse_key(key: str) -> Key | None:
    """The parts of a key in the archive's layout, or None for any other key."""
    match = _KEY.match(key)
    if match is None:
        return None
    return Key(match.group(1), match.group(2), int(match.group(3)), match.group(4))


def unique_key(folder: str, name: str, log_type: str, taken: set[str]) -> str:
    """``folder/name``, or the first free of ``folder/TYPE-name``, ``folder/TYPE-2-name``..."""
    candidates = [name, f"{log_type}-{name}"]
    for candidate in candidates:
        if f"{folder}/{candidate}" not in taken:
            return f"{folder}/{candidate}"
    number = 2
    while f"{folder}/{log_type}-{number}-{name}" in taken:
        number += 1
    return f"{folder}/{log_type}-{number}-{name}"


def is_key_for(key: str, name: str, log_type: str) -> bool:
    """Whether :func:`unique_key` could have given ``key`` to a log stored as ``name``."""
    leaf = key.rsplit("/", 1)[-1]
    if leaf in (name, f"{log_type}-{name}"):
        return True
    middle = leaf.removeprefix(f"{log_type}-").removesuffix(f"-{name}")
    return leaf != middle and middle.isdigit() and leaf == f"{log_type}-{middle}-{name}"


def base_name(key: str, log_type: str) -> str:
    """The name :func:`unique_key` started from when it gave ``key`` to a log of this type."""
    leaf = key.rsplit("/", 1)[-1]
    rest = leaf.removeprefix(f"{log_type}-")
    number, dash, name = rest.partition("-")
    if rest != leaf and dash and number.isdigit() and name:
        return name
    return rest if rest != leaf and rest else leaf

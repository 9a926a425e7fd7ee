"""Reading the audit trail back: every line, oldest day first, filtered.

A line that is not a complete JSON object (cut short by a crash, or edited by hand) is
skipped and counted, never a reason to stop: the rest of the trail stays readable.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from log_archiver.audit.trail import day_files


@dataclass
class TrailReading:
    lines: list[dict] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)  # {"file", "line", "reason"}
    files: list[str] = field(default_factory=list)


def read_trail(folder: Path, *, since: str | None = None, issue: int | None = None,
               op: str | None = None) -> TrailReading:
    """The lines under ``folder`` from ``since`` on (``YYYY-MM-DD`` or a full UTC time),
    of ``issue`` and of operation ``op`` when given."""
    reading = TrailReading()
    reading.lines = list(_matching(folder, reading, since, issue, op))
    reading.lines.sort(key=lambda line: line["time"])
    return reading


def has_line(folder: Path, *, since: str, issue: int, op: str) -> bool:
    """Whether a line of ``issue`` and ``op`` from ``since`` on is under ``folder``; reads
    day files only until the first one that holds it."""
    return next(_matching(folder, TrailReading(), since, issue, op), None) is not None


def _matching(folder: Path, reading: TrailReading, since: str | None, issue: int | None,
              op: str | None):
    """The lines that pass the filters, file by file, oldest day first; what could not be
    read goes to ``reading``."""
    # compared to the second: a line's time has microseconds, ``since`` none
    moment = since.removesuffix("Z") if since else None
    for day, path in day_files(folder):
        if moment is not None and day < moment[:10]:
            continue
        reading.files.append(str(path))
        for line in _file_lines(path, reading):
            if moment is not None and line["time"][:len(moment)] < moment:
                continue
            if issue is not None and line.get("issue") != issue:
                continue
            if op is not None and line["op"] != op:
                continue
            yield line


def _file_lines(path: Path, reading: TrailReading):
    try:
        raw = path.read_bytes()
    except OSError as error:
        reading.skipped.append({"file": str(path), "line": 0,
                                "reason": f"unreadable: {error.strerror or error}"})
        return
    for number, text in enumerate(raw.split(b"\n"), start=1):
        if not text.strip():
            continue
        line = _parsed(text)
        if line is None:
            line = _after_a_torn_line(text)
            complete = raw.endswith(b"\n") or number < raw.count(b"\n") + 1
            reading.skipped.append({"file": str(path), "line": number,
                                    "reason": "incomplete" if line is not None
                                    else "malformed" if complete else "incomplete"})
            if line is None:
                continue
        yield line


LINE_START = b'{"time":"'  # how every line begins; inside a value its quotes are escaped


def _after_a_torn_line(text: bytes) -> dict | None:
    """The whole line that follows a line cut short on the same row, if there is one.

    A writer killed in the middle of its write leaves part of a line with no newline; a
    line another process appends next is glued to it and must not be lost with it."""
    start = text.find(LINE_START, 1)
    while start != -1:
        line = _parsed(text[start:])
        if line is not None:
            return line
        start = text.find(LINE_START, start + 1)
    return None


def _parsed(text: bytes) -> dict | None:
    try:
        line = json.loads(text)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(line, dict) or not isinstance(line.get("time"), str) \
            or not isinstance(line.get("op"), str):
        return None
    return line

"""The index document in memory, parsing an entry only when it is asked for.

The index is written in one exact layout (two-space indented JSON, as
``json.dumps(doc, indent=2, ensure_ascii=False)`` writes it). In that layout every
entry of ``archives`` starts with a line ``    {`` and ends with a line ``    }``, and no
other line is indented that way, so the file splits into one byte string an entry
without parsing any of them. An archive then parses the one entry it changes, and
writing the index joins the untouched entries' bytes as they were.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from operator import neg

import orjson

_OPTIONS = orjson.OPT_INDENT_2
_HEADER = re.compile(
    rb'\{\n  "schema_version": (-?\d+),\n  "last_updated": ("(?:[^"\\\n]|\\.)*"),\n'
    rb'  "archives": \[')
_ISSUE = re.compile(rb'(?:^|\n)      "issue_number": (\d+)(?:,|\n)')
_FIRST_KEY = b'      "issue_number": '
_SEPARATOR = b"\n    },\n    {\n"
_OPEN, _CLOSE = b"    {\n", b"\n    }"
_EMPTY_TAIL = b"]\n}\n"
_TAIL = b"\n  ]\n}\n"


NOT_SCALAR = object()  # what :meth:`IndexDocument.scalar_field` gives for other fields
_FIELDS: dict[str, re.Pattern] = {}  # a top-level field's line, by field name


def dumps(doc: dict) -> bytes:
    """The whole document in the index's layout, with a final newline."""
    return orjson.dumps(doc, option=_OPTIONS | orjson.OPT_APPEND_NEWLINE)


def _entry_body(entry: dict) -> bytes:
    """One entry as it appears inside ``archives``, without its ``{`` and ``}`` lines."""
    text = orjson.dumps(entry, option=_OPTIONS).replace(b"\n", b"\n    ")
    return text[len(b"{\n"):-len(b"\n    }")]


def _issue_of(body: bytes) -> int | None:
    if body.startswith(_FIRST_KEY):  # where this tool writes it
        end = body.find(b",", len(_FIRST_KEY))
        if end != -1 and body[len(_FIRST_KEY):end].isdigit():
            return int(body[len(_FIRST_KEY):end])
    found = _ISSUE.search(body)
    return int(found.group(1)) if found else None


class IndexDocument:
    """``schema_version``, ``last_updated`` and the entries, newest issue first.

    Entries handed out are live: only ``IndexTransaction`` hands them out for change, and
    it records which it handed out (an entry not handed out is written back as it was read).
    """

    def __init__(self, schema_version: int, last_updated: str, issues: list[int],
                 raw: list[bytes | None], parsed: list[dict | None]):
        self.schema_version = schema_version
        self.last_updated = last_updated
        self._issues = issues
        self._raw = raw
        self._parsed = parsed
        self._start: int | None = None  # where the first entry's bytes begin (from_layout)

    @classmethod
    def from_dict(cls, doc: dict) -> IndexDocument:
        entries = sorted(doc["archives"], key=lambda e: e["issue_number"], reverse=True)
        return cls(doc["schema_version"], doc["last_updated"],
                   [e["issue_number"] for e in entries], [None] * len(entries), entries)

    @classmethod
    def from_layout(cls, raw: bytes) -> IndexDocument | None:
        """Split bytes written in the index's layout; None when they are not in it."""
        header = _HEADER.match(raw)
        if header is None:
            return None
        rest = raw[header.end():]
        try:
            version = int(header.group(1))
            updated = orjson.loads(header.group(2))
        except (ValueError, orjson.JSONDecodeError):
            return None
        if rest == _EMPTY_TAIL:
            return cls(version, updated, [], [], [])
        if not (rest.startswith(b"\n" + _OPEN) and rest.endswith(_CLOSE + _TAIL)):
            return None
        bodies = rest[1 + len(_OPEN):-len(_CLOSE + _TAIL)].split(_SEPARATOR)
        issues = [_issue_of(body) for body in bodies]
        if None in issues or any(a <= b for a, b in zip(issues, issues[1:], strict=False)):
            return None  # not newest first, or an issue twice: read it the slow way
        document = cls(version, updated, issues, bodies, [None] * len(bodies))
        document._start = header.end() + 1 + len(_OPEN)
        return document

    def issues(self) -> list[int]:
        return list(self._issues)

    def find(self, issue: int) -> dict | None:
        try:
            position = self._issues.index(issue)
        except ValueError:
            return None
        return self._entry_at(position)

    def entry_at(self, position: int) -> dict:
        """The entry at ``position``, parsed once (live: never change it)."""
        return self._entry_at(position)

    def _entry_at(self, position: int) -> dict:
        entry = self._parsed[position]
        if entry is None:
            entry = orjson.loads(b"{\n" + self._raw[position] + b"\n}")
            self._parsed[position] = entry
        return entry

    def spans(self) -> list[tuple[int, int]] | None:
        """Where each entry's bytes lie in the file it was read from (offset, length), or
        None when it was not read in the layout or an entry was changed since; the bytes
        at a span parse as ``{`` + them + ``}``."""
        start = self._start
        if start is None or any(body is None for body in self._raw):
            return None
        found = []
        for body in self._raw:
            found.append((start, len(body)))
            start += len(body) + len(_SEPARATOR)
        return found

    def __len__(self) -> int:
        return len(self._issues)

    def scalar_field(self, position: int, name: str):
        """One top-level string, number, boolean or null field of the entry at
        ``position``, read from its bytes when it is still unparsed (a list of many
        entries needs a few fields of each); :data:`NOT_SCALAR` when the field is an
        object or a list, or absent."""
        entry = self._parsed[position]
        if entry is not None:
            value = entry.get(name, NOT_SCALAR)
            return NOT_SCALAR if isinstance(value, dict | list) else value
        pattern = _FIELDS.get(name)
        if pattern is None:
            pattern = _FIELDS[name] = re.compile(
                rb'(?:^|\n)      "' + re.escape(name.encode())
                + rb'": ("(?:[^"\\\n]|\\.)*"|-?[0-9][0-9.eE+-]*|true|false|null)(?:,|$)')
        found = pattern.search(self._raw[position])
        return orjson.loads(found.group(1)) if found else NOT_SCALAR

    def entries(self) -> list[dict]:
        """Every entry, parsed (slow on a large index: the hot paths use ``find``)."""
        return [self._entry_at(i) for i in range(len(self._issues))]

    def put(self, entry: dict) -> None:
        """Insert or replace the entry of its issue, keeping newest first."""
        issue = entry["issue_number"]
        position = bisect_left(self._issues, -issue, key=neg)
        if position < len(self._issues) and self._issues[position] == issue:
            self._raw[position], self._parsed[position] = None, entry
            return
        self._issues.insert(position, issue)
        self._raw.insert(position, None)
        self._parsed.insert(position, entry)

    def to_dict(self) -> dict:
        return {"schema_version": self.schema_version, "last_updated": self.last_updated,
                "archives": self.entries()}

    def to_parts(self, changed: set[int]) -> list[bytes]:
        """The document in the index's layout, as pieces to write one after another.

        Entries not in ``changed`` that were read from bytes are written as those bytes.
        """
        head = (b'{\n  "schema_version": ' + orjson.dumps(self.schema_version)
                + b',\n  "last_updated": ' + orjson.dumps(self.last_updated)
                + b',\n  "archives": [')
        if not self._issues:
            return [head, _EMPTY_TAIL]
        parts = [head, b"\n" + _OPEN]
        for position, issue in enumerate(self._issues):
            body = self._raw[position]
            if body is None or issue in changed:
                body = _entry_body(self._entry_at(position))
                self._raw[position] = body
            parts += (body, _SEPARATOR)
        parts[-1] = _CLOSE + _TAIL
        return parts

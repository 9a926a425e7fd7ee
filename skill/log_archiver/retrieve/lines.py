"""``--lines A:B``: a range of lines of an archived log, fetching only the blocks it needs.

Lines are numbered from 1 and both ends are included (as ``sed -n 'A,Bp'`` does): ``A:B``,
``A:`` (to the end) or ``:B`` (from the start). A line is what ends in ``\\n`` (the last
one may not). The block holding a line's first byte is found from the table's "lines
before each block" (for a copy without a table, from the start of the stream).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from log_archiver.errors import UsageError
from log_archiver.repository import Repository
from log_archiver.retrieve.content import block_table, local_original, read_blocks

_SPEC = re.compile(r"(\d*):(\d*)")


@dataclass(frozen=True)
class LineRange:
    first: int         # 1-based, included
    last: int | None   # 1-based, included; None: to the end

    def as_dict(self) -> dict:
        return {"first": self.first, "last": self.last}


def parse_lines(spec: str) -> LineRange:
    match = _SPEC.fullmatch(spec.strip()) if isinstance(spec, str) else None
    first = int(match.group(1) or 1) if match else 0
    last = int(match.group(2)) if match and match.group(2) else None
    if not match or not match.group(1) + match.group(2) or first < 1 \
            or (last is not None and last < first):
        raise UsageError(f"--lines {spec!r} is not A:B with 1 <= A <= B",
                         "give line numbers from 1, both included: --lines 100:199, "
                         "--lines 100: (to the end) or --lines :50")
    return LineRange(first, last)


def _wanted_blocks(lines_before: list[int], wanted: LineRange) -> range:
    """The blocks from the one holding the first wanted line's first byte to the one
    holding the last wanted line's newline (the last block when that is past the end)."""
    first0 = wanted.first - 1
    start = 0
    for number, before in enumerate(lines_before):
        if before < first0:
            start = number
    end = len(lines_before) - 1
    if wanted.last is not None:
        for number in range(start, len(lines_before) - 1):
            if lines_before[number + 1] >= wanted.last:  # its last newline ends line B
                end = number
                break
    return range(start, end + 1)


def line_pieces(repo: Repository, log: dict, wanted: LineRange
                ) -> Iterator[tuple[int, bytes, bool]]:
    """``(line number, bytes, whether they end the line)`` for the wanted lines, in order;
    a long line comes in several pieces (memory stays flat)."""
    numbers = None
    local = local_original(repo, log)
    if local is not None:
        numbers = _wanted_blocks(local.lines_before, wanted)
    elif log.get("compression") == "gzip" and isinstance(log.get("blocks"), dict):
        table = block_table(repo, log)
        numbers = _wanted_blocks([block.lines_before for block in table], wanted) \
            if table else []
    first0, last0 = wanted.first - 1, None if wanted.last is None else wanted.last - 1
    for _number, line, raw in read_blocks(repo, log, numbers):
        at = 0
        while at < len(raw):
            if last0 is not None and line > last0:
                return
            newline = raw.find(b"\n", at)
            end = len(raw) if newline < 0 else newline + 1
            if line >= first0:
                yield line + 1, raw[at:end], newline >= 0
            at = end
            if newline >= 0:
                line += 1


def collect_lines(pieces: Iterator[tuple[int, bytes, bool]], *, max_lines: int,
                  max_line_bytes: int) -> tuple[list[dict], bool]:
    """Lines for a JSON answer, each ``{"line", "text"}`` (UTF-8, undecodable bytes
    replaced, cut at ``max_line_bytes`` with ``cut: true``); and whether more lines
    were left out than ``max_lines``."""
    lines: list[dict] = []
    current: dict | None = None
    kept = bytearray()
    for number, piece, ends in pieces:
        if current is None:
            if len(lines) >= max_lines:
                return lines, True
            current, kept = {"line": number, "text": "", "cut": False}, bytearray()
        room = max_line_bytes - len(kept)
        if len(piece) > room:
            current["cut"] = True
        kept += piece[:max(room, 0)]
        if ends:
            _close(current, kept, lines)
            current = None
    if current is not None:
        _close(current, kept, lines)
    return lines, False


def _close(current: dict, kept: bytearray, lines: list[dict]) -> None:
    current["text"] = bytes(kept).rstrip(b"\n").removesuffix(b"\r").decode("utf-8", "replace")
    lines.append(current)

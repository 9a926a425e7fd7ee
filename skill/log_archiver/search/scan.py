"""Finding the matching lines in verified text, with their numbers and context.

A run is contiguous original content of one log (verified blocks, in order) starting at a
known byte offset and line number. Only the lines inside the given ranges are tested;
context lines may come from anywhere in the run, except a first line the run may have
cut (it starts where a block starts, not always where a line does).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

from log_archiver.errors import ArchiveError
from log_archiver.search.patterns import Query

MAX_TEXT_CHARS = 2000  # a longer line is shown around its match


class SearchTimeout(ArchiveError):
    type = "search_timeout"
    retryable = False


@dataclass
class Run:
    data: bytes
    offset: int   # of data[0] in the log's original content
    line: int     # 1-based number of the line data[0] belongs to
    at_end: bool  # data ends where the log ends

    @property
    def clean_start(self) -> int:
        """Where the first whole line of the run starts."""
        if self.offset == 0:
            return 0
        return self.data.find(b"\n") + 1 if b"\n" in self.data else len(self.data)


class Deadline:
    def __init__(self, seconds: float):
        self.end = time.monotonic() + seconds
        self.seconds = seconds

    def left(self) -> float:
        left = self.end - time.monotonic()
        if left <= 0:
            raise self._timeout()
        return left

    def search(self, pattern, text: str, pos: int = 0):
        """``pattern.search`` stopped (a :class:`SearchTimeout`) when the time is up."""
        try:
            return pattern.search(text, pos, timeout=self.left())
        except TimeoutError:
            raise self._timeout() from None

    def _timeout(self) -> SearchTimeout:
        return SearchTimeout(f"the search took longer than {self.seconds:g} s and was "
                             "stopped", "narrow it (--issue, --type, --since) or use a "
                             "simpler pattern; the matches printed were found before")


def matching_lines(run: Run, ranges: list[tuple[int, int]], query: Query,
                   deadline: Deadline) -> Iterator[tuple[int, int, int]]:
    """``(line number, start, end)`` in ``run.data`` of every matching line whose start
    lies in one of ``ranges`` (offsets in the log), each once, in order."""
    data, clean = run.data, run.clean_start
    last_end = -1
    counter = _LineCounter(data, run.line)
    for low, high in ranges:
        a = max(low - run.offset, clean)
        b = min(high - run.offset, len(data))
        if a >= b:
            continue
        a = data.rfind(b"\n", 0, a) + 1 if a > clean else a  # the index is not trusted
        a = max(a, last_end)
        for start, end in _lines_in(data, a, b, query, deadline):
            if start >= last_end:
                last_end = end + 1
                yield counter.number_at(start), start, end


def _lines_in(data: bytes, a: int, b: int, query: Query, deadline: Deadline
              ) -> Iterator[tuple[int, int]]:
    stop = _line_end(data, b - 1)  # the lines that start before b, whole
    if query.mode == "plain":
        needle, pos = query.literal, a
        while (at := data.find(needle, pos, stop)) >= 0:
            start, end = data.rfind(b"\n", 0, at) + 1, _line_end(data, at)
            yield start, end
            pos = end + 1
        return
    text = data[a:stop].decode("utf-8", errors="replace")
    pattern = query.pattern
    if not query.line_safe:
        yield from _each_line(data, a, stop, pattern, deadline)
        return
    from log_archiver.search.numpy_loader import np

    newlines = np.flatnonzero(np.frombuffer(data, dtype=np.uint8, count=stop - a,
                                            offset=a) == 10)
    char_pos, line_index = 0, 0
    while True:
        found = deadline.search(query.many_lines, text, char_pos)
        if found is None:
            return
        # newlines survive decoding one for one: the match's line is found by counting
        line_index += text.count("\n", char_pos, found.start())
        start = a + (int(newlines[line_index - 1]) + 1 if line_index else 0)
        end = _line_end(data, start)
        line = data[start:end].decode("utf-8", errors="replace")
        if deadline.search(pattern, line) is not None:
            yield start, end
        next_char = text.find("\n", found.start())
        if next_char < 0:
            return
        line_index += text.count("\n", found.start(), next_char) + 1
        char_pos = next_char + 1


def _each_line(data: bytes, a: int, stop: int, pattern, deadline: Deadline):
    start = a
    while start < stop:
        end = _line_end(data, start)
        line = data[start:end].decode("utf-8", errors="replace")
        if deadline.search(pattern, line) is not None:
            yield start, end
        start = end + 1


def _line_end(data: bytes, pos: int) -> int:
    end = data.find(b"\n", pos)
    return len(data) if end < 0 else end


class _LineCounter:
    """Line numbers of increasing offsets, counting each byte once."""

    def __init__(self, data: bytes, first: int):
        self.data, self.pos, self.line = data, 0, first

    def number_at(self, offset: int) -> int:
        if offset < self.pos:
            self.pos, self.line = 0, self.line - self.data.count(b"\n", 0, self.pos)
        self.line += self.data.count(b"\n", self.pos, offset)
        self.pos = offset
        return self.line


def context(run: Run, start: int, end: int, k: int) -> tuple[list[str], list[str]]:
    """Up to ``k`` lines before and after the line ``data[start:end]`` within the run."""
    data, clean = run.data, run.clean_start
    before, pos = [], start
    while len(before) < k and pos > clean:
        prev = data.rfind(b"\n", 0, pos - 1) + 1
        if prev < clean:
            break
        before.insert(0, show(data[prev:pos - 1]))
        pos = prev
    after, pos = [], end + 1
    while len(after) < k and pos < len(data):
        stop = data.find(b"\n", pos)
        if stop < 0:
            if not run.at_end:
                break  # the line goes on in a block that was not read
            stop = len(data)
        after.append(show(data[pos:stop]))
        pos = stop + 1
    return before, after


def show(line: bytes, around: int | None = None) -> str:
    """A line as printed: decoded (bad bytes replaced), a trailing CR dropped, capped."""
    if line.endswith(b"\r"):
        line = line[:-1]
    if len(line) > MAX_TEXT_CHARS * 4:
        at = max(0, (around or 0) - MAX_TEXT_CHARS // 2)
        line = line[at:at + MAX_TEXT_CHARS * 4]
    text = line.decode("utf-8", errors="replace")
    if len(text) > MAX_TEXT_CHARS:
        return text[:MAX_TEXT_CHARS] + "…"
    return text

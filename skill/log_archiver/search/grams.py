"""Trigrams of log text, and the chunks they are counted over.

A gram is three consecutive bytes with the top bit of each dropped: 21 bits, exact for
ASCII text; non-ASCII bytes only alias one another, which adds candidates and never loses
one (the text decides every match). A log is cut into chunks of whole lines, each ending
at the last newline of a block of :data:`BLOCK_SIZE` bytes (a line longer than a block
keeps its chunk going), so every line lies inside one chunk and a line matching a query
holds all of the query's grams in its own chunk.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np

GRAM_BITS = 21


def gram_ids(data: bytes) -> np.ndarray:
    """The gram of every position of ``data`` (len - 2 of them, possibly repeated)."""
    if len(data) < 3:
        return np.empty(0, dtype=np.uint32)
    a = np.frombuffer(data, dtype=np.uint8) & 0x7F
    ids = a[:-2].astype(np.uint32)
    ids <<= 7
    ids |= a[1:-1]
    ids <<= 7
    ids |= a[2:]
    return ids


def gram_of(three: bytes) -> int:
    a, b, c = (x & 0x7F for x in three)
    return (a << 14) | (b << 7) | c


def distinct(ids: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """The sorted distinct values of ``ids``, through a reusable all-false bitmap."""
    seen[ids] = True
    found = np.flatnonzero(seen).astype(np.uint32)
    seen[found] = False
    return found


_bitmaps = threading.local()


def _bitmap() -> np.ndarray:
    seen = getattr(_bitmaps, "seen", None)
    if seen is None:
        seen = _bitmaps.seen = np.zeros(1 << GRAM_BITS, dtype=bool)
    return seen


@dataclass
class BlockGrams:
    """What one block adds to a log's chunks; computed apart from the others (any thread),
    then taken in order by :meth:`Indexer.take`."""

    size: int
    lines: int                   # newlines in the block
    cut: int                     # offset of its last newline in the block, -1 for none
    lines_to_cut: int            # newlines up to and including that one
    head: np.ndarray             # distinct grams that end at or before the cut
    rest: np.ndarray             # distinct grams after it (all of them without a cut)


def block_grams(tail: bytes, block: bytes) -> BlockGrams:
    """The grams of ``block``, ``tail`` being the two bytes fed before it (fewer at the
    start), split where the block's last line ends."""
    data = tail + block
    ids = gram_ids(data)
    seen = _bitmap()
    cut = block.rfind(b"\n")
    lines = block.count(b"\n")
    if cut < 0:
        return BlockGrams(len(block), lines, -1, 0, ids[:0], distinct(ids, seen))
    end = max(len(tail) + cut - 1, 0)  # ids[:end] hold the newline or come before it
    return BlockGrams(len(block), lines, cut, block.count(b"\n", 0, cut + 1),
                      distinct(ids[:end], seen), distinct(ids[end:], seen))


@dataclass
class Chunk:
    offset: int      # byte offset of its first line in the original content
    first_line: int  # 1-based number of that line
    grams: np.ndarray  # sorted distinct grams


@dataclass
class LogGrams:
    """What indexing one log's content found: its chunks, size and line count."""

    chunks: list[Chunk] = field(default_factory=list)
    size: int = 0
    lines: int = 0


class Indexer:
    """Fed the original content of one log block by block (any sizes), in order."""

    def __init__(self):
        self.result = LogGrams()
        self._seen = np.zeros(1 << GRAM_BITS, dtype=bool)
        self._tail = b""          # the last two bytes fed, for grams across feeds
        self._start = 0           # offset of the current chunk
        self._start_line = 1

    def feed(self, block: bytes) -> None:
        job = self.job(block)
        if job is not None:
            self.take(job())

    def job(self, block: bytes):
        """The work of feeding ``block``, to run on any thread; its result goes to
        :meth:`take`, in the order the blocks were given (None for an empty block)."""
        if not block:
            return None
        tail, self._tail = self._tail, (self._tail + block[-2:])[-2:]
        return lambda: block_grams(tail, block)

    def take(self, grams: BlockGrams | None) -> None:
        if grams is None:
            return
        if grams.cut < 0:
            self._seen[grams.rest] = True
        else:
            self._seen[grams.head] = True
            self._close(self.result.size + grams.cut + 1,
                        self.result.lines + grams.lines_to_cut + 1)
            self._seen[grams.rest] = True
        self.result.size += grams.size
        self.result.lines += grams.lines

    def _close(self, end: int, next_line: int) -> None:
        grams = np.flatnonzero(self._seen).astype(np.uint32)
        self._seen[grams] = False
        self.result.chunks.append(Chunk(self._start, self._start_line, grams))
        self._start, self._start_line = end, next_line

    def finish(self) -> LogGrams:
        if self.result.size > self._start:
            self._close(self.result.size, self._start_line)
            self.result.lines += 1  # the last line has no newline
        self._seen = None
        return self.result

"""Trigrams of log text, and the chunks they are counted over.

A gram is three consecutive bytes with the top bit of each dropped: 21 bits, exact for
ASCII text; non-ASCII bytes only alias one another, which adds candidates and never loses
one (the text decides every match). A log is cut into chunks of whole lines, each ending
at the last newline of a block of :data:`BLOCK_SIZE` bytes (a line longer than a block
keeps its chunk going), so every line lies inside one chunk and a line matching a query
holds all of the query's grams in its own chunk.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field

from log_archiver.search.newlines import count_newlines

try:  # the inner loops, compiled when the package is installed (hatch_build.py)
    from log_archiver.search import _gramset
except ImportError:  # no compiler at install time: numpy does them, several times slower
    _gramset = None

GRAM_BITS = 21
ENGINE = "compiled" if _gramset is not None else "numpy"
U32 = next(code for code in "IL" if array(code).itemsize == 4)  # a gram list's typecode


def _grams_of(raw: bytes) -> array:
    """Native uint32 values, as the compiled loops and numpy both write them."""
    found = array(U32)
    found.frombytes(raw)
    return found


def gram_ids(data: bytes):
    """The gram of every position of ``data`` (len - 2 of them, possibly repeated), as a
    numpy array (for queries and tests; indexing never needs them one by one)."""
    from log_archiver.search.numpy_loader import np

    if len(data) < 3:
        return np.empty(0, dtype=np.uint32)
    n = len(data)
    return _ids_into(np.frombuffer(data, dtype=np.uint8), np.empty(n - 2, np.uint32),
                     np.empty(n, np.uint8), np.empty(n - 1, np.uint16))


def _ids_into(a, ids, masked, pairs):
    """The grams of the bytes ``a``, computed in the buffers ``ids`` (``len(a) - 2``, of
    uint32 or numpy's index type), ``masked`` (``len(a)`` uint8) and ``pairs``
    (``len(a) - 1`` uint16). The first two bytes of each gram are joined in 16 bits,
    half the memory traffic of joining them in 32."""
    from log_archiver.search.numpy_loader import np

    np.bitwise_and(a, 0x7F, out=masked)
    np.left_shift(masked[:-1], 7, out=pairs, dtype=np.uint16)
    pairs |= masked[1:]
    np.left_shift(pairs[:-1], 7, out=ids, dtype=ids.dtype)
    ids |= masked[2:]
    return ids


def gram_of(three: bytes) -> int:
    a, b, c = (x & 0x7F for x in three)
    return (a << 14) | (b << 7) | c


PIECE = 1 << 16  # grams numpy makes and marks at once (512 KiB of index)


class _CompiledMap:
    """The grams seen so far, one bit each (256 KiB: it stays in the core's cache)."""

    def __init__(self):
        self.bits = bytearray(_gramset.MAP_BYTES)

    def mark_text(self, block: bytes, start: int, stop: int) -> None:
        """Mark the grams that begin at ``start`` up to ``stop`` in ``block``."""
        _gramset.mark_text(self.bits, block, start, stop)

    def mark_ids(self, ids) -> None:
        _gramset.mark_ids(self.bits, ids)

    def collect(self) -> array:
        """The marked grams, sorted; the map is clear again after."""
        return _grams_of(_gramset.collect(self.bits))


class _NumpyMap:
    """The same on numpy: a bool per gram (2 MiB), marked a piece at a time. Each piece's
    grams are made in numpy's own index type (indexing by uint32 costs numpy a cast and a
    bounds check in small pieces), and every buffer of a piece stays in the core's cache.
    Kept between calls: fresh memory is page faults, which cost more than the grams."""

    def __init__(self):
        from log_archiver.search.numpy_loader import np

        self._np = np
        self.seen = np.zeros(1 << GRAM_BITS, dtype=bool)
        self.masked = np.empty(PIECE + 2, np.uint8)
        self.pairs = np.empty(PIECE + 1, np.uint16)
        self.index = np.empty(PIECE, np.intp)

    def mark_text(self, block: bytes, start: int, stop: int) -> None:
        text = self._np.frombuffer(block, dtype=self._np.uint8)
        for at in range(start, stop, PIECE):
            n = min(PIECE, stop - at)
            self.seen[_ids_into(text[at:at + n + 2], self.index[:n], self.masked[:n + 2],
                                self.pairs[:n + 1])] = True

    def mark_ids(self, ids) -> None:
        grams = self._np.frombuffer(ids, dtype=self._np.uint32)
        for at in range(0, len(grams), PIECE):  # (converted a piece at a time: little room)
            piece = grams[at:at + PIECE]
            index = self.index[:len(piece)]
            self._np.copyto(index, piece, casting="unsafe")
            self.seen[index] = True

    def collect(self) -> array:
        found = self._np.flatnonzero(self.seen)
        self.seen[found] = False
        return _grams_of(found.astype(self._np.uint32).tobytes())


_maps: list = []  # free for the next block (list.pop is thread-safe)


def _take_map():
    try:
        return _maps.pop()
    except IndexError:
        return _CompiledMap() if _gramset is not None else _NumpyMap()


def distinct(pieces: list) -> array:
    """The sorted distinct grams of several gram lists."""
    seen = _take_map()
    for piece in pieces:
        seen.mark_ids(piece)
    found = seen.collect()
    _maps.append(seen)  # (not after an error: it may not be clear)
    return found


def _text_grams(block: bytes, start: int, stop: int, seen, extra: list[int]) -> array:
    """The sorted distinct grams beginning at ``start`` up to ``stop`` in ``block``, and
    ``extra``."""
    if stop > start:
        seen.mark_text(block, start, stop)
    if extra:
        seen.mark_ids(array(U32, extra))
    return seen.collect()


@dataclass
class BlockGrams:
    """What one block adds to a log's chunks; computed apart from the others (any thread),
    then taken in order by :meth:`Indexer.take`."""

    size: int
    lines: int                   # newlines in the block
    cut: int                     # offset of its last newline in the block, -1 for none
    lines_to_cut: int            # newlines up to and including that one
    head: array                  # sorted distinct grams that end at or before the cut
    rest: array                  # sorted distinct grams after it (all of them without one)


def block_grams(tail: bytes, block: bytes) -> BlockGrams:
    """The grams of ``block``, ``tail`` being the two bytes fed before it (fewer at the
    start), split where the block's last line ends."""
    seen = _take_map()
    grams = _split_grams(tail, block, seen)
    _maps.append(seen)  # (not after an error: it may not be clear)
    return grams


def _split_grams(tail: bytes, block: bytes, seen) -> BlockGrams:
    # the grams that start in the tail end at the block's first bytes (offsets 0 and 1)
    joined = tail + block[:2]
    across = [(end - len(tail), gram_of(joined[end - 2:end + 1]))
              for end in range(max(len(tail), 2), len(joined))]
    grams = max(len(block) - 2, 0)  # the grams that begin in the block
    cut = block.rfind(b"\n")
    if cut < 0:
        return BlockGrams(len(block), 0, -1, 0, array(U32),
                          _text_grams(block, 0, grams, seen, [g for _, g in across]))
    # (the last newline is the cut: every newline lies at or before it)
    lines_to_cut = count_newlines(block)
    end = min(max(cut - 1, 0), grams)  # grams beginning before it end at or before the cut
    return BlockGrams(len(block), lines_to_cut, cut, lines_to_cut,
                      _text_grams(block, 0, end, seen, [g for at, g in across if at <= cut]),
                      _text_grams(block, end, grams, seen, [g for at, g in across if at > cut]))


@dataclass
class Chunk:
    offset: int      # byte offset of its first line in the original content
    first_line: int  # 1-based number of that line
    grams: array     # sorted distinct grams (uint32)


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
        self._pieces: list[array] = []  # distinct grams of the current chunk's blocks
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
            self._pieces.append(grams.rest)
        else:
            self._pieces.append(grams.head)
            self._close(self.result.size + grams.cut + 1,
                        self.result.lines + grams.lines_to_cut + 1)
            self._pieces.append(grams.rest)
        self.result.size += grams.size
        self.result.lines += grams.lines

    def _close(self, end: int, next_line: int) -> None:
        pieces = [piece for piece in self._pieces if len(piece)]
        self._pieces = []
        grams = pieces[0] if len(pieces) == 1 else distinct(pieces)
        self.result.chunks.append(Chunk(self._start, self._start_line, grams))
        self._start, self._start_line = end, next_line

    def finish(self) -> LogGrams:
        if self.result.size > self._start:
            self._close(self.result.size, self._start_line)
            self.result.lines += 1  # the last line has no newline
        self._pieces = []
        return self.result

"""Trigrams of log text, and the chunks they are counted over.

A gram is three consecutive bytes with the top bit of each dropped: 21 bits, exact for
ASCII text; non-ASCII bytes only alias one another, which adds candidates and never loses
one (the text decides every match). A log is cut into chunks of whole lines, each ending
at the last newline of a block of :data:`BLOCK_SIZE` bytes (a line longer than a block
keeps its chunk going), so every line lies inside one chunk and a line matching a query
holds all of the query's grams in its own chunk.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from log_archiver.search.numpy_loader import np

GRAM_BITS = 21


def gram_ids(data: bytes) -> np.ndarray:
    """The gram of every position of ``data`` (len - 2 of them, possibly repeated)."""
    if len(data) < 3:
        return np.empty(0, dtype=np.uint32)
    n = len(data)
    return _ids_into(np.frombuffer(data, dtype=np.uint8), np.empty(n - 2, np.uint32),
                     np.empty(n, np.uint8), np.empty(n - 1, np.uint16))


def _ids_into(a: np.ndarray, ids: np.ndarray, masked: np.ndarray, pairs: np.ndarray
              ) -> np.ndarray:
    """The grams of the bytes ``a``, computed in the buffers ``ids`` (``len(a) - 2``, of
    uint32 or numpy's index type), ``masked`` (``len(a)`` uint8) and ``pairs``
    (``len(a) - 1`` uint16). The first two bytes of each gram are joined in 16 bits,
    half the memory traffic of joining them in 32."""
    np.bitwise_and(a, 0x7F, out=masked)
    np.left_shift(masked[:-1], 7, out=pairs, dtype=np.uint16)
    pairs |= masked[1:]
    np.left_shift(pairs[:-1], 7, out=ids, dtype=ids.dtype)
    ids |= masked[2:]
    return ids


def gram_of(three: bytes) -> int:
    a, b, c = (x & 0x7F for x in three)
    return (a << 14) | (b << 7) | c


class _Scratch:
    """Reusable room for the grams of one piece of a block and the bitmap they are marked
    in, kept between calls rather than per thread: pools come and go, and fresh memory is
    page faults, which cost more than computing the grams."""

    def __init__(self):
        self.masked = np.empty(PIECE + 2, np.uint8)
        self.pairs = np.empty(PIECE + 1, np.uint16)
        self.index = np.empty(PIECE, np.intp)
        self._seen: np.ndarray | None = None

    def seen(self) -> np.ndarray:
        """An all-false bitmap of every gram (all false again after each use)."""
        if self._seen is None:
            self._seen = np.zeros(1 << GRAM_BITS, dtype=bool)
        return self._seen

    def mark(self, seen: np.ndarray, text: np.ndarray, start: int, stop: int) -> None:
        """``seen[g] = True`` for the grams ``g`` that begin at ``start`` up to ``stop``
        in ``text``, a piece at a time: each piece's grams are made in numpy's own index
        type (indexing by uint32 costs numpy a cast and a bounds check in small pieces),
        and every buffer of a piece stays in the core's cache."""
        for at in range(start, stop, PIECE):
            n = min(PIECE, stop - at)
            seen[_ids_into(text[at:at + n + 2], self.index[:n], self.masked[:n + 2],
                           self.pairs[:n + 1])] = True


PIECE = 1 << 16  # grams made and marked at once (512 KiB of index)
_scratches: list[_Scratch] = []  # free for the next block (list.pop is thread-safe)


def _take_scratch() -> _Scratch:
    try:
        return _scratches.pop()
    except IndexError:
        return _Scratch()


BITMAP_FROM = 1 << 14  # grams from which a bitmap finds the distinct ones faster than sorting


def distinct(ids: np.ndarray, scratch: _Scratch | None = None) -> np.ndarray:
    """The sorted distinct values of ``ids`` (a new array). Many are marked in a bitmap
    of every gram; a few are sorted instead, since the bitmap must be scanned whole, 2
    MiB, however few grams it holds."""
    if scratch is not None and len(ids) >= BITMAP_FROM:
        seen = scratch.seen()
        for at in range(0, len(ids), PIECE):  # (converted a piece at a time: little room)
            piece = ids[at:at + PIECE]
            index = scratch.index[:len(piece)]
            np.copyto(index, piece, casting="unsafe")
            seen[index] = True
        return _collect(seen)
    ordered = np.sort(ids)
    if len(ordered) < 2:
        return ordered
    keep = np.empty(len(ordered), dtype=bool)
    keep[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=keep[1:])
    return ordered[keep]


def _collect(seen: np.ndarray) -> np.ndarray:
    """The grams marked in ``seen``, sorted; ``seen`` is all false again after."""
    found = np.flatnonzero(seen)
    seen[found] = False
    return found.astype(np.uint32)


def _text_grams(text: np.ndarray, start: int, stop: int, scratch: _Scratch,
                extra: list[int]) -> np.ndarray:
    """The sorted distinct grams beginning at ``start`` up to ``stop`` in ``text``, and
    ``extra``."""
    if stop - start < BITMAP_FROM:
        ids = gram_ids(text[start:stop + 2].tobytes()) if stop > start else \
            np.empty(0, np.uint32)
        return distinct(np.concatenate([ids, np.array(extra, dtype=np.uint32)]))
    seen = scratch.seen()
    scratch.mark(seen, text, start, stop)
    if extra:
        seen[np.array(extra, dtype=np.intp)] = True
    return _collect(seen)


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
    scratch = _take_scratch()
    grams = _split_grams(tail, block, scratch)
    _scratches.append(scratch)  # (not after an error: its bitmap may not be all false)
    return grams


def _split_grams(tail: bytes, block: bytes, scratch: _Scratch) -> BlockGrams:
    # the grams that start in the tail end at the block's first bytes (offsets 0 and 1)
    joined = tail + block[:2]
    across = [(end - len(tail), gram_of(joined[end - 2:end + 1]))
              for end in range(max(len(tail), 2), len(joined))]
    text = np.frombuffer(block, dtype=np.uint8)
    grams = max(len(block) - 2, 0)  # the grams that begin in the block
    cut = block.rfind(b"\n")
    if cut < 0:
        return BlockGrams(len(block), 0, -1, 0, np.empty(0, np.uint32),
                          _text_grams(text, 0, grams, scratch, [g for _, g in across]))
    # (the last newline is the cut: every newline lies at or before it; numpy counts
    # them four times faster than bytes.count)
    lines_to_cut = int(np.count_nonzero(text == 10))
    end = min(max(cut - 1, 0), grams)  # grams beginning before it end at or before the cut
    return BlockGrams(len(block), lines_to_cut, cut, lines_to_cut,
                      _text_grams(text, 0, end, scratch, [g for at, g in across if at <= cut]),
                      _text_grams(text, end, grams, scratch, [g for at, g in across if at > cut]))


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
        self._pieces: list[np.ndarray] = []  # distinct grams of the current chunk's blocks
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
        if len(pieces) == 1:
            grams = pieces[0]
        else:
            scratch = _take_scratch()
            grams = distinct(np.concatenate(pieces) if pieces else np.empty(0, np.uint32),
                             scratch)
            _scratches.append(scratch)
        self.result.chunks.append(Chunk(self._start, self._start_line, grams))
        self._start, self._start_line = end, next_line

    def finish(self) -> LogGrams:
        if self.result.size > self._start:
            self._close(self.result.size, self._start_line)
            self.result.lines += 1  # the last line has no newline
        self._pieces = []
        return self.result

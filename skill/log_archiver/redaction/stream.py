"""Redacting a log as it is read, in constant memory.

Chunks overlap by the longest rule (plus context on both sides), so a secret that spans
the edge of a read is found whole; a match is settled only when it starts before the
point where the next chunk's view begins, so the output does not depend on the read
size (a test checks it). The output comes in blocks of exactly ``block_size`` bytes
(the last shorter), as the compressor reads them, so a log with nothing to redact
compresses to the very bytes it did before redaction existed.

A log whose first 8 KiB hold a NUL byte is binary: passed through as it is, and said.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from log_archiver.redaction.engine import Match, Scanner, masked
from log_archiver.redaction.rules import CONTEXT

BINARY_PROBE = 8192
PLACEHOLDER = "[REDACTED:{}]"


@dataclass
class Finding:
    rule: str
    line: int
    preview: str


@dataclass
class Outcome:
    """What redacting one log found (never the secrets themselves)."""

    findings: Counter = field(default_factory=Counter)
    binary: bool = False
    size: int = 0  # bytes read from the log

    @property
    def redacted(self) -> bool:
        return bool(self.findings)

    def record(self) -> dict:
        """The index's ``redaction`` field of the log."""
        record = {"redacted": self.redacted, "findings": dict(sorted(self.findings.items()))}
        if self.binary:
            record["binary"] = True
        return record


class RedactingReader:
    """The redacted bytes of ``handle`` in blocks of ``block_size``; ``outcome`` says what
    was found once the blocks are exhausted. ``on_finding`` (rule, line, preview) is
    told of each secret as it is found, for ``scan``."""

    def __init__(self, handle: BinaryIO, scanner: Scanner, block_size: int = 1 << 20, *,
                 read_size: int | None = None,
                 on_finding: Callable[[Finding], None] | None = None):
        self.handle = handle
        self.scanner = scanner
        self.block_size = block_size
        self.read_size = read_size or max(block_size, 4 * scanner.ruleset.overlap)
        self.on_finding = on_finding
        self.outcome = Outcome()
        self._line = 1
        self._counted = 0  # absolute offset up to which newlines are counted

    def __iter__(self) -> Iterator[bytes]:
        size = self.block_size
        pending = bytearray()  # the start of the next block
        yielded = False
        for piece in self._pieces():
            view = memoryview(piece)
            if pending:  # fill the block begun by the pieces before
                taken = view[:size - len(pending)]
                pending += taken
                view = view[len(taken):]
                if len(pending) < size:
                    continue
                yielded = True
                yield bytes(pending)
                pending = bytearray()
            if len(view) == size and len(piece) == size and isinstance(piece, bytes):
                yielded = True
                yield piece  # (a piece of exactly one block, as it is)
                continue
            while len(view) >= size:  # whole blocks straight from the piece: one copy
                yielded = True
                yield bytes(view[:size])
                view = view[size:]
            pending += view
        if pending or not yielded:
            yield bytes(pending)

    def _read(self) -> bytes:
        data = self.handle.read(self.read_size)
        self.outcome.size += len(data)
        return data

    def _pieces(self) -> Iterator[bytes]:
        first = self._read()
        while len(first) < BINARY_PROBE and (more := self._read()):
            first += more
        if b"\0" in first[:BINARY_PROBE]:
            self.outcome.binary = True
            yield first
            while data := self._read():
                yield data
            return
        overlap = self.scanner.ruleset.overlap
        buf, begin, base = first, 0, 0  # begin: where unsettled bytes start; base: offset of buf
        final = False
        while True:
            if not final:
                while len(buf) - begin < 2 * overlap + self.read_size // 2:
                    data = self._read()
                    if not data:
                        final = True
                        break
                    buf += data
            cut = len(buf) if final else len(buf) - overlap
            matches = self.scanner.matches(buf, begin, cut)
            settled = max(cut, matches[-1].end if matches else cut)
            yield self._redacted(buf, begin, settled, matches, base)
            if final and settled >= len(buf):
                return
            keep_from = max(settled - CONTEXT, 0)
            buf, base, begin = buf[keep_from:], base + keep_from, settled - keep_from

    def _redacted(self, buf: bytes, begin: int, end: int, matches: list[Match],
                  base: int) -> bytes:
        if self.on_finding is not None and not matches:
            self._count_lines(buf, base, end)
        if not matches:  # (a view: the blocks are cut from it with one copy)
            return memoryview(buf)[begin:end]
        parts, at = [], begin
        for match in matches:
            self.outcome.findings[match.rule] += 1
            if self.on_finding is not None:
                self._count_lines(buf, base, match.start)
                self.on_finding(Finding(match.rule, self._line,
                                        masked(buf[match.start:match.end])))
            parts.append(buf[at:match.start])
            parts.append(PLACEHOLDER.format(match.rule).encode())
            at = match.end
        parts.append(buf[at:end])
        if self.on_finding is not None:
            self._count_lines(buf, base, end)
        return b"".join(parts)

    def _count_lines(self, buf: bytes, base: int, upto: int) -> None:
        self._line += buf.count(b"\n", self._counted - base, upto)
        self._counted = base + upto


def redacted_digest(path, scanner: Scanner) -> tuple[str, int, Outcome]:
    """SHA-256 and size of the redacted bytes of the file at ``path``, and the outcome:
    what a redacted log's record is compared with (the original is never hashed)."""
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as handle:
        reader = RedactingReader(handle, scanner)
        for block in reader:
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size, reader.outcome


class _PlainBlocks:
    """A file's blocks as they are (redaction off): at least one, maybe empty."""

    def __init__(self, handle: BinaryIO, block_size: int):
        self.handle = handle
        self.block_size = block_size
        self.bytes_read = 0

    def __iter__(self) -> Iterator[bytes]:
        block = self.handle.read(self.block_size)
        self.bytes_read += len(block)
        yield block
        while block := self.handle.read(self.block_size):
            self.bytes_read += len(block)
            yield block

    def record(self) -> None:
        return None


class _RedactedBlocks(RedactingReader):
    @property
    def bytes_read(self) -> int:
        return self.outcome.size

    def record(self) -> dict:
        return self.outcome.record()


def source_blocks(handle: BinaryIO, scanner: Scanner | None, block_size: int):
    """The blocks a log is stored from: redacted when a ``scanner`` is given; after
    they are exhausted, ``record()`` is the index's ``redaction`` field (None when off)
    and ``bytes_read`` the size of the log as read (the redacted blocks may be shorter).
    The compressor reads through this, so whatever observes its blocks sees only
    redacted text."""
    if scanner is None:
        return _PlainBlocks(handle, block_size)
    return _RedactedBlocks(handle, scanner, block_size)

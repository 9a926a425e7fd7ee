"""Logs with words planted at known lines, and what grep would say about them."""

from __future__ import annotations

import re
from pathlib import Path

from log_archiver.archive.compress import BLOCK_SIZE
from log_archiver.util.samples import log_text


def planted_log(path: Path, size: int, seed: int, plants: dict[str, float],
                across_block: str | None = None) -> bytes:
    """``size`` bytes of log text with each word of ``plants`` on a line of its own at that
    fraction of the file; ``across_block`` on a line that straddles the first block
    boundary (so the line starts in block 0 and ends in block 1)."""
    data = bytearray(log_text(size, seed))
    for word, where in sorted(plants.items(), key=lambda item: -item[1]):
        at = data.index(b"\n", int(len(data) * where)) + 1
        data[at:at] = f"2025-01-15T10:00:00Z ERROR planted {word} here\n".encode()
    if across_block:
        start = data.rindex(b"\n", 0, BLOCK_SIZE - 200) + 1
        head = f"2025-01-15T10:00:01Z WARN boundary {across_block} ".encode()
        pad = b"-" * (BLOCK_SIZE - start - len(head) + 1)  # the word ends past the boundary
        line = head[:-len(across_block) - 1] + pad + head[-len(across_block) - 1:] \
            + b" spans the block\n"
        data[start:start] = line
        assert start < BLOCK_SIZE < start + len(line) - 1
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(data))
    return bytes(data)


def grep_n(data: bytes, needle: str, *, ignore_case: bool = False, regex: bool = False
           ) -> list[tuple[int, str]]:
    """``grep -n`` (-F, or -P for a regex): the line numbers and texts that match."""
    pattern = re.compile(needle if regex else re.escape(needle),
                         re.IGNORECASE if ignore_case else 0)
    lines = data.decode("utf-8", errors="replace").split("\n")
    if data.endswith(b"\n"):
        lines.pop()
    return [(n, line) for n, line in enumerate(lines, 1) if pattern.search(line)]


def lines_of(data: bytes) -> list[str]:
    lines = data.decode("utf-8", errors="replace").split("\n")
    return lines[:-1] if data.endswith(b"\n") else lines

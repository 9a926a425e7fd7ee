"""The block table of a gzip copy: where each 1 MiB block of the original starts.

Compression writes one independent gzip member per block of the original
(:data:`log_archiver.model.block_table.BLOCK_SIZE`). After the last one it appends the
table, as *empty* gzip members whose FEXTRA field carries it, so every gzip reader still
returns exactly the original bytes (an empty member adds nothing; readers skip FEXTRA):

- table members, subfield ``LB``: ``>BII`` (version, first block, entries) then one
  ``>IIQ32s`` per block: compressed length, raw length, lines before the block (the
  0-based index of its first line), SHA-256 of its compressed member;
- one trailer member of fixed size, subfield ``LT``: ``>BQIQ32s`` (version, where the
  table starts, blocks, the table's own length up to the trailer, the SHA-256 of those
  bytes), so a reader that knows only the object finds the table in its last bytes.

The log record keeps ``blocks``: ``{offset, length, sha256, count}``, the table region
(table members and trailer, the object's tail: ``offset + length`` is its size) and the
SHA-256 of that region. A reader trusts the table only once it hashes to the recorded
value, and a member only once it hashes to the table's entry.

Everything here depends only on the input: the same log gives the same bytes.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

# the sizes of the parts live in the model, where the index rules check them too
from log_archiver.model.block_table import EMPTY_BODY as _EMPTY_BODY
from log_archiver.model.block_table import ENTRY as _ENTRY
from log_archiver.model.block_table import PER_MEMBER, TRAILER_SIZE, VERSION
from log_archiver.model.block_table import TABLE_HEAD as _TABLE_HEAD
from log_archiver.model.block_table import TABLE_ID as _TABLE_ID
from log_archiver.model.block_table import TRAILER as _TRAILER
from log_archiver.model.block_table import TRAILER_ID as _TRAILER_ID
from log_archiver.search.newlines import count_newlines


class TableError(ValueError):
    """Bytes that are not a block table of this format."""


@dataclass(frozen=True)
class Block:
    number: int
    offset: int           # where its member starts in the object
    length: int           # the member's compressed length
    raw_length: int
    lines_before: int
    sha256: bytes         # of the compressed member


def _member(field_id: bytes, data: bytes) -> bytes:
    """An empty gzip member whose FEXTRA holds one subfield (mtime 0, OS unknown)."""
    extra = field_id + struct.pack("<H", len(data)) + data
    return (b"\x1f\x8b\x08\x04" + b"\x00\x00\x00\x00" + b"\x00\xff"
            + struct.pack("<H", len(extra)) + extra + _EMPTY_BODY)


class TableBuilder:
    """Fed the raw blocks in order and their compressed members in order."""

    def __init__(self) -> None:
        self._raw: list[tuple[int, int]] = []     # raw length, lines before
        self._members: list[tuple[int, bytes]] = []  # compressed length, sha256
        self._lines = 0

    def raw_block(self, block: bytes) -> None:
        self._raw.append((len(block), self._lines))
        self._lines += count_newlines(block)

    def member(self, length: int, sha256: bytes) -> None:
        self._members.append((length, sha256))

    def finish(self, offset: int) -> tuple[bytes, dict]:
        """The table region to append at ``offset`` (the compressed members' total), and
        the ``blocks`` field of the log record."""
        if len(self._raw) != len(self._members):
            raise TableError(f"{len(self._raw)} raw blocks but {len(self._members)} members")
        entries = [_ENTRY.pack(length, raw, lines, sha)
                   for (raw, lines), (length, sha) in zip(self._raw, self._members, strict=True)]
        parts = []
        for first in range(0, max(len(entries), 1), PER_MEMBER):
            chunk = entries[first:first + PER_MEMBER]
            parts.append(_member(_TABLE_ID, _TABLE_HEAD.pack(VERSION, first, len(chunk))
                                 + b"".join(chunk)))
        table = b"".join(parts)
        trailer = _member(_TRAILER_ID, _TRAILER.pack(VERSION, offset, len(entries), len(table),
                                                     hashlib.sha256(table).digest()))
        region = table + trailer
        return region, {"offset": offset, "length": len(region),
                        "sha256": hashlib.sha256(region).hexdigest(), "count": len(entries)}


def _subfield(data: bytes, at: int, field_id: bytes) -> tuple[bytes, int]:
    """The subfield data of the empty member at ``at``, and where the next member starts."""
    head = data[at:at + 12]
    if len(head) < 12 or head[:4] != b"\x1f\x8b\x08\x04":
        raise TableError(f"no table member at byte {at}")
    xlen = struct.unpack("<H", head[10:12])[0]
    extra = data[at + 12:at + 12 + xlen]
    if len(extra) != xlen or extra[:2] != field_id:
        raise TableError(f"the member at byte {at} holds no {field_id.decode()} subfield")
    size = struct.unpack("<H", extra[2:4])[0]
    if size != xlen - 4:
        raise TableError(f"the member at byte {at} has a malformed extra field")
    end = at + 12 + xlen
    if data[end:end + len(_EMPTY_BODY)] != _EMPTY_BODY:
        raise TableError(f"the table member at byte {at} is not empty")
    return extra[4:], end + len(_EMPTY_BODY)


def parse_region(region: bytes, offset: int) -> list[Block]:
    """The blocks a table region (as appended at ``offset``) describes; :class:`TableError`
    when it is malformed or does not add up (lengths that miss ``offset``, say)."""
    try:
        return _parse(region, offset)
    except struct.error as error:
        raise TableError(f"a table field has the wrong size ({error})") from None


def _parse(region: bytes, offset: int) -> list[Block]:
    trailer_at = len(region) - TRAILER_SIZE
    if trailer_at < 0:
        raise TableError("the table region is shorter than its trailer")
    version, start, count, table_length, table_sha = _TRAILER.unpack(
        _subfield(region, trailer_at, _TRAILER_ID)[0])
    if version != VERSION or start != offset or table_length != trailer_at \
            or hashlib.sha256(region[:trailer_at]).digest() != table_sha:
        raise TableError("the table trailer does not describe the table before it")
    blocks, at, position = [], 0, 0
    while at < trailer_at:
        data, at = _subfield(region, at, _TABLE_ID)
        member_version, first, entries = _TABLE_HEAD.unpack_from(data)
        if member_version != VERSION or first != len(blocks) \
                or len(data) != _TABLE_HEAD.size + entries * _ENTRY.size:
            raise TableError(f"table member for block {first} is malformed")
        for index in range(entries):
            length, raw, lines, sha = _ENTRY.unpack_from(data, _TABLE_HEAD.size
                                                         + index * _ENTRY.size)
            blocks.append(Block(len(blocks), position, length, raw, lines, sha))
            position += length
    if at != trailer_at or len(blocks) != count or position != offset:
        raise TableError(f"the table lists {len(blocks)} blocks over {position} bytes; "
                         f"the trailer says {count} blocks over {offset}")
    return blocks


def locate(tail: bytes, size: int) -> dict | None:
    """From an object's last :data:`TRAILER_SIZE` bytes (of ``size`` in all), the table
    region's ``offset`` and ``length`` (the ``blocks`` field lacks only its SHA-256
    until the region is read), or None when the object ends in no trailer."""
    try:
        version, start, count, table_length, _sha = _TRAILER.unpack(
            _subfield(tail, 0, _TRAILER_ID)[0])
    except (TableError, struct.error):
        return None
    length = table_length + TRAILER_SIZE
    if version != VERSION or len(tail) != TRAILER_SIZE or start + length != size:
        return None
    return {"offset": start, "length": length, "count": count}


def recover(get_range, key: str, size: int) -> dict | None:
    """The ``blocks`` field of the object at ``key`` (``size`` bytes), read from its tail
    with ``get_range(key, start, length)``; None when it has no sound table (a copy made
    before tables, or bytes that do not parse) or it cannot be read now."""
    from log_archiver.errors import ArchiveError

    if size < TRAILER_SIZE:
        return None
    try:
        found = locate(get_range(key, size - TRAILER_SIZE, TRAILER_SIZE), size)
        if found is None:
            return None
        region = get_range(key, found["offset"], found["length"])
        blocks = parse_region(region, found["offset"])
    except (ArchiveError, TableError):
        return None
    return {"offset": found["offset"], "length": found["length"],
            "sha256": hashlib.sha256(region).hexdigest(), "count": len(blocks)}

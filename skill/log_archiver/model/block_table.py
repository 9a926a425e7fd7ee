"""The byte layout of a gzip copy's block table, shared by its writer and reader
(:mod:`log_archiver.retrieve.blocks`, which describes the format) and by the index rules,
which check that a log record's ``blocks`` field can describe its object."""

from __future__ import annotations

import struct

# bytes of the original in each gzip member (the last may be shorter): small enough that
# a typical 2 MB log keeps two cores busy, and the unit a ranged read fetches
BLOCK_SIZE = 1 << 20
VERSION = 1
ENTRY = struct.Struct(">IIQ32s")
TABLE_HEAD = struct.Struct(">BII")
TRAILER = struct.Struct(">BQIQ32s")
TABLE_ID, TRAILER_ID = b"LB", b"LT"
MAX_FIELD = 65535 - 4  # XLEN is 16 bits; the subfield header takes 4
PER_MEMBER = (MAX_FIELD - TABLE_HEAD.size) // ENTRY.size
# An empty raw DEFLATE stream (one final fixed block), CRC32 0, ISIZE 0.
EMPTY_BODY = b"\x03\x00" + b"\x00" * 8
MEMBER_OVERHEAD = 10 + 2 + 4 + len(EMPTY_BODY)  # header, XLEN, subfield header, body
TRAILER_SIZE = MEMBER_OVERHEAD + TRAILER.size
MIN_MEMBER = 10 + 2 + 8  # any gzip member: header, the shortest DEFLATE stream, trailer


def region_length(count: int) -> int:
    """How long the table region (table members and trailer) of ``count`` blocks is."""
    members = max(-(-count // PER_MEMBER), 1)
    return members * (MEMBER_OVERHEAD + TABLE_HEAD.size) + count * ENTRY.size + TRAILER_SIZE

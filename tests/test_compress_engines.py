"""The gzip copy at every level: libdeflate up to 6, zlib-ng above; any gzip reader
returns the log, the block table describes every member, and compressing again gives
the same bytes (a rerun after a crash finds the checksum it recorded)."""

from __future__ import annotations

import gzip
import hashlib
from concurrent.futures import ThreadPoolExecutor

import pytest
from zlib_ng import zlib_ng

from log_archiver.archive.compress import BLOCK_SIZE, LIBDEFLATE_TOP, gzip_many, gzip_member
from log_archiver.retrieve.blocks import TRAILER_SIZE, locate, parse_region
from log_archiver.util.samples import log_text


@pytest.mark.parametrize("level", range(1, 10))
def test_every_level_gives_a_gzip_copy_with_its_block_table(tmp_path, level):
    source = tmp_path / "big.log"
    source.write_bytes(log_text(2 * BLOCK_SIZE + 12345, level))
    with ThreadPoolExecutor(max_workers=2) as pool:
        [(_, first)] = list(gzip_many([source], level, pool))
        copy = first.path.read_bytes()
        first.path.unlink()
        [(_, again)] = list(gzip_many([source], level, pool))
    assert gzip.decompress(copy) == source.read_bytes()
    assert again.sha256 == first.sha256 == hashlib.sha256(copy).hexdigest()
    table = locate(copy[-TRAILER_SIZE:], len(copy))
    assert table is not None
    region = copy[table["offset"]:table["offset"] + table["length"]]
    blocks = parse_region(region, table["offset"])
    assert len(blocks) == 3
    for block in blocks:
        member = copy[block.offset:block.offset + block.length]
        assert hashlib.sha256(member).digest() == block.sha256
        assert len(gzip.decompress(member)) == block.raw_length


def test_libdeflate_compresses_log_text_as_well_as_zlib_ng_at_the_same_level():
    text = log_text(BLOCK_SIZE, 3)
    packer = zlib_ng.compressobj(LIBDEFLATE_TOP, zlib_ng.DEFLATED, 31)
    by_zlib_ng = len(packer.compress(text) + packer.flush())
    ours = gzip_member(text, LIBDEFLATE_TOP)
    assert gzip.decompress(ours) == text
    assert len(ours) <= by_zlib_ng * 1.01


def test_an_empty_block_is_a_valid_member():
    for level in (1, LIBDEFLATE_TOP, 9):
        assert gzip.decompress(gzip_member(b"", level)) == b""


def test_the_block_table_counts_the_same_lines_whichever_counter_it_has(monkeypatch):
    import sys

    from log_archiver.retrieve.blocks import TableBuilder
    from log_archiver.search import newlines
    from log_archiver.search.numpy_loader import np  # noqa: F401 (loaded: numpy's count)

    text = b"".join(b"line %d\r\n" % n if n % 7 else b"\n\n" for n in range(40_000)) + b"tail"

    def lines_counted() -> int:
        table = TableBuilder()
        table.raw_block(text)
        table.raw_block(b"a\nb\n")
        return table._lines

    assert newlines._gramset is not None, "the compiled loops were not built"
    counts = [lines_counted()]  # compiled
    monkeypatch.setattr(newlines, "_gramset", None)
    counts.append(lines_counted())  # numpy, once loaded
    monkeypatch.delitem(sys.modules, "log_archiver.search.numpy_loader")
    counts.append(lines_counted())  # bytes.count
    assert counts == [text.count(b"\n") + 2] * 3

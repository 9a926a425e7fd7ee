"""``get_range`` keeps one contract on every store (file:// and SeaweedFS S3), through the
retrying and dry-run wrappers too; and the block table any gzip reader ignores."""

from __future__ import annotations

import gzip
import hashlib
import subprocess
import zlib

import pytest

from log_archiver.errors import StorageNotFoundError, UsageError
from log_archiver.retrieve.blocks import (
    PER_MEMBER,
    TRAILER_SIZE,
    TableBuilder,
    TableError,
    locate,
    parse_region,
)
from log_archiver.storage.local import LocalStore
from log_archiver.storage.wrappers import DryRunStore, RetryingStore
from log_archiver.util.retry import RetryPolicy

KEY = "archive/logs/2025/01/123/build.log.gz"
DATA = bytes(range(256)) * 4096 + b"tail"  # 1 MiB + 4 bytes, every offset distinct


@pytest.fixture(params=["file", "s3", "retrying", "dry-run"])
def store(request, tmp_path):
    if request.param == "s3":
        inner = request.getfixturevalue("s3_store")
    else:
        inner = LocalStore(tmp_path / "store")
    source = tmp_path / "src"
    source.write_bytes(DATA)
    inner.put(KEY, source, sha256=hashlib.sha256(DATA).hexdigest(), size=len(DATA))
    if request.param == "retrying":
        return RetryingStore(inner, RetryPolicy())
    if request.param == "dry-run":
        return DryRunStore(inner)
    return inner


@pytest.mark.parametrize(("start", "length"), [(0, 1), (0, 10), (255, 3), (1 << 20, 4),
                                               (1000, 70000), (0, len(DATA))])
def test_a_range_is_exactly_those_bytes(store, start, length):
    assert store.get_range(KEY, start, length) == DATA[start:start + length]


def test_ranges_at_and_past_the_end(store):
    assert store.get_range(KEY, len(DATA) - 2, 100) == b"il"
    assert store.get_range(KEY, len(DATA), 10) == b""
    assert store.get_range(KEY, len(DATA) + 5000, 10) == b""
    assert store.get_range(KEY, 10, 0) == b""


@pytest.mark.parametrize(("start", "length"), [(-1, 5), (0, -5), ("0", 5)])
def test_bad_ranges_are_refused(store, start, length):
    with pytest.raises(UsageError):
        store.get_range(KEY, start, length)


def test_a_missing_key_is_not_found(store):
    with pytest.raises(StorageNotFoundError):
        store.get_range("archive/logs/2025/01/123/missing.log", 0, 10)


# -- the block table -------------------------------------------------------------------


def gzip_with_table(blocks: list[bytes]) -> tuple[bytes, dict]:
    builder, members = TableBuilder(), []
    for block in blocks:
        builder.raw_block(block)
        member = gzip.compress(block, mtime=0)
        builder.member(len(member), hashlib.sha256(member).digest())
        members.append(member)
    body = b"".join(members)
    region, record = builder.finish(len(body))
    return body + region, record


def test_every_gzip_reader_returns_the_original(tmp_path):
    blocks = [b"a\nb\n" * 1000, b"partial line", b" ends\nhere\n"]
    data, record = gzip_with_table(blocks)
    assert gzip.decompress(data) == b"".join(blocks)
    path = tmp_path / "x.gz"
    path.write_bytes(data)
    assert subprocess.run(["gzip", "-dc", str(path)], capture_output=True,
                          check=True).stdout == b"".join(blocks)
    assert subprocess.run(["gzip", "-t", str(path)]).returncode == 0
    reader = zlib.decompressobj(31)
    assert reader.decompress(data) == blocks[0]  # members are independent
    assert record["offset"] + record["length"] == len(data)


def test_the_table_parses_back_and_is_found_from_the_tail():
    blocks = [b"x" * 100 + b"\n" * 3, b"", b"\n\n"]
    data, record = gzip_with_table(blocks[:1] + blocks[2:])
    region = data[record["offset"]:]
    assert hashlib.sha256(region).hexdigest() == record["sha256"]
    parsed = parse_region(region, record["offset"])
    assert [(b.number, b.raw_length, b.lines_before) for b in parsed] == [(0, 103, 0),
                                                                        (1, 2, 3)]
    assert parsed[1].offset == parsed[0].length
    found = locate(data[-TRAILER_SIZE:], len(data))
    assert found == {"offset": record["offset"], "length": record["length"], "count": 2}
    assert locate(b"\x00" * TRAILER_SIZE, 5000) is None
    assert locate(data[-TRAILER_SIZE:], len(data) + 1) is None  # does not end the object


def test_a_table_over_many_members():
    builder = TableBuilder()
    count = PER_MEMBER * 2 + 5
    for number in range(count):
        builder.raw_block(b"line\n" * (number % 3))
        builder.member(10, bytes([number % 256]) * 32)
    region, record = builder.finish(10 * count)
    parsed = parse_region(region, 10 * count)
    assert len(parsed) == count == record["count"]
    assert parsed[-1].lines_before == sum(n % 3 for n in range(count - 1))
    assert parsed[PER_MEMBER].offset == 10 * PER_MEMBER


def test_the_same_input_gives_the_same_table():
    one = gzip_with_table([b"same\n" * 50, b"bytes"])
    two = gzip_with_table([b"same\n" * 50, b"bytes"])
    assert one == two


@pytest.mark.parametrize("damage", ["flip", "offset", "cut"])
def test_a_malformed_region_is_refused(damage):
    data, record = gzip_with_table([b"abc\n" * 10, b"def"])
    region = bytearray(data[record["offset"]:])
    offset = record["offset"]
    if damage == "flip":
        region[20] ^= 1
    elif damage == "offset":
        offset += 1
    else:
        region = region[:-1]
    with pytest.raises(TableError):
        parse_region(bytes(region), offset)

"""The one reader of archived logs: the original bytes, block by block, never unverified.

:func:`read_blocks` yields ``(block number, lines before it, raw bytes)`` for 1 MiB blocks
of the original (:data:`BLOCK_SIZE`), whatever the stored form, from the first source
that applies:

1. the log's local file, while it exists and hashes to the recorded
   ``original_checksum`` (hashed whole before anything is yielded);
2. a gzip copy with a block table (``blocks`` in the record): the table is fetched with
   one ranged read and checked against the record, then only the wanted members are
   fetched, each checked against the table before it is decompressed; a whole read also
   checks the object's ``checksum`` as the last byte arrives;
3. anything else (zstd, a log stored as it is, a copy made before tables): the object is
   downloaded to a temp file while hashed, checked against ``checksum``, then decompressed
   as a stream (constant memory).

A mismatch raises :class:`IntegrityError` naming the object and what to run.
``with fetch_tally() as tally:`` counts the bytes fetched from the store and says which
source was used.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from log_archiver.errors import (
    ArchiveError,
    ChecksumMismatchError,
    IndexCorruptError,
    IntegrityError,
    LocalFileError,
)
from log_archiver.model import keys
from log_archiver.model.block_table import BLOCK_SIZE
from log_archiver.repository import Repository
from log_archiver.retrieve.blocks import Block, TableError, parse_region
from log_archiver.util.hashing import bare
from log_archiver.util.paths import UnsafePath, confined

MAX_FETCH = 16 << 20  # compressed bytes asked for in one ranged read at most
_active = threading.local()
_tables: dict[tuple, list[Block]] = {}  # verified tables, by store, key and table digest
_local_checked: dict[tuple, list[int]] = {}  # the last local file hashed, while unchanged


@dataclass
class FetchTally:
    bytes_fetched: int = 0
    requests: int = 0
    source: str | None = None  # "local", "blocks" (ranged reads) or "object" (whole)


@contextmanager
def fetch_tally() -> Iterator[FetchTally]:
    tally = FetchTally()
    stack = _active.__dict__.setdefault("tallies", [])
    stack.append(tally)
    try:
        yield tally
    finally:
        stack.remove(tally)


def _count(nbytes: int, source: str) -> None:
    for tally in _active.__dict__.get("tallies", []):
        tally.bytes_fetched += nbytes
        tally.requests += 1 if source != "local" else 0
        tally.source = tally.source or source


def _key(log: dict) -> tuple[str, int]:
    key = log.get("remote_path")
    parsed = keys.parse_key(key) if isinstance(key, str) else None
    if parsed is None:
        raise IndexCorruptError(f"log {log.get('local_path')!r} has remote_path {key!r}, "
                                "which is no key of the archive",
                                "rebuild the entry with `log-archiver archive ISSUE "
                                "--reindex-only`")
    return key, parsed.issue


def _damaged(repo: Repository, log: dict, what: str) -> IntegrityError:
    key, issue = _key(log)
    return IntegrityError(
        f"{repo.store.url_for(key)} ({log.get('local_path')}): {what}; nothing unverified "
        "was written",
        f"the stored copy is damaged: if the log is still on some machine, run "
        f"`log-archiver archive {issue} --force` there; run `log-archiver read {issue}` to "
        "see where each copy is")


def read_blocks(repo: Repository, log: dict, wanted: Iterable[int] | None = None
                ) -> Iterator[tuple[int, int, bytes]]:
    """The original's blocks (all, in order, or the ``wanted`` numbers, in order; numbers
    past the end are ignored) as ``(number, lines before it, raw bytes)``."""
    numbers = None if wanted is None else sorted(set(wanted))
    local = local_original(repo, log)
    if local is not None:
        yield from _local_blocks(local, numbers)
    elif log.get("compression") == "gzip" and isinstance(log.get("blocks"), dict):
        yield from _table_blocks(repo, log, numbers)
    else:
        yield from _object_blocks(repo, log, numbers)


def read_original(repo: Repository, log: dict) -> Iterator[bytes]:
    """The whole original, as a stream of verified blocks (for whole reads and restores)."""
    for _number, _lines, raw in read_blocks(repo, log):
        yield raw


# -- 1. the local file ------------------------------------------------------------------


@dataclass(frozen=True)
class LocalOriginal:
    path: Path
    identity: tuple
    lines_before: list[int]


def local_original(repo: Repository, log: dict) -> LocalOriginal | None:
    """The log's local file when it holds exactly the recorded original (else None)."""
    try:
        path = confined(repo.logs_dir, log.get("local_path"))
        stat = os.stat(path)
    except (UnsafePath, OSError):
        return None
    if not os.path.isfile(path) or stat.st_size != log.get("original_size_bytes"):
        return None
    known = (str(path), _identity(stat), log.get("original_checksum"))
    if known in _local_checked:  # hashed moments ago (a range read asks twice)
        return LocalOriginal(path, _identity(stat), _local_checked[known])
    digest, lines_before, count = hashlib.sha256(), [], 0
    try:
        with open(path, "rb") as handle:
            while block := handle.read(BLOCK_SIZE):
                lines_before.append(count)
                count += block.count(b"\n")
                digest.update(block)
            after = os.fstat(handle.fileno())
    except OSError:
        return None
    if digest.hexdigest() != bare(str(log.get("original_checksum"))) \
            or _identity(after) != _identity(stat):
        return None
    _local_checked.clear()
    _local_checked[known] = lines_before or [0]
    return LocalOriginal(path, _identity(stat), lines_before or [0])


def _identity(stat: os.stat_result) -> tuple:
    return stat.st_ino, stat.st_size, stat.st_mtime_ns


def _local_blocks(local: LocalOriginal, numbers: list[int] | None
                  ) -> Iterator[tuple[int, int, bytes]]:
    count = len(local.lines_before)
    chosen = range(count) if numbers is None else [n for n in numbers if 0 <= n < count]
    with open(local.path, "rb") as handle:
        if _identity(os.fstat(handle.fileno())) != local.identity:
            raise _changed(local.path)
        for number in chosen:
            handle.seek(number * BLOCK_SIZE)
            raw = handle.read(BLOCK_SIZE)
            _count(len(raw), "local")
            yield number, local.lines_before[number], raw
        if _identity(os.fstat(handle.fileno())) != local.identity:
            raise _changed(local.path)


def _changed(path: Path) -> LocalFileError:
    return LocalFileError(f"{path} changed while it was read",
                          "run the command again once nothing writes to it", retryable=True)


# -- 2. a gzip copy with a block table -----------------------------------------------------


def block_table(repo: Repository, log: dict) -> list[Block]:
    """The verified block table of a gzip copy (fetched once per process)."""
    key, _issue = _key(log)
    blocks = log["blocks"]
    cache_key = (repo.store.url, key, blocks.get("sha256"), log.get("checksum"))
    if cache_key in _tables:
        return _tables[cache_key]
    try:
        offset, length = int(blocks["offset"]), int(blocks["length"])
    except (KeyError, TypeError, ValueError):
        raise _damaged(repo, log, f"its record's blocks field {blocks!r} is malformed") \
            from None
    if offset < 0 or length <= 0 or offset + length != log.get("size_bytes"):
        raise _damaged(repo, log, f"its record's block table ({offset}+{length}) does not end "
                       f"the {log.get('size_bytes')}-byte object")
    region = repo.store.get_range(key, offset, length)
    _count(len(region), "blocks")
    if hashlib.sha256(region).hexdigest() != blocks.get("sha256"):
        raise _damaged(repo, log, f"its block table (bytes {offset}-{offset + length - 1}) "
                       "does not match the SHA-256 the index records")
    try:
        table = parse_region(region, offset)
    except TableError as error:
        raise _damaged(repo, log, f"its block table is malformed ({error})") from None
    if len(_tables) > 256:
        _tables.clear()
    _tables[cache_key] = table
    return table


def _runs(table: list[Block], numbers: list[int]) -> Iterator[list[Block]]:
    """Consecutive wanted blocks, grouped so one ranged read fetches each group."""
    run: list[Block] = []
    for number in numbers:
        block = table[number]
        if run and (run[-1].number + 1 != number
                    or block.offset + block.length - run[0].offset > MAX_FETCH):
            yield run
            run = []
        run.append(block)
    if run:
        yield run


def _table_blocks(repo: Repository, log: dict, numbers: list[int] | None
                  ) -> Iterator[tuple[int, int, bytes]]:
    table = block_table(repo, log)
    key, _issue = _key(log)
    whole = numbers is None
    chosen = list(range(len(table))) if whole else [n for n in numbers if 0 <= n < len(table)]
    digest = hashlib.sha256()
    for run in _runs(table, chosen):
        start = run[0].offset
        data = repo.store.get_range(key, start, run[-1].offset + run[-1].length - start)
        _count(len(data), "blocks")
        for block in run:
            member = data[block.offset - start:block.offset - start + block.length]
            if hashlib.sha256(member).digest() != block.sha256:
                raise _damaged(repo, log, f"block {block.number} (bytes {block.offset}-"
                               f"{block.offset + block.length - 1}) does not match its table")
            try:
                raw = zlib.decompress(member, 31)
            except zlib.error as error:
                raise _damaged(repo, log, f"block {block.number} does not decompress "
                               f"({error})") from None
            if len(raw) != block.raw_length:
                raise _damaged(repo, log, f"block {block.number} holds {len(raw)} bytes, "
                               f"its table says {block.raw_length}")
            if whole:
                digest.update(member)
            yield block.number, block.lines_before, raw
    if whole:  # every member was read: the object as a whole can be checked too
        blocks = log["blocks"]
        region = repo.store.get_range(key, blocks["offset"], blocks["length"])
        digest.update(region)
        if digest.hexdigest() != bare(str(log.get("checksum"))):
            raise _damaged(repo, log, "the object as a whole does not match its checksum")


# -- 3. the whole object -----------------------------------------------------------------


def _object_blocks(repo: Repository, log: dict, numbers: list[int] | None
                   ) -> Iterator[tuple[int, int, bytes]]:
    key, _issue = _key(log)
    handle, name = tempfile.mkstemp(prefix=".la-read-", suffix=".part")
    os.close(handle)
    temp = Path(name)
    try:
        try:
            repo.store.get(key, temp)
        except ChecksumMismatchError as error:
            raise _damaged(repo, log, error.message) from error
        digest, size = hashlib.sha256(), 0
        with open(temp, "rb") as stored:
            while chunk := stored.read(BLOCK_SIZE):
                digest.update(chunk)
                size += len(chunk)
        _count(size, "object")
        if (size, digest.hexdigest()) != (log.get("size_bytes"), bare(str(log.get("checksum")))):
            raise _damaged(repo, log, f"it reads back as {size} bytes sha256 "
                           f"{digest.hexdigest()}, the index records {log.get('size_bytes')} "
                           f"bytes {log.get('checksum')}")
        yield from _decompressed_blocks(repo, log, temp, numbers)
    finally:
        temp.unlink(missing_ok=True)


def _decompressed_blocks(repo: Repository, log: dict, path: Path,
                         numbers: list[int] | None) -> Iterator[tuple[int, int, bytes]]:
    wanted = None if numbers is None else set(numbers)
    last = None if numbers is None else max(numbers, default=-1)
    lines = 0
    with _open_decompressed(repo, log, path) as reader:
        number = 0
        while last is None or number <= last:
            raw = _read_full(reader, BLOCK_SIZE)
            if not raw and number:
                break
            if wanted is None or number in wanted:
                yield number, lines, raw
            lines += raw.count(b"\n")
            number += 1
            if len(raw) < BLOCK_SIZE:
                break


@contextmanager
def _open_decompressed(repo: Repository, log: dict, path: Path):
    import gzip

    import zstandard

    compression = log.get("compression")
    with open(path, "rb") as stored:
        try:
            if compression == "gzip":
                with gzip.GzipFile(fileobj=stored) as reader:
                    yield reader
            elif compression == "zstd":
                with zstandard.ZstdDecompressor().stream_reader(
                        stored, read_across_frames=True) as reader:
                    yield reader
            else:
                yield stored
        except (OSError, EOFError, zlib.error, zstandard.ZstdError) as error:
            if isinstance(error, ArchiveError):
                raise
            raise _damaged(repo, log, f"it does not decompress as {compression} "
                           f"({error})") from None


def _read_full(reader, size: int) -> bytes:
    parts, left = [], size
    while left:
        piece = reader.read(left)
        if not piece:
            break
        parts.append(piece)
        left -= len(piece)
    return b"".join(parts)

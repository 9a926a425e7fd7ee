"""Compression of large logs, with the SHA-256 of both sides taken in the same pass.

gzip is written as a series of independent members, one per 1 MiB block, compressed on
every core at once (the way pigz does it); any gzip reader returns the original bytes.
A block table follows the last member (:mod:`log_archiver.retrieve.blocks`), so a reader
can fetch and check one block without the rest.
DEFLATE comes from libdeflate up to level 6: on log text it is twice as fast as zlib-ng
at the same level, for the same size. Above 6 libdeflate searches far harder than zlib's
levels do (three times zlib-ng's time at 9), so levels 7 to 9 keep zlib-ng. The output
depends only on the input, the level and the library's release, so compressing again
after a crash gives the same bytes and the same checksum. zstd uses the library's own
worker threads. Output goes to a temp file beside the log and is
renamed into place when complete; the original is never touched.

Where the copy goes and what it is called: :mod:`log_archiver.model.copies`.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from pathlib import Path
from stat import S_ISREG

import deflate
from zlib_ng import zlib_ng

from log_archiver.model.block_table import BLOCK_SIZE
from log_archiver.model.copies import compressed_copy_path
from log_archiver.redaction.stream import source_blocks
from log_archiver.retrieve.blocks import TableBuilder
from log_archiver.util.fsutil import atomic_writer, local_error
from log_archiver.util.hashing import bare, remember_digest, sha256_and_size
from log_archiver.util.paths import UnsafePath, confined

MAX_WINDOW = 24  # blocks in flight at most, whatever the workers: memory stays flat
# (libdeflate holds an output buffer of a whole block for each block being compressed)
ZSTD_THREADS = 4  # zstd's own workers each hold a job's buffers
LIBDEFLATE_TOP = 6  # the highest level compressed by libdeflate (see above)


@dataclass(frozen=True)
class StoredFile:
    """The bytes that will be uploaded for one log, and what they stand for."""

    source: Path
    path: Path
    size: int
    sha256: str
    original_size: int
    original_sha256: str
    compression: str | None
    blocks: dict | None = None  # where a gzip copy's block table is (retrieve.blocks)
    redaction: dict | None = None  # the index's record of it; None: redaction was off


def hash_as_is(source: Path, scanner=None, sink=None) -> StoredFile:
    """A log stored as it is: its own checksum twice. With a ``scanner``, read through
    the redactor: a log with findings (``redaction["redacted"]``) cannot be stored as
    it is and must get a copy of its own; the checksums are then of the redacted bytes.
    A ``sink`` (the search index) is fed every block and told the checksum at the end."""
    try:
        if scanner is None and sink is None:
            hex_digest, size = sha256_and_size(source)
            return StoredFile(source, source, size, hex_digest, size, hex_digest, None)
        digest, size = hashlib.sha256(), 0
        with open(source, "rb") as handle:
            before, seen_at = os.fstat(handle.fileno()), time.time_ns()
            blocks = source_blocks(handle, scanner, BLOCK_SIZE)
            for block in blocks:
                digest.update(block)
                if sink is not None:
                    sink.feed(block)
                size += len(block)
            after = os.fstat(handle.fileno())
    except OSError as error:
        raise local_error(error, "read", source) from error
    hex_digest = digest.hexdigest()
    _remember_unredacted(source, before, after, seen_at, blocks.record(), hex_digest)
    if sink is not None:
        sink.done(hex_digest)
    return StoredFile(source, source, size, hex_digest, blocks.bytes_read, hex_digest, None,
                      redaction=blocks.record())


def _remember_unredacted(source: Path, before: os.stat_result, after: os.stat_result,
                         seen_at: int, redaction: dict | None, hex_digest: str) -> None:
    """A log read as it is (nothing redacted) was hashed whole: cleanup may trust that
    checksum while the file stays the same (:func:`.util.hashing.remember_digest`)."""
    if not (redaction or {}).get("redacted"):
        remember_digest(source, before, after, seen_at, hex_digest)


def gzip_member(block: bytes, level: int) -> bytes:
    """One block as a complete gzip member."""
    if level <= LIBDEFLATE_TOP:
        return deflate.gzip_compress(block, level)
    packer = zlib_ng.compressobj(level, zlib_ng.DEFLATED, 31)
    return packer.compress(block) + packer.flush()


def _gzip_member(block: bytes, level: int) -> tuple[bytes, bytes]:
    """The member and its SHA-256."""
    member = gzip_member(block, level)
    return member, hashlib.sha256(member).digest()


class _Output:
    """One compressed file being written: its temp writer and both running digests."""

    def __init__(self, source: Path, target: Path, durable: bool):
        self.source = source
        self.target = target
        self.in_digest = hashlib.sha256()
        self.out_digest = hashlib.sha256()
        self.in_size = 0
        self.out_size = 0
        self.chunks = 0
        self.table = TableBuilder()
        self.redaction = None
        self.read_size: int | None = None  # the log's own size, when redaction changed it
        self.sink = None  # the search index, fed the blocks as they pass (see gzip_many)
        self._context = atomic_writer(target, durable=durable)
        self.handle = self._context.__enter__()

    def write(self, data: bytes) -> None:
        self.handle.write(data)
        self.out_digest.update(data)
        self.out_size += len(data)

    def write_member(self, member: tuple[bytes, bytes]) -> None:
        self.table.member(len(member[0]), member[1])
        self.write(member[0])

    def finish(self) -> StoredFile:
        region, blocks = self.table.finish(self.out_size)
        self.write(region)
        self._context.__exit__(None, None, None)
        return StoredFile(self.source, self.target, self.out_size, self.out_digest.hexdigest(),
                          self.read_size if self.read_size is not None else self.in_size,
                          self.in_digest.hexdigest(), "gzip", blocks=blocks,
                          redaction=self.redaction)

    def abandon(self, error: BaseException) -> None:
        try:
            self._context.__exit__(type(error), error, error.__traceback__)
        except BaseException:
            pass


def gzip_many(sources: list[Path], level: int, pool: Executor, window: int = 0,
              scanner=None, observe=None, durable: bool = True
              ) -> Iterator[tuple[Path, StoredFile | Exception]]:
    """Compress every file with gzip, all blocks of all files sharing the pool (read
    through the redactor when a ``scanner`` is given). ``observe(source)``, when given,
    returns a sink that is fed every block the compressor receives and told the stored
    SHA-256 once the copy is complete (it does its costly part on a thread of its own).

    Yields each source with its result, or with the error that stopped it (the
    original stays, no partial output is left).
    """
    window = window or min(2 * getattr(pool, "_max_workers", 2) + 2, MAX_WINDOW)
    queue: deque[tuple[_Output, Future | None]] = deque()
    failed: dict[Path, Exception] = {}

    def drain_one() -> tuple[Path, StoredFile | Exception] | None:
        output, future = queue.popleft()
        if output.source in failed:
            if future is None:
                return output.source, failed.pop(output.source)
            return None
        try:
            if future is None:
                stored = output.finish()
                if output.sink is not None:
                    output.sink.done(stored.sha256)
                return output.source, stored
            output.write_member(future.result())
        except Exception as error:
            wrapped = local_error(error, "write", output.target) if isinstance(error, OSError) \
                else error
            output.abandon(wrapped)
            if future is None:  # finishing failed (fsync, rename): this file's last word
                return output.source, wrapped
            failed[output.source] = wrapped
        return None

    for source in sources:
        try:
            output = _Output(source, compressed_copy_path(source, "gzip"), durable)
        except Exception as error:
            yield source, error
            continue
        output.sink = observe(source) if observe else None
        try:
            with open(source, "rb") as handle:
                before, seen_at = os.fstat(handle.fileno()), time.time_ns()
                blocks = source_blocks(handle, scanner, BLOCK_SIZE)
                for block in blocks:
                    output.in_digest.update(block)
                    output.table.raw_block(block)
                    if output.sink is not None:
                        output.sink.feed(block)
                    output.in_size += len(block)
                    output.chunks += 1
                    queue.append((output, pool.submit(_gzip_member, block, level)))
                    while len(queue) >= window:
                        if (done := drain_one()) is not None:
                            yield done
                output.redaction, output.read_size = blocks.record(), blocks.bytes_read
                after = os.fstat(handle.fileno())
            _remember_unredacted(source, before, after, seen_at, output.redaction,
                                 output.in_digest.hexdigest())
        except OSError as error:
            wrapped = local_error(error, "read", source)
            output.abandon(wrapped)
            failed[source] = wrapped
        queue.append((output, None))
    while queue:
        if (done := drain_one()) is not None:
            yield done


def zstd_one(source: Path, level: int, threads: int, scanner=None, index_sink=None,
             durable: bool = True) -> StoredFile:
    import zstandard

    target = compressed_copy_path(source, "zstd")
    in_digest, out_digest = hashlib.sha256(), hashlib.sha256()

    class _Hashing:
        def __init__(self, handle):
            self.handle = handle
            self.size = 0

        def write(self, data):
            out_digest.update(data)
            self.size += len(data)
            return self.handle.write(data)

    try:
        with atomic_writer(target, durable=durable) as handle, open(source, "rb") as reader:
            sink = _Hashing(handle)
            packer = zstandard.ZstdCompressor(level=level, threads=threads, write_checksum=True)
            with packer.stream_writer(sink, closefd=False) as writer:
                blocks = source_blocks(reader, scanner, BLOCK_SIZE)
                for block in blocks:
                    in_digest.update(block)
                    if index_sink is not None:
                        index_sink.feed(block)
                    writer.write(block)
    except OSError as error:
        raise local_error(error, "compress", source) from error
    if index_sink is not None:
        index_sink.done(out_digest.hexdigest())
    return StoredFile(source, target, sink.size, out_digest.hexdigest(), blocks.bytes_read,
                      in_digest.hexdigest(), "zstd", redaction=blocks.record())


def copy_matches(path: Path, log: dict) -> bool:
    """Whether the compressed copy at ``path`` holds exactly the bytes that were stored."""
    try:
        if not S_ISREG(os.lstat(path).st_mode):
            return False  # never opened: a FIFO would block, a symlink is not ours
        digest, size = sha256_and_size(path)
    except FileNotFoundError:
        return True  # gone already: nothing to check, nothing to delete
    return size == log["size_bytes"] and digest == bare(log["checksum"])


def remove_replaced_copies(logs_dir: Path, old_logs: list[dict], fresh: list[dict]) -> list[str]:
    """Delete the compressed copies that freshly prepared records no longer name (an older
    release's ``NAME.gz``, or a copy made with another algorithm), each only if it holds
    exactly the bytes its old record recorded; returns the paths removed."""
    own_files = {log["local_path"] for log in old_logs} | {r["local_path"] for r in fresh}
    by_path = {log["local_path"]: log for log in old_logs}
    removed = []
    for record in fresh:
        old = by_path.get(record["local_path"])
        if old is None or not old["compressed"] or old["stored_path"] in own_files \
                or old["stored_path"] == record["stored_path"]:
            continue
        try:
            path = confined(logs_dir, old["stored_path"])
        except UnsafePath:
            continue
        if path.exists() and copy_matches(path, old):
            try:
                path.unlink()
            except OSError:
                continue
            removed.append(old["stored_path"])
    return removed

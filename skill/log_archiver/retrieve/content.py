"""The original content of a stored log, block by block, every block verified.

A block is :data:`~log_archiver.archive.compress.BLOCK_SIZE` bytes of the original
content (the last one shorter). This version downloads the whole object through the
store, checks its SHA-256 against the record's ``checksum`` before anything is yielded,
then decompresses it (gzip members or zstd) or takes it as it is.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from log_archiver.archive.compress import BLOCK_SIZE
from log_archiver.errors import ChecksumMismatchError, StorageError
from log_archiver.util.hashing import bare


def read_blocks(repo, log: dict, wanted: Iterable[int] | None = None
                ) -> Iterator[tuple[int, int, bytes]]:
    """``(block number, lines before the block, original bytes)`` of ``log``'s stored
    object, in order; only the blocks in ``wanted`` when given."""
    chosen = None if wanted is None else set(wanted)
    key = log["remote_path"]
    with tempfile.TemporaryDirectory(prefix="log-archiver-read-") as tmp:
        local = Path(tmp) / "object"
        repo.store.get(key, local)
        digest = hashlib.sha256()
        with open(local, "rb") as handle:
            while piece := handle.read(BLOCK_SIZE):
                digest.update(piece)
        if digest.hexdigest() != bare(log["checksum"]):
            raise ChecksumMismatchError(
                f"stored object {repo.store.url_for(key)} does not match its record: "
                f"sha256:{digest.hexdigest()}, expected {log['checksum']}",
                "nothing of it was used; re-archive the log from a good copy, or restore "
                "the object from a backup")
        lines, last = 0, max(chosen) if chosen else None
        for number, block in enumerate(_blocks(local, log.get("compression"), key)):
            if chosen is None or number in chosen:
                yield number, lines, block
            if last is not None and number >= last:
                return
            lines += block.count(b"\n")


def _blocks(path: Path, compression: str | None, key: str) -> Iterator[bytes]:
    pending, size = [], 0
    for piece in _original(path, compression, key):
        pending.append(piece)
        size += len(piece)
        if size >= BLOCK_SIZE:
            data = b"".join(pending)
            for at in range(0, len(data) - BLOCK_SIZE + 1, BLOCK_SIZE):
                yield data[at:at + BLOCK_SIZE]
            rest = data[len(data) - len(data) % BLOCK_SIZE:]
            pending, size = [rest], len(rest)
    if size:
        yield b"".join(pending)


def _original(path: Path, compression: str | None, key: str) -> Iterator[bytes]:
    try:
        with open(path, "rb") as handle:
            if compression == "gzip":
                from zlib_ng import zlib_ng as zlib

                unpacker = zlib.decompressobj(31)
                while piece := handle.read(BLOCK_SIZE):
                    while piece:
                        yield unpacker.decompress(piece)
                        if unpacker.eof:
                            piece = unpacker.unused_data
                            unpacker = zlib.decompressobj(31)
                        else:
                            piece = b""
            elif compression == "zstd":
                import zstandard

                with zstandard.ZstdDecompressor().stream_reader(handle) as reader:
                    while piece := reader.read(BLOCK_SIZE):
                        yield piece
            else:
                while piece := handle.read(BLOCK_SIZE):
                    yield piece
    except StorageError:
        raise
    except Exception as error:  # zlib.error, zstandard.ZstdError, OSError
        raise StorageError(f"stored object {key} could not be decompressed: {error}",
                           "check the object in the store") from error

"""Reading a stored object back: its size and SHA-256, and whether it decompresses.

One pass over the bytes: they are hashed as the decompressor reads them, so a deep check
costs one read of each object. gzip objects are series of members (each checked against
its CRC-32 and length); zstd objects are frames (each checked against its content
checksum, written by the compressor). The decompressed bytes are hashed too, so an
object that decompresses to anything but the log recorded is caught as well.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

BLOCK = 1 << 20


@dataclass(frozen=True)
class ReadBack:
    size: int
    sha256: str
    # for a compressed object: the decompressed size and SHA-256, or why it failed
    unpacked_size: int | None = None
    unpacked_sha256: str | None = None
    unpack_error: str | None = None


class _Hashing:
    """A file that hashes what is read from it."""

    def __init__(self, handle):
        self.handle = handle
        self.digest = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        data = self.handle.read(size)
        self.digest.update(data)
        self.size += len(data)
        return data

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def readable(self) -> bool:
        return True

    def drain(self) -> None:
        while self.read(BLOCK):
            pass


def read_back(path: Path, compression: str | None) -> ReadBack:
    """What the file at ``path`` (a downloaded object) holds."""
    with open(path, "rb") as handle:
        raw = _Hashing(handle)
        if compression is None:
            raw.drain()
            return ReadBack(raw.size, raw.digest.hexdigest())
        unpacked = hashlib.sha256()
        try:
            size = (_gunzip if compression == "gzip" else _unzstd)(raw, unpacked)
            error = None if raw.size else "the object is empty: no compressed data at all"
        except Exception as failure:  # noqa: BLE001 - every decoder error is a finding
            error = f"{type(failure).__name__}: {failure}"
        raw.drain()
        if error is not None:
            return ReadBack(raw.size, raw.digest.hexdigest(), unpack_error=error)
        return ReadBack(raw.size, raw.digest.hexdigest(), size, unpacked.hexdigest())


def _gunzip(raw: _Hashing, out) -> int:
    """Every gzip member, each checked against its CRC-32 and length."""
    import gzip

    size = 0
    with gzip.GzipFile(fileobj=raw, mode="rb") as reader:
        while block := reader.read(BLOCK):
            out.update(block)
            size += len(block)
    return size


def _unzstd(raw: _Hashing, out) -> int:
    """Every zstd frame, each checked against its content checksum; a frame cut short
    fails (zstandard's stream reader would just stop)."""
    import zstandard

    context = zstandard.ZstdDecompressor()
    frame, started, size = context.decompressobj(), False, 0
    while block := raw.read(BLOCK):
        while block:
            data = frame.decompress(block)
            out.update(data)
            size += len(data)
            started = True
            if frame.eof:
                block, frame, started = frame.unused_data, context.decompressobj(), False
            else:
                block = b""
    if started:
        raise EOFError("the last zstd frame is cut short")
    return size

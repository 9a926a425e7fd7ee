"""SHA-256 of files, read in blocks so memory stays flat."""

from __future__ import annotations

import hashlib
from pathlib import Path

BLOCK_SIZE = 1 << 20


def sha256_file(path: Path | str) -> str:
    return sha256_and_size(path)[0]


def sha256_and_size(path: Path | str) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while block := handle.read(BLOCK_SIZE):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def prefixed(hex_digest: str) -> str:
    """The index form of a checksum: ``sha256:<hex>``."""
    return f"sha256:{hex_digest}"


def bare(checksum: str) -> str:
    """The hex digest of an index checksum (``sha256:<hex>`` or plain hex)."""
    return checksum.split(":", 1)[1] if ":" in checksum else checksum

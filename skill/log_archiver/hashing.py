"""SHA-256 of files, read in blocks so memory stays flat."""

from __future__ import annotations

import hashlib
from pathlib import Path

BLOCK_SIZE = 1 << 20


def sha256_file(path: Path | str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(BLOCK_SIZE):
            digest.update(block)
    return digest.hexdigest()


def prefixed(hex_digest: str) -> str:
    """The index form of a checksum: ``sha256:<hex>``."""
    return f"sha256:{hex_digest}"


def bare(checksum: str) -> str:
    """The hex digest of an index checksum (``sha256:<hex>`` or plain hex)."""
    return checksum.split(":", 1)[1] if ":" in checksum else checksum

"""What each stored object says about the log it holds, so the index can be rebuilt.

Every upload sends these beside the bytes (``x-amz-meta-*`` on S3, a sidecar in the
file:// store): the log's type and path under the logs dir, the original's size and
SHA-256, the compression, and when the log was created. The store also keeps the stored
bytes' own SHA-256 under ``sha256``; the rest is believed only while that one matches the
object, so metadata left over from other bytes never vouches for them.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote, unquote

from log_archiver.model.log_types import FOLDERS
from log_archiver.util.hashing import bare

LOG_TYPE = "log-type"
LOCAL_PATH = "local-path"
ORIGINAL_SHA256 = "original-sha256"
ORIGINAL_SIZE = "original-size"
COMPRESSION = "compression"
CREATED = "created"
STORED_SHA256 = "sha256"


def object_metadata(record: dict) -> dict[str, str]:
    """The metadata to store with the object of one index record (ASCII only)."""
    return {
        LOG_TYPE: record["type"],
        LOCAL_PATH: quote(record["local_path"], safe="/"),
        ORIGINAL_SHA256: bare(record["original_checksum"]),
        ORIGINAL_SIZE: str(record["original_size_bytes"]),
        COMPRESSION: record["compression"] or "none",
        CREATED: record["created"],
    }


def described_log(metadata: Mapping[str, str], sha256: str | None) -> dict | None:
    """The log an object's metadata describes, or None when it is missing or not trusted.

    Returns ``type``, ``local_path``, ``original_sha256``, ``original_size``,
    ``compression`` (None for as-is) and ``created``.
    """
    meta = {str(k).lower(): str(v) for k, v in metadata.items()}
    if sha256 is None or meta.get(STORED_SHA256, "").lower() != sha256:
        return None
    try:
        described = {
            "type": meta[LOG_TYPE],
            "local_path": unquote(meta[LOCAL_PATH]),
            "original_sha256": meta[ORIGINAL_SHA256].lower(),
            "original_size": int(meta[ORIGINAL_SIZE]),
            "compression": None if meta[COMPRESSION] == "none" else meta[COMPRESSION],
            "created": meta.get(CREATED),
        }
    except (KeyError, ValueError):
        return None
    if described["type"] not in FOLDERS or described["compression"] not in (None, "gzip",
                                                                            "zstd"):
        return None
    folder, _, leaf = described["local_path"].partition("/")
    if folder != FOLDERS[described["type"]] or not leaf or "/" in leaf or leaf[0] == ".":
        return None  # a log lives directly in its type's folder; nothing else is believed
    return described

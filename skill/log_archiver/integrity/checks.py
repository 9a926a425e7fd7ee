"""Checking one stored log's object: quickly (a HEAD), or deeply (every byte read back).

A quick check takes the object's size and a SHA-256 from a HEAD, and says where that
SHA-256 came from (its ``proof``):

- ``server_sha256``: the server computed it from the bytes it holds;
- ``store_record``: a store that computes none (``file://``) recorded it when the object
  was written, and the object has not changed since (same size, inode and time);
- ``read_back``: no such checksum exists (an object rewritten since, or one the server
  kept no SHA-256 for although it computes them: not as we wrote it), so the object is
  read back and hashed;
- ``claimed``: only what the writer recorded beside a multipart object (whose server
  checksum is one of part checksums): consistent, but unproven until a deep check.

A deep check downloads the object to a scratch folder, hashes it and decompresses it.
Neither ever writes to the store or the index.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from log_archiver.errors import ArchiveError, ChecksumMismatchError, StorageNotFoundError
from log_archiver.integrity.readback import read_back
from log_archiver.storage import Store
from log_archiver.util.hashing import bare


@dataclass
class Outcome:
    proof: str | None = None
    problems: list[tuple[str, str]] = field(default_factory=list)  # (kind, message)


def quick_check(store: Store, log: dict) -> Outcome:
    key, size, sha256 = log["remote_path"], log["size_bytes"], bare(log["checksum"])
    url = store.url_for(key)
    outcome = Outcome()
    try:
        info = store.head(key)
        if info is None:
            outcome.problems.append(("missing", f"{url} is missing from the store"))
            return outcome
        if info.size != size:
            outcome.problems.append(("wrong_size", f"{url} is {info.size} bytes; the index "
                                     f"records {size}"))
            return outcome
        if info.sha256_by_server and info.sha256 is not None:
            found, outcome.proof = info.sha256, "server_sha256"
        elif info.sha256 is not None and info.composite is not None:
            found, outcome.proof = info.sha256, "claimed"
        elif info.sha256 is not None and not store.capabilities.server_checksums:
            found, outcome.proof = info.sha256, "store_record"
        else:
            read_size, found = store.digest(key)
            outcome.proof = "read_back"
            if read_size != size:
                outcome.problems.append(("wrong_size", f"{url} reads back as {read_size} "
                                         f"bytes; the index records {size}"))
                return outcome
    except StorageNotFoundError:
        outcome.problems.append(("missing", f"{url} is missing from the store"))
        return outcome
    except ArchiveError as error:
        outcome.problems.append(("unreadable", f"{url} could not be checked: {error.message}"))
        return outcome
    if found != sha256:
        source = {"server_sha256": "the server's SHA-256", "claimed": "its recorded SHA-256",
                  "store_record": "the store's record of it", "read_back": "read back"}
        outcome.problems.append(("wrong_checksum", f"{url} has sha256 {found} "
                                 f"({source[outcome.proof]}); the index records {sha256}"))
    return outcome


def deep_check(store: Store, log: dict, scratch: Path) -> Outcome:
    """Read the object back whole: size, SHA-256 and, compressed, that it decompresses to
    the log recorded (``original_size_bytes``, ``original_checksum``)."""
    key, size, sha256 = log["remote_path"], log["size_bytes"], bare(log["checksum"])
    url = store.url_for(key)
    outcome = Outcome(proof="read_back")
    temp = scratch / f"{os.getpid()}-{os.urandom(6).hex()}"
    try:
        try:
            store.get(key, temp)
        except StorageNotFoundError:
            outcome.problems.append(("missing", f"{url} is missing from the store"))
            return outcome
        except ChecksumMismatchError as error:
            # the store says it holds other bytes than it returned: hash what it returns
            read_size, found = store.digest(key)
            kind = "wrong_size" if read_size != size else "wrong_checksum"
            outcome.problems.append((kind, f"{url} reads back as {read_size} bytes sha256 "
                                     f"{found}; the index records {size} bytes sha256 "
                                     f"{sha256} ({error.message})"))
            return outcome
        got = read_back(temp, log["compression"] if log["compressed"] else None)
    except ArchiveError as error:
        outcome.problems.append(("unreadable", f"{url} could not be read back: "
                                 f"{error.message}"))
        return outcome
    finally:
        temp.unlink(missing_ok=True)
    if got.size != size:
        outcome.problems.append(("wrong_size", f"{url} reads back as {got.size} bytes; the "
                                 f"index records {size}"))
    elif got.sha256 != sha256:
        outcome.problems.append(("wrong_checksum", f"{url} reads back with sha256 "
                                 f"{got.sha256}; the index records {sha256}"))
    if got.unpack_error is not None:
        outcome.problems.append(("undecompressable", f"{url} does not decompress as "
                                 f"{log['compression']}: {got.unpack_error}"))
    elif log["compressed"] and (got.unpacked_size, f"sha256:{got.unpacked_sha256}") != (
            log["original_size_bytes"], log["original_checksum"]):
        outcome.problems.append((
            "undecompressable", f"{url} decompresses to {got.unpacked_size} bytes sha256 "
            f"{got.unpacked_sha256}, not to the log recorded ({log['original_size_bytes']} "
            f"bytes, {log['original_checksum']})"))
    return outcome

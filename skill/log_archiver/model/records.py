"""The records the index keeps: an entry per issue, a log record per file.

The one place a log record is built (:func:`prepared_record` for a log about to be
uploaded, :func:`stored_record` for an object found in the store, :func:`given_record`
for one a person hands to ``update-index``) and an entry's totals are derived.

The plan is recorded in the index (every record ``pending``) before anything is
uploaded, so a retry next month keeps the same remote paths and a crash loses nothing.
"""

from __future__ import annotations

from log_archiver.model import keys, states
from log_archiver.util.clock import from_timestamp, now_iso
from log_archiver.util.hashing import prefixed

LOG_FIELDS = (
    "type", "filename", "local_path", "stored_path", "remote_path", "cloud_url", "public_url",
    "size_bytes", "original_size_bytes", "compressed", "compression", "checksum",
    "original_checksum", "created", "duration_seconds", "archived", "upload_status",
    "upload_timestamp", "upload_attempt", "last_error",
)


def new_entry(issue: int, reason: str, storage_url: str, *, title: str | None = None,
              url: str | None = None) -> dict:
    return {
        "issue_number": issue,
        "issue_url": url,
        "issue_title": title,
        "archived_at": now_iso(),
        "archive_reason": reason,
        "logs": [],
        "total_size_bytes": 0,
        "total_original_size_bytes": 0,
        "total_logs": 0,
        "compression_ratio": None,
        "partial_archive": False,
        "upload_complete": True,
        "retry_count": 0,
        "storage_url": storage_url,
        "partial_reason": None,
    }


def recompute_entry(entry: dict) -> dict:
    """Derive the totals and the completion flags from the entry's logs."""
    logs = entry["logs"]
    stored = sum(log["size_bytes"] for log in logs)
    original = sum(log["original_size_bytes"] for log in logs)
    entry["total_logs"] = len(logs)
    entry["total_size_bytes"] = stored
    entry["total_original_size_bytes"] = original
    entry["compression_ratio"] = round(stored / original, 4) if original else None
    entry["retry_count"] = sum(max(log["upload_attempt"] - 1, 0) for log in logs)
    complete = all(states.is_settled(log) for log in logs)  # a tombstone is settled
    entry["upload_complete"] = complete
    entry["partial_archive"] = not complete or bool(entry.get("partial_reason"))
    return entry


def prepared_record(*, log_type: str, local_path: str, stored_path: str, stored_name: str,
                    size: int, original_size: int, compression: str | None, sha256: str,
                    original_sha256: str, mtime: float,
                    duration_seconds: int | None = None, blocks: dict | None = None,
                    redaction: dict | None = None) -> dict:
    """A pending record for a log about to be uploaded; :func:`merge_records` gives it
    its remote path (``stored_name`` until then). ``blocks``: where a gzip copy's block
    table is (:mod:`log_archiver.retrieve.blocks`); absent when it has none.
    ``redaction``: what was redacted, per rule (never the secrets)."""
    record = {
        "type": log_type,
        "filename": local_path.rsplit("/", 1)[-1],
        "local_path": local_path,
        "stored_path": stored_path,
        "remote_path": stored_name,
        "cloud_url": None,
        "public_url": None,
        "size_bytes": size,
        "original_size_bytes": original_size,
        "compressed": compression is not None,
        "compression": compression,
        "checksum": prefixed(sha256),
        "original_checksum": prefixed(original_sha256),
        "created": from_timestamp(mtime),
        "duration_seconds": duration_seconds,
        "archived": None,
        "upload_timestamp": None,
        "upload_attempt": 0,
        "last_error": None,
    }
    if redaction is not None:
        record["redaction"] = redaction
    return states.start(with_blocks(record, blocks))


def with_blocks(record: dict, blocks: dict | None) -> dict:
    """``record`` with its ``blocks`` field when there is a table (else without one)."""
    record.pop("blocks", None)
    if blocks is not None:
        record["blocks"] = dict(blocks)
    return record


def stored_record(*, log_type: str, local_path: str, stored_path: str, key: str, size: int,
                  sha256: str, original_size: int, original_sha256: str,
                  compression: str | None, created: str, stamp: str, status: str,
                  cloud_url: str, public_url: str | None, upload_attempt: int = 1,
                  blocks: dict | None = None, redaction: dict | None = None) -> dict:
    """The record of an object found in the store, in the state the check found."""
    extra = {"redaction": redaction} if redaction is not None else {}
    return states.adopt(with_blocks({
        "type": log_type, "filename": local_path.rsplit("/", 1)[-1], "local_path": local_path,
        "stored_path": stored_path, "remote_path": key, "cloud_url": cloud_url,
        "public_url": public_url, "size_bytes": size, "original_size_bytes": original_size,
        "compressed": compression is not None, "compression": compression,
        "checksum": prefixed(sha256), "original_checksum": prefixed(original_sha256),
        "created": created, "archived": stamp, "upload_timestamp": stamp,
        "upload_attempt": max(1, upload_attempt), "last_error": None, **extra,
    }, blocks), status)


def given_record(record: dict, claimed: str) -> dict:
    """A record a person handed to update-index, completed with the defaults it lacks;
    its claimed state counts only once the store confirms it."""
    log = states.claim(dict(record), claimed)
    for name, default in (("cloud_url", None), ("public_url", None), ("archived", None),
                          ("last_error", None)):
        log.setdefault(name, default)
    log.setdefault("upload_timestamp", log["archived"])
    log.setdefault("upload_attempt", 1 if claimed in states.STORED else 0)
    return log


def merge_records(entry: dict, fresh: list[dict]) -> None:
    """Put freshly prepared records into the entry, keeping each existing remote path.

    A key whose object holds other bytes than a fresh record's is never given to it: the
    stored version is kept (recorded in ``kept_objects``) and the new bytes get a key of
    their own, so no run ever overwrites the only copy of anything.
    """
    folder = keys.remote_folder(entry["issue_number"], entry["archived_at"])
    by_path = {log["local_path"]: log for log in entry["logs"]}
    taken = {log["remote_path"] for log in entry["logs"]}
    taken |= {kept["remote_path"] for kept in entry.get("kept_objects", [])}
    for record in fresh:
        old = by_path.get(record["local_path"])
        name = record["remote_path"]
        if old is not None and states.is_stored(old) and old["checksum"] != record["checksum"]:
            keep_object(entry, old, "replaced_by_newer_version")
            record["remote_path"] = keys.unique_key(folder, name, record["type"], taken)
        elif old is not None:
            taken.discard(old["remote_path"])
            if keys.is_key_for(old["remote_path"], name, record["type"]) \
                    and old["remote_path"] not in taken:
                record["remote_path"] = old["remote_path"]
            else:  # the log now compresses, or no longer: a new object name
                record["remote_path"] = keys.unique_key(folder, name, record["type"], taken)
        else:
            record["remote_path"] = keys.unique_key(folder, name, record["type"], taken)
        if old is not None:
            record["upload_attempt"] = old["upload_attempt"]
        by_path[record["local_path"]] = record
        taken.add(record["remote_path"])
    entry["logs"] = sorted(by_path.values(), key=lambda log: log["local_path"])


def keep_object(entry: dict, log: dict, reason: str, *, remote_path: str | None = None,
                checksum: str | None = None, size: int | None = None) -> None:
    """Record that the object at a key stays in the store though no log points at it."""
    entry.setdefault("kept_objects", []).append({
        "local_path": log["local_path"],
        "remote_path": remote_path or log["remote_path"],
        "checksum": checksum if remote_path else log["checksum"],
        "size_bytes": size if size is not None else log["size_bytes"],
        "reason": reason,
        "kept_at": now_iso(),
    })


def other_key(entry: dict, log: dict) -> str:
    """A key of its own for ``log``, beside every key the entry uses or keeps."""
    folder = log["remote_path"].rsplit("/", 1)[0]
    taken = {other["remote_path"] for other in entry["logs"]}
    taken |= {kept["remote_path"] for kept in entry.get("kept_objects", [])}
    name = keys.base_name(log["remote_path"], log["type"])
    return keys.unique_key(folder, name, log["type"], taken)

"""The upload plan: one index record per log, with the remote path it will live at.

The plan is recorded in the index (every record ``pending``) before anything is
uploaded, so a retry next month keeps the same remote paths and a crash loses nothing.
"""

from __future__ import annotations

from log_archiver.archive.collect import FoundLog
from log_archiver.archive.compress import StoredFile
from log_archiver.util.clock import from_timestamp, now_iso, parse_iso
from log_archiver.util.hashing import prefixed


def remote_folder(issue: int, archived_at: str) -> str:
    moment = parse_iso(archived_at)
    return f"archive/logs/{moment.year:04d}/{moment.month:02d}/{issue}"


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


def _session_seconds(found: FoundLog) -> int | None:
    """Kept in the index so the comment can say it once the log itself is cleaned up."""
    if found.type != "session":
        return None
    from log_archiver.integrations.comment import session_duration

    duration = session_duration(found.path)
    return int(duration.total_seconds()) if duration is not None else None


def log_record(found: FoundLog, stored: StoredFile, logs_dir) -> dict:
    """A pending record; :func:`merge_records` gives it its remote path."""
    return {
        "type": found.type,
        "filename": found.path.name,
        "local_path": found.relative,
        "stored_path": stored.path.relative_to(logs_dir).as_posix(),
        "remote_path": stored.path.name,
        "cloud_url": None,
        "public_url": None,
        "size_bytes": stored.size,
        "original_size_bytes": stored.original_size,
        "compressed": stored.compression is not None,
        "compression": stored.compression,
        "checksum": prefixed(stored.sha256),
        "original_checksum": prefixed(stored.original_sha256),
        "created": from_timestamp(found.mtime),
        "duration_seconds": _session_seconds(found),
        "archived": None,
        "upload_status": "pending",
        "upload_timestamp": None,
        "upload_attempt": 0,
        "last_error": None,
    }


def remote_path_for(entry: dict, record_name: str, log_type: str, taken: set[str]) -> str:
    """``archive/logs/YYYY/MM/N/name``; a name two folders share gets its type in front."""
    folder = remote_folder(entry["issue_number"], entry["archived_at"])
    name = record_name
    if f"{folder}/{name}" in taken:
        name = f"{log_type}-{record_name}"
    return f"{folder}/{name}"


def merge_records(entry: dict, fresh: list[dict]) -> None:
    """Put freshly prepared records into the entry, keeping each existing remote path."""
    by_path = {log["local_path"]: log for log in entry["logs"]}
    taken = {log["remote_path"] for log in entry["logs"]}
    for record in fresh:
        old = by_path.get(record["local_path"])
        if old is not None:
            name = record["remote_path"]
            if old["remote_path"].rsplit("/", 1)[1] == name:
                record["remote_path"] = old["remote_path"]
            else:  # the log now compresses, or no longer: a new object name
                taken.discard(old["remote_path"])
                record["remote_path"] = remote_path_for(entry, name, record["type"], taken)
            record["upload_attempt"] = old["upload_attempt"]
            by_path[record["local_path"]] = record
        else:
            record["remote_path"] = remote_path_for(entry, record["remote_path"], record["type"],
                                                    taken)
            by_path[record["local_path"]] = record
        taken.add(record["remote_path"])
    entry["logs"] = sorted(by_path.values(), key=lambda log: log["local_path"])

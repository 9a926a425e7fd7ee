"""``log-archiver read ISSUE``: an issue's archive record, and finding one of its logs.

Everything here comes from the index, so it is treated as hostile: a path is looked at
on disk only once :func:`log_archiver.util.paths.confined` accepts it.
"""

from __future__ import annotations

import os

from log_archiver.errors import NotArchivedError, UsageError
from log_archiver.model.states import archive_state
from log_archiver.repository import Repository
from log_archiver.util.paths import UnsafePath, confined

STORED_STATES = ("uploaded", "verified", "cleaned")


def find_entry(repo: Repository, issue: int) -> dict:
    entry = repo.index.find(issue)
    if entry is None:
        raise NotArchivedError(f"issue {issue} has no entry in {repo.index.path}",
                               "run `log-archiver list` to see the archived issues")
    return entry


def check_store(repo: Repository, entry: dict) -> None:
    """Logs are read only from the store they were archived to (never guessed at)."""
    url = entry.get("storage_url")
    if url != repo.store.url:
        raise UsageError(
            f"issue {entry['issue_number']} was archived to {url}, not to the configured "
            f"store {repo.store.url}",
            f"pass --storage {url} (or set LOG_ARCHIVER_STORAGE to it)")


def on_disk(repo: Repository, log: dict) -> bool:
    """Whether the log's local file is there (its content is checked only when read)."""
    try:
        return os.path.isfile(confined(repo.logs_dir, log.get("local_path")))
    except UnsafePath:
        return False


# What the record shows of each log, as the index names it.
SHOWN_FIELDS = ("type", "filename", "local_path", "size_bytes", "original_size_bytes",
                "compression", "upload_status", "remote_path", "cloud_url", "public_url",
                "checksum", "original_checksum", "created", "archived")


def log_summary(repo: Repository, log: dict) -> dict:
    present = on_disk(repo, log)
    return {**{name: log.get(name) for name in SHOWN_FIELDS}, "on_disk": present,
            "readable": log.get("upload_status") in STORED_STATES or present,
            "ranged": isinstance(log.get("blocks"), dict)}


def archive_record(repo: Repository, issue: int) -> dict:
    entry = find_entry(repo, issue)
    logs = [log_summary(repo, log) for log in entry.get("logs") or []]
    return {
        "status": "ok", "issue_number": issue, "issue_title": entry.get("issue_title"),
        "issue_url": entry.get("issue_url"), "archived_at": entry.get("archived_at"),
        "archive_reason": entry.get("archive_reason"), "state": archive_state(entry),
        "storage_url": entry.get("storage_url"), "total_logs": len(logs),
        "total_size_bytes": entry.get("total_size_bytes"),
        "total_original_size_bytes": entry.get("total_original_size_bytes"),
        "labels": list(entry.get("labels") or []), "hold": entry.get("hold"),
        "partial_reason": entry.get("partial_reason"), "logs": logs,
    }


def find_log(entry: dict, name: str) -> dict:
    """The log named by its ``local_path``, or by a file name only one of its logs has."""
    logs = entry.get("logs") or []
    for log in logs:
        if log.get("local_path") == name:
            return log
    same = [log for log in logs if log.get("filename") == name]
    if len(same) == 1:
        return same[0]
    issue = entry["issue_number"]
    if same:
        raise UsageError(f"{name!r} names {len(same)} logs of issue {issue}: "
                         f"{', '.join(repr(log['local_path']) for log in same)}",
                         "give the log's local_path instead")
    known = ", ".join(repr(log.get("local_path")) for log in logs[:10]) or "none"
    raise UsageError(f"issue {issue} has no log {name!r} (its logs: {known})",
                     f"run `log-archiver read {issue}` to list them")


def readable(repo: Repository, log: dict) -> None:
    """Refuse a log that has no stored copy and no local file (pending, failed, lost...)."""
    if log.get("upload_status") in STORED_STATES or on_disk(repo, log):
        return
    raise NotArchivedError(
        f"{log.get('local_path')} is {log.get('upload_status')}: the store holds no copy "
        "and no local file is left",
        "run `log-archiver archive ISSUE --retry` on the machine that has the log")

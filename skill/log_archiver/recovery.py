"""Index repairs a person (or an agent) runs by hand after a failure."""

from __future__ import annotations

import json
from pathlib import Path

from .errors import NotArchivedError, UsageError
from .index import STATE_ORDER, ArchiveIndex
from .plan import new_entry
from .timeutil import now_iso


def _find_log(entry: dict, file: str, logs_dir: Path) -> dict:
    wanted = Path(file)
    if wanted.is_absolute():
        try:
            wanted = wanted.relative_to(logs_dir)
        except ValueError:
            pass
    text = wanted.as_posix()
    for log in entry["logs"]:
        if text in (log["local_path"], log["stored_path"], log["filename"],
                    log["remote_path"]):
            return log
    raise UsageError(f"file {file!r} is not among the logs of issue {entry['issue_number']}",
                     f"pick one of: {', '.join(log['local_path'] for log in entry['logs'])}")


def update_file_status(index: ArchiveIndex, issue: int, file: str, status: str,
                       cloud_url: str | None, logs_dir: Path, error: str | None = None) -> dict:
    if status not in STATE_ORDER:
        raise UsageError(f"status {status!r} is not one of {', '.join(STATE_ORDER)}",
                         "use uploaded with the cloud URL, or failed")
    if status in ("verified", "cleaned"):
        raise UsageError(f"status {status!r} is set only after the stored copy is checked",
                         "mark it uploaded; cleanup-local verifies it before deleting anything")
    with index.transaction() as txn:
        entry = txn.entry(issue)
        if entry is None:
            raise NotArchivedError(f"issue {issue} has no entry in {index.path}",
                                   f"run `prepare-upload {issue}` first")
        log = _find_log(entry, file, logs_dir)
        before = log["upload_status"]
        log["upload_status"] = status
        log["upload_timestamp"] = now_iso()
        if status == "uploaded":
            log["cloud_url"] = cloud_url or log["cloud_url"]
            log["archived"] = log["archived"] or log["upload_timestamp"]
            log["last_error"] = None
        elif status == "failed":
            log["last_error"] = error or log["last_error"] or "marked failed by hand"
        txn.touch(issue)
    return {"local_path": log["local_path"], "previous_status": before, "upload_status": status,
            "cloud_url": log["cloud_url"]}


def mark_partial(index: ArchiveIndex, issue: int, reason: str) -> dict:
    with index.transaction() as txn:
        entry = txn.entry(issue)
        if entry is None:
            raise NotArchivedError(f"issue {issue} has no entry in {index.path}",
                                   f"run `prepare-upload {issue}` first")
        entry["partial_reason"] = reason
        txn.touch(issue)
    return {"partial_reason": reason}


def update_index(index: ArchiveIndex, issue: int, metadata, storage_url: str) -> dict:
    """Add or replace the entry of ``issue`` from metadata: an entry, or a list of logs."""
    if isinstance(metadata, dict) and "logs" in metadata:
        entry = {**new_entry(issue, metadata.get("archive_reason", "manual"), storage_url),
                 **metadata}
    elif isinstance(metadata, list):
        entry = new_entry(issue, "manual", storage_url)
        entry["logs"] = metadata
    else:
        raise UsageError("metadata is neither an entry object with logs nor a list of logs",
                         "pass the files list printed by prepare-upload, or an entry object")
    if entry.get("issue_number", issue) != issue:
        raise UsageError(f"metadata is for issue {entry['issue_number']}, not {issue}",
                         "pass the metadata of the issue named on the command line")
    entry["issue_number"] = issue
    with index.transaction() as txn:
        existed = txn.entry(issue) is not None
        txn.put(entry)
    return {"action": "replaced" if existed else "created", "total_logs": entry["total_logs"]}


def load_metadata(text: str, source: str):
    try:
        return json.loads(text)
    except ValueError as error:
        raise UsageError(f"metadata {source} is not JSON ({error})",
                         "pass a JSON file or - for standard input") from None

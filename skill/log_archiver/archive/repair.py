"""Index repairs a person (or an agent) runs by hand after a failure."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from log_archiver.errors import ArchiveError, NotArchivedError, UsageError
from log_archiver.index.file import STATE_ORDER, ArchiveIndex
from log_archiver.storage import Store, verify_record
from log_archiver.util.clock import now_iso
from log_archiver.util.retry import RetryPolicy


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


def update_index(index: ArchiveIndex, issue: int, metadata, storage_url: str, logs_dir: Path,
                 *, store: Store | None = None, policy: RetryPolicy | None = None,
                 workers: int = 4) -> dict:
    """Add or replace the entry of ``issue`` from metadata: an entry, or a list of logs.

    The metadata is checked and completed first (:mod:`.metadata`). A log it claims is
    stored (``uploaded``, ``verified``, ``cleaned``) is recorded so only if its object in
    ``store`` has the recorded size and SHA-256; otherwise it is recorded ``pending``, the
    claim and the reason in ``downgraded``, so ``retry-failed-uploads`` uploads it and
    ``cleanup-local`` never deletes it.
    """
    from log_archiver.archive.repair_input import STORED_CLAIMS, entry_from_metadata

    entry = entry_from_metadata(metadata, issue, storage_url, logs_dir,
                                store.url if store is not None else None)
    claims = [log for log in entry["logs"] if log["upload_status"] in STORED_CLAIMS]
    downgraded = []
    for log, reason in _unverified(claims, store, policy or RetryPolicy(), workers):
        downgraded.append({"local_path": log["local_path"], "claimed": log["upload_status"],
                           "reason": reason})
        log.update(upload_status="pending", last_error=f"claimed {log['upload_status']} "
                   f"by update-index, but {reason}")
    for log in claims:
        if log["upload_status"] != "pending" and store is not None and not log["cloud_url"]:
            log["cloud_url"] = store.url_for(log["remote_path"])
    with index.transaction() as txn:
        existed = txn.entry(issue) is not None
        txn.put(entry)
    return {"status": "partial" if downgraded else "ok",
            "action": "replaced" if existed else "created", "total_logs": entry["total_logs"],
            "downgraded": downgraded}


def _unverified(claims: list[dict], store: Store | None, policy: RetryPolicy,
                workers: int) -> list[tuple[dict, str]]:
    """The logs among ``claims`` whose stored object does not verify, and why."""
    if store is None:
        return [(log, "there is no store to verify it against") for log in claims]

    def check(log: dict) -> str | None:
        try:
            verify_record(store, log, policy)
        except ArchiveError as error:
            return f"its stored copy does not verify: {error.message}"
        return None

    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(claims) or 1))) as pool:
        reasons = list(pool.map(check, claims))
    return [(log, reason) for log, reason in zip(claims, reasons, strict=True) if reason]


def load_metadata(text: str, source: str):
    try:
        return json.loads(text)
    except ValueError as error:
        raise UsageError(f"metadata {source} is not JSON ({error})",
                         "pass a JSON file or - for standard input") from None

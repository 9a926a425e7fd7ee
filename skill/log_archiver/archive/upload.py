"""The file-manager: performs an upload plan through a store, file by file.

Each file is put with its checksum, then verified (:mod:`log_archiver.storage.verify`)
before it counts as ``verified``. Statuses reach the index as the uploads go (at most one
index write a second, and one at the end), so a crash loses at most the last second of
bookkeeping; the next run finds those objects already stored with the same checksum and
moves on.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, wait
from dataclasses import dataclass, field
from pathlib import Path

from log_archiver.errors import (
    ArchiveError,
    LocalFileError,
    NotArchivedError,
    StorageConflictError,
    UsageError,
)
from log_archiver.events import Events
from log_archiver.model import states
from log_archiver.model.holds import held_error, is_held
from log_archiver.model.object_metadata import object_metadata
from log_archiver.model.records import keep_object, other_key
from log_archiver.repository import Repository
from log_archiver.storage import Store, verify_record
from log_archiver.storage.wrappers import retry_tally
from log_archiver.util.clock import now_iso
from log_archiver.util.hashing import bare
from log_archiver.util.paths import check_entry_paths

FLUSH_SECONDS = 1.0


@dataclass
class UploadReport:
    verified: list[str] = field(default_factory=list)
    already_stored: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)  # moved to a key of their own (--force)
    failed: list[dict] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    retries: int = 0


def check_same_store(entry: dict | None, store: Store, *, move: bool = False) -> None:
    """An entry's logs all go to the store it was archived to; ``move`` (``--force``)
    lets a run take the entry to another store."""
    if entry is None or entry.get("storage_url") in (None, store.url):
        return
    issue = entry["issue_number"]
    if move and is_held(entry):
        raise held_error(entry, f"move from {entry['storage_url']} to {store.url}")
    if move:
        only_there = [log["local_path"] for log in entry["logs"]
                      if log["upload_status"] == states.CLEANED]
        if not only_there:
            return
        raise UsageError(
            f"issue {issue} cannot move from {entry['storage_url']} to {store.url}: "
            f"{len(only_there)} of its logs ({', '.join(only_there[:3])}"
            f"{', ...' if len(only_there) > 3 else ''}) exist only in the old store",
            f"keep --storage {entry['storage_url']}: the entry records where each log is, "
            "and those logs cannot be uploaded again from this disk")
    raise UsageError(
        f"issue {issue} was archived to {entry['storage_url']}, but this run's store is "
        f"{store.url}",
        f"pass --storage {entry['storage_url']} (or set LOG_ARCHIVER_STORAGE to it), or move "
        f"the archive with `log-archiver archive {issue} --force --storage {store.url}`")


def wants_upload(record: dict, retry_failed: bool) -> bool:
    return record["upload_status"] in states.UPLOADABLE or (
        retry_failed and record["upload_status"] == states.FAILED)


def _upload_one(store: Store, logs_dir: Path, record: dict,
                elsewhere: Callable[[dict], str] | None) -> tuple[str, int, dict | None]:
    """Store one record's file and verify it; returns the put outcome, the retries, and,
    when a different object held the key and ``elsewhere`` gave the log a key of its own,
    what was left at the old key."""
    sha256 = bare(record["checksum"])
    size = record["size_bytes"]
    key = record["remote_path"]
    local = logs_dir / record["stored_path"]
    moved = None
    with retry_tally() as tally:  # the store retries each call; counted for the report
        if record["upload_status"] != states.UPLOADED:
            if not local.exists():
                try:
                    verify_record(store, record)
                    return "exists", tally.retries, None
                except ArchiveError:
                    pass
                raise LocalFileError(
                    f"local file {local} to upload is missing and {store.url_for(key)} "
                    "does not hold it",
                    "restore the log file, or re-collect with `log-archiver archive ISSUE "
                    "--force`")
            meta = object_metadata(record)
            try:
                outcome = store.put(key, local, sha256=sha256, size=size, metadata=meta)
            except StorageConflictError:
                if elsewhere is None:
                    raise
                there = store.head(key)
                new_key = elsewhere(record)
                moved = {"remote_path": key, "size_bytes": there.size if there else 0,
                         "checksum": f"sha256:{there.sha256}" if there and there.sha256
                         else None, "new_key": new_key}
                record = {**record, "remote_path": new_key}
                outcome = store.put(new_key, local, sha256=sha256, size=size, metadata=meta)
        else:
            outcome = "exists"
        verify_record(store, record, local)
    return outcome, tally.retries, moved


def upload_records(repo: Repository, issue: int, *, local_paths: set[str] | None = None,
                   retry_failed: bool = False, move_on_conflict: bool = False) -> UploadReport:
    """Upload every record of ``issue`` that is not stored yet (or only ``local_paths``).

    A different object already at a log's key is never overwritten: the upload fails
    (``storage_conflict``), or with ``move_on_conflict`` (``--force``) the log is stored
    under a key of its own and the other object is recorded in ``kept_objects``.
    """
    index, store, logs_dir = repo.index, repo.store, repo.logs_dir
    concurrency = repo.config.upload_concurrency
    report = UploadReport()
    entry = index.read_entry(issue)
    check_entry_paths(entry, logs_dir)
    check_same_store(entry, store, move=move_on_conflict)
    todo = [log for log in entry["logs"]
            if wants_upload(log, retry_failed)
            and (local_paths is None or log["local_path"] in local_paths)]
    if not todo:
        return report
    # Largest first: the pool stays full until the end instead of waiting on one big file.
    todo.sort(key=lambda log: log["size_bytes"], reverse=True)
    events = repo.events
    events.emit("files.planned", issue=issue, bytes=sum(log["size_bytes"] for log in todo),
                files=len(todo), step="upload")
    changes: dict[str, dict] = {}
    last_flush = time.monotonic()

    def flush() -> None:
        if not changes:
            return
        with index.transaction() as txn:
            current = txn.edit(issue)
            if current is None:
                raise NotArchivedError(
                    f"the entry of issue {issue} left {index.path} while its logs were being "
                    "uploaded (was the index restored or another branch checked out?)",
                    f"run `log-archiver archive {issue}` again: stored objects are found and "
                    "kept, nothing is uploaded twice")
            for log in current["logs"]:
                update = changes.get(log["local_path"])
                if update is not None and log["checksum"] == update.pop("_checksum"):
                    moved = update.pop("_moved", None)
                    if moved is not None:
                        keep_object(current, log, "other_object_at_key",
                                    remote_path=moved["remote_path"],
                                    checksum=moved["checksum"], size=moved["size_bytes"])
                        update["remote_path"] = moved["new_key"]
                    states.transition(log, update.pop("_status"), **update)
        changes.clear()

    with repo.pool("upload", min(concurrency, len(todo)), most=concurrency) as pool:
        elsewhere = (lambda record: other_key(entry, record)) if move_on_conflict else None
        futures = {pool.submit(_upload_one, store, logs_dir, record, elsewhere): record
                   for record in todo}
        pending = set(futures)
        while pending:
            done, pending = wait(pending, timeout=FLUSH_SECONDS, return_when=FIRST_COMPLETED)
            for future in done:
                record = futures[future]
                changes[record["local_path"]] = _result_update(record, future, store, report)
                if events.listening:
                    _emit_result(events, issue, record, future)
            if time.monotonic() - last_flush >= FLUSH_SECONDS:
                flush()
                last_flush = time.monotonic()
    flush()
    return report


def _emit_result(events: Events, issue: int, record: dict, future) -> None:
    name, size = record["local_path"], record["size_bytes"]
    error = future.exception()
    if error is None:
        moved = future.result()[2]
        events.emit("file.uploaded", issue=issue, path=name, bytes=size,
                    outcome=future.result()[0], checksum=record["checksum"],
                    key=moved["new_key"] if moved else record["remote_path"])
    else:
        events.emit("file.failed", issue=issue, path=name, bytes=size, step="upload",
                    checksum=record["checksum"], key=record["remote_path"],
                    error={"type": getattr(error, "type", "internal"),
                           "message": getattr(error, "message", str(error))})


def _result_update(record: dict, future, store: Store, report: UploadReport) -> dict:
    stamp = now_iso()
    name = record["local_path"]
    update = {"_checksum": record["checksum"], "upload_timestamp": stamp}
    try:
        outcome, retries, moved = future.result()
    except ArchiveError as error:
        retries = getattr(error, "retries", 0)
        report.retries += retries
        report.failed.append({"local_path": name, "remote_path": record["remote_path"],
                              **error.to_dict()})
        update.update(_status=states.FAILED, last_error=error.message,
                      upload_attempt=record["upload_attempt"] + 1 + retries)
        if isinstance(error, StorageConflictError):
            update["last_error"] = f"{error.message} ({error.hint})"
        return update
    report.retries += retries
    (report.already_stored if outcome == "exists" else report.verified).append(name)
    key = record["remote_path"]
    if moved is not None:
        report.replaced.append(name)
        update["_moved"] = moved
        key = moved["new_key"]
    update.update(_status=states.VERIFIED, last_error=None, archived=stamp,
                  cloud_url=store.url_for(key), public_url=store.public_url_for(key),
                  upload_attempt=record["upload_attempt"] + 1 + retries)
    return update

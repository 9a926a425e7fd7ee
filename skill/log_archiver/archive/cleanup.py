"""Freeing local disk: a log is deleted only once its stored copy is verified.

What the index says is not enough (it can be edited, merged, or written by hand with
``update-index``): every log with a local file to delete is verified against the store
(size and SHA-256, one HEAD each, in parallel) just before it goes. Without a store
nothing is deleted.

Before an original is deleted its bytes are hashed again and compared with the checksum
taken when it was archived, so a log that grew after archiving (a session still being
written) is kept, never lost.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from log_archiver.errors import ArchiveError, NotArchivedError
from log_archiver.model import states
from log_archiver.repository import Repository
from log_archiver.storage import verify_record
from log_archiver.util.hashing import bare, sha256_file


@dataclass
class CleanupReport:
    deleted: list[str] = field(default_factory=list)
    kept: list[dict] = field(default_factory=list)
    failed: list[dict] = field(default_factory=list)
    freed_bytes: int = 0


def _original_unchanged(path: Path, log: dict) -> bool:
    stat = path.stat()
    if stat.st_size != log["original_size_bytes"]:
        return False
    return sha256_file(path) == bare(log["original_checksum"])


def cleanup_local(repo: Repository, issue: int, *, only_compressed: bool = False,
                  verify_with_store: bool = True) -> CleanupReport:
    """Delete the local files of every stored log of ``issue``; record them ``cleaned``.

    ``only_compressed`` removes just the compressed copies (a partial archive keeps its
    originals). Each log whose status says it is stored is verified against ``store``
    first, whatever that status is; without a store (``verify_with_store`` false) nothing
    is deleted.
    """
    index, logs_dir, policy = repo.index, repo.logs_dir, repo.policy
    store = repo.store if verify_with_store else None
    dry_run, workers = repo.dry_run, repo.config.workers
    report = CleanupReport()
    entry = index.read_entry(issue)
    new_status: dict[str, str] = {}

    def targets_of(log: dict) -> list[Path]:
        targets = [logs_dir / log["stored_path"]] if log["compressed"] else []
        if not only_compressed:
            targets.append(logs_dir / log["local_path"])
        return targets

    def check(log: dict) -> tuple[dict, str | None, str | None]:
        """(log, status it may be cleaned from, reason to keep it)."""
        status = log["upload_status"]
        if status not in states.STORED:
            return log, None, f"upload status is {status}"
        original = logs_dir / log["local_path"]
        if not only_compressed and original.exists() and not _original_unchanged(original, log):
            return log, None, "changed since it was archived; re-archive it with --force"
        if status != states.UPLOADED and not any(target.exists() for target in targets_of(log)):
            return log, status, None  # nothing left here to lose
        if store is None:
            return log, None, f"upload status is {status}, but no store to verify it against"
        try:
            verify_record(store, log, policy)
        except ArchiveError as error:
            return log, None, f"stored copy not verified: {error.message}"
        return log, states.VERIFIED if status == states.UPLOADED else status, None

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        checked = list(pool.map(check, entry["logs"]))
    # Files go only while the index lock is held and the entry still records them as they
    # were checked: an index restored meanwhile (git checkout) must not lose them.
    with nullcontext() if dry_run else index.transaction() as txn:
        live = entry if txn is None else txn.get(issue)
        if live is None:
            raise NotArchivedError(
                f"the entry of issue {issue} left {index.path} while its local files were "
                "being checked for deletion (was the index restored or another branch "
                "checked out?); nothing was deleted",
                f"run `log-archiver archive {issue}` again: stored objects are found and "
                "kept, nothing is uploaded twice")
        records = {(log["local_path"], log["checksum"], log["upload_status"])
                   for log in live["logs"]}
        _delete(checked, records, targets_of, report, new_status, logs_dir,
                dry_run=dry_run, only_compressed=only_compressed)
        current = {log["local_path"]: log["upload_status"] for log in live["logs"]}
        new_status = {name: s for name, s in new_status.items() if s != current[name]}
        if new_status and txn is not None:
            for log in txn.edit(issue)["logs"]:
                if log["local_path"] in new_status:
                    states.transition(log, new_status[log["local_path"]])
    return report


def _delete(checked, records, targets_of, report, new_status, logs_dir, *, dry_run,
            only_compressed) -> None:
    for log, status, reason in checked:
        name = log["local_path"]
        if reason is None and (name, log["checksum"], log["upload_status"]) not in records:
            reason = "its index record changed while it was checked; run cleanup again"
        if reason is not None:
            report.kept.append({"local_path": name, "reason": reason})
            continue
        for target in targets_of(log):
            try:
                size = target.stat().st_size
            except FileNotFoundError:
                continue
            if dry_run:
                report.freed_bytes += size
                report.deleted.append(target.relative_to(logs_dir).as_posix())
                continue
            try:
                target.unlink()
            except OSError as error:
                report.failed.append({"local_path": name, "path": str(target),
                                      "message": error.strerror or str(error)})
                continue
            report.freed_bytes += size
            report.deleted.append(target.relative_to(logs_dir).as_posix())
        if only_compressed:
            if status != log["upload_status"]:
                new_status[name] = status
        elif not any(f["local_path"] == name for f in report.failed):
            new_status[name] = states.CLEANED
        elif status != log["upload_status"]:
            new_status[name] = status

"""Freeing local disk: a log is deleted only once its stored copy is verified.

What the index says is not enough (it can be edited, merged, or written by hand with
``update-index``): every log with a local file to delete is verified against the store
(size and SHA-256, proved as :mod:`log_archiver.storage.verify` says, in parallel) just
before it goes. Without a store nothing is deleted.

Before an original is deleted its bytes are hashed again and compared with the checksum
taken when it was archived, so a log that grew after archiving (a session still being
written) is kept, never lost. A compressed copy is deleted only when its own bytes hash to
the stored object's checksum: a file of that name that holds anything else is not ours.

Every path is checked first (:mod:`log_archiver.util.paths`): an entry naming a path
outside the logs dir is refused whole, before anything is read or deleted.

``freed_bytes`` counts the logs' own bytes freed (the originals); the compressed copies
removed are counted apart, in ``copies_freed_bytes``.
"""

from __future__ import annotations

import os
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from stat import S_ISREG

from log_archiver.archive.compress import copy_matches
from log_archiver.errors import ArchiveError, NotArchivedError, StorageNotFoundError
from log_archiver.model import states
from log_archiver.redaction.identity import local_digest, was_redacted
from log_archiver.repository import Repository
from log_archiver.storage import verify_record
from log_archiver.util.hashing import bare, remembered_digest
from log_archiver.util.paths import check_entry_paths


@dataclass
class CleanupReport:
    deleted: list[str] = field(default_factory=list)
    kept: list[dict] = field(default_factory=list)
    failed: list[dict] = field(default_factory=list)
    requeued: list[str] = field(default_factory=list)  # stored copy gone; upload again
    lost: list[dict] = field(default_factory=list)     # stored copy gone, no local copy
    freed_bytes: int = 0
    copies_freed_bytes: int = 0


def lost_errors(report: CleanupReport, issue: int) -> list[dict]:
    """One error for each log whose only copy, the stored one, went missing."""
    return [{"type": "storage_not_found", "message": f"{lost['local_path']} is lost: "
             f"{lost['message']}", "retryable": False,
             "hint": f"restore the object at {lost['remote_path']} from another copy of the "
                     f"store, or put the log back under the logs dir and run "
                     f"`log-archiver archive {issue}`; the index records it as lost"}
            for lost in report.lost]


def _original_unchanged(path: Path, log: dict, config=None) -> bool:
    """Its size, and its checksum as the record took it (a redacted log's: redacted again,
    :mod:`log_archiver.redaction.identity`). A log this process hashed whole and that has
    not changed since is not read again (:func:`.util.hashing.remembered_digest`)."""
    stat = path.stat()
    if not S_ISREG(stat.st_mode) or stat.st_size != log["original_size_bytes"]:
        return False
    known = None if was_redacted(log) else remembered_digest(path, stat)
    if known is not None:
        return known == bare(log["original_checksum"])
    return local_digest(path, log, config) == bare(log["original_checksum"])


def cleanup_local(repo: Repository, issue: int, *, only_compressed: bool = False,
                  verify_with_store: bool = True) -> CleanupReport:
    """Delete the local files of every stored log of ``issue``; record them ``cleaned``.

    ``only_compressed`` removes just the compressed copies (a partial archive keeps its
    originals). Each log whose status says it is stored is verified against ``store``
    first, whatever that status is; without a store (``verify_with_store`` false) nothing
    is deleted.
    """
    index, logs_dir = repo.index, repo.logs_dir
    store = repo.store if verify_with_store else None
    dry_run, workers = repo.dry_run, repo.config.workers
    report = CleanupReport()

    def deleted(log: dict, path: Path, size: int, copy: bool) -> None:
        repo.events.emit("file.deleted", issue=issue, path=path.relative_to(logs_dir).as_posix(),
                         bytes=size, checksum=log["checksum" if copy else "original_checksum"],
                         local_path=log["local_path"])

    entry = index.read_entry(issue)
    check_entry_paths(entry, logs_dir)
    new_status: dict[str, str] = {}
    # a name that is another log's own file (a person's NAME.gz) is never a copy of ours
    own_files = {log["local_path"] for log in entry["logs"]}

    def copy_of(log: dict) -> Path | None:
        if not log["compressed"] or log["stored_path"] in own_files:
            return None
        return logs_dir / log["stored_path"]

    def _all_local(log: dict) -> list[Path]:
        copy = copy_of(log)
        return [logs_dir / log["local_path"], *([copy] if copy is not None else [])]

    def targets_of(log: dict) -> list[Path]:
        copy = copy_of(log)
        targets = [copy] if copy is not None else []
        if not only_compressed:
            targets.append(logs_dir / log["local_path"])
        return targets

    identities: dict[str, dict[Path, tuple]] = {}

    def check(log: dict) -> tuple[dict, str | None, str | None]:
        """(log, status it may be cleaned from, reason to keep it)."""
        status = log["upload_status"]
        if status not in states.STORED:
            return log, None, f"upload status is {status}"
        # taken before anything is hashed: a file written to after this is not deleted
        identities[log["local_path"]] = {target: identity
                                         for target in targets_of(log)
                                         if (identity := _identity(target)) is not None}
        original = logs_dir / log["local_path"]
        if not only_compressed and original.exists() and not _original_unchanged(original, log,
                                                                              repo.config):
            return log, None, (f"changed since it was archived; kept: `log-archiver archive "
                               f"{issue} --force` archives the new version under a key of its "
                               "own, and the stored version is kept")
        copy = copy_of(log)
        if copy is not None and not copy_matches(copy, log):
            return log, None, (f"{log['stored_path']} does not hold the bytes stored for it "
                               "(not the compressed copy made by archive): nothing deleted")
        local_left = [target for target in _all_local(log) if target.exists()]
        if status == states.CLEANED and not local_left:
            return log, status, None  # nothing left here to lose
        if store is None:
            return log, None, f"upload status is {status}, but no store to verify it against"
        try:
            verify_record(store, log, logs_dir / log["stored_path"])
        except StorageNotFoundError as error:
            return log, states.PENDING if local_left else states.LOST, error.message
        except ArchiveError as error:
            return log, None, f"stored copy not verified: {error.message}"
        return log, states.VERIFIED if status == states.UPLOADED else status, None

    with repo.pool("cleanup", workers) as pool:
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
        for log, status, reason in checked:
            if reason is None and status not in (states.PENDING, states.LOST) and (
                    log["local_path"], log["checksum"], log["upload_status"]) not in records:
                reason = "its index record changed while it was checked; run cleanup again"
            _settle(log, status, reason, copy_of(log), targets_of(log), report, new_status,
                    logs_dir, identities.get(log["local_path"], {}), dry_run=dry_run,
                    only_compressed=only_compressed, deleted=deleted)
        current = {log["local_path"]: log["upload_status"] for log in live["logs"]}
        new_status = {name: s for name, s in new_status.items() if s != current.get(name)}
        if new_status and txn is not None:
            _record(txn.edit(issue), new_status)
    return report


def _identity(path: Path) -> tuple | None:
    try:
        stat = os.lstat(path)
    except FileNotFoundError:
        return None
    return stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns


def _settle(log: dict, status: str | None, reason: str | None, copy: Path | None,
            targets: list[Path], report: CleanupReport, new_status: dict, logs_dir: Path,
            checked: dict[Path, tuple], *, dry_run: bool, only_compressed: bool,
            deleted=lambda log, path, size, copy: None) -> None:
    """Delete one checked log's local files (or say why not) and note its new state."""
    name = log["local_path"]
    if status in (states.PENDING, states.LOST):  # the stored copy vanished
        new_status[name] = status
        if status == states.PENDING:
            report.requeued.append(name)
            report.kept.append({"local_path": name, "reason": f"stored copy not verified: "
                                f"{reason}; the local copy is kept and the log goes back "
                                "to be uploaded"})
        else:
            report.lost.append({"local_path": name, "remote_path": log["remote_path"],
                                "message": f"{reason}, and no local copy is left"})
        return
    if reason is not None:
        report.kept.append({"local_path": name, "reason": reason})
        return
    changed = False
    for target in targets:
        try:
            size = target.stat().st_size
        except FileNotFoundError:
            continue
        if _identity(target) != checked.get(target):
            changed = True  # written to (or replaced) after it was checked: not ours to drop
            report.kept.append({"local_path": name, "reason": f"{target.name} changed while "
                                "it was checked; run cleanup again"})
            continue
        if not dry_run:
            try:
                target.unlink()
            except OSError as error:
                report.failed.append({"local_path": name, "path": str(target),
                                      "message": error.strerror or str(error)})
                continue
            deleted(log, target, size, target == copy)
        if target == copy:
            report.copies_freed_bytes += size
        else:
            report.freed_bytes += size
        report.deleted.append(target.relative_to(logs_dir).as_posix())
    if only_compressed:
        if status != log["upload_status"]:
            new_status[name] = status
    elif not changed and not any(f["local_path"] == name for f in report.failed):
        new_status[name] = states.CLEANED
    elif status != log["upload_status"]:
        new_status[name] = status


def _record(entry: dict, new_status: dict[str, str]) -> None:
    for log in entry["logs"]:
        after = new_status.get(log["local_path"])
        if after == states.LOST:
            states.transition(log, after, last_error="lost: the stored copy is missing and "
                              "no local copy is left")
        elif after == states.PENDING:
            states.transition(log, after, cloud_url=None, public_url=None,
                              last_error="the stored copy went missing after it was "
                              "verified; to be uploaded again")
        elif after is not None:
            states.transition(log, after)

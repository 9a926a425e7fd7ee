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
    job = _IssueCleanup(repo, issue, only_compressed=only_compressed,
                        store=repo.store if verify_with_store else None)
    with repo.pool("cleanup", repo.config.workers) as pool:
        job.checked = list(pool.map(job.check, job.entry["logs"]))
    with nullcontext() if repo.dry_run else repo.index.transaction() as txn:
        job.apply(txn)
    return job.report


def cleanup_issues(repo: Repository, issues: dict[int, bool]
                   ) -> dict[int, CleanupReport | ArchiveError]:
    """:func:`cleanup_local` of several issues (``{issue: only_compressed}``) as one step:
    every log checked in one pool, every file deleted and recorded in one index
    transaction. An issue that cannot be cleaned gets its error; the others go on. When
    the shared transaction fails, nothing of it is recorded and each issue is cleaned up
    on its own (:func:`cleanup_local` records as cleaned what the step already deleted,
    once its stored copy is verified again)."""
    outcomes: dict[int, CleanupReport | ArchiveError] = {}
    jobs = []
    for issue, only_compressed in issues.items():
        try:
            jobs.append(_IssueCleanup(repo, issue, only_compressed=only_compressed,
                                      store=repo.store))
        except ArchiveError as error:
            outcomes[issue] = error

    def check(pair):
        job, log = pair
        try:
            return job.check(log)
        except ArchiveError as error:
            return error

    pairs = [(job, log) for job in jobs for log in job.entry["logs"]]
    with repo.pool("cleanup", repo.config.workers) as pool:
        checked = list(pool.map(check, pairs))
    for job in jobs:
        found = [one for (owner, _), one in zip(pairs, checked, strict=True) if owner is job]
        failed = [one for one in found if isinstance(one, ArchiveError)]
        if failed:
            outcomes[job.issue] = failed[0]
        job.checked = found
    jobs = [job for job in jobs if job.issue not in outcomes]
    try:
        if jobs:
            with nullcontext() if repo.dry_run else repo.index.transaction() as txn:
                for job in jobs:
                    job.apply(txn)
    except ArchiveError:
        for job in jobs:
            try:
                alone = cleanup_local(repo, job.issue, only_compressed=job.only_compressed)
            except ArchiveError as error:
                outcomes[job.issue] = error
                continue
            # what the failed step deleted is gone all the same: it is reported
            alone.deleted[:0] = job.report.deleted
            alone.failed[:0] = job.report.failed
            alone.freed_bytes += job.report.freed_bytes
            alone.copies_freed_bytes += job.report.copies_freed_bytes
            outcomes[job.issue] = alone
    for job in jobs:
        outcomes.setdefault(job.issue, job.report)
    return {issue: outcomes[issue] for issue in issues}


class _IssueCleanup:
    """One issue's logs: checked for deletion outside the index lock (:meth:`check`, in
    any thread), then deleted and recorded inside a transaction (:meth:`apply`)."""

    def __init__(self, repo: Repository, issue: int, *, only_compressed: bool, store):
        self.repo, self.issue, self.only_compressed, self.store = \
            repo, issue, only_compressed, store
        self.logs_dir = repo.logs_dir
        self.report = CleanupReport()
        self.entry = repo.index.read_entry(issue)
        check_entry_paths(self.entry, self.logs_dir)
        # a name that is another log's own file (a person's NAME.gz) is never a copy of ours
        self.own_files = {log["local_path"] for log in self.entry["logs"]}
        self.identities: dict[str, dict[Path, tuple]] = {}
        self.checked: list[tuple[dict, str | None, str | None]] = []

    def deleted(self, log: dict, path: Path, size: int, copy: bool) -> None:
        self.repo.events.emit("file.deleted", issue=self.issue,
                              path=path.relative_to(self.logs_dir).as_posix(), bytes=size,
                              checksum=log["checksum" if copy else "original_checksum"],
                              local_path=log["local_path"])

    def copy_of(self, log: dict) -> Path | None:
        if not log["compressed"] or log["stored_path"] in self.own_files:
            return None
        return self.logs_dir / log["stored_path"]

    def _all_local(self, log: dict) -> list[Path]:
        copy = self.copy_of(log)
        return [self.logs_dir / log["local_path"], *([copy] if copy is not None else [])]

    def targets_of(self, log: dict) -> list[Path]:
        copy = self.copy_of(log)
        targets = [copy] if copy is not None else []
        if not self.only_compressed:
            targets.append(self.logs_dir / log["local_path"])
        return targets

    def check(self, log: dict) -> tuple[dict, str | None, str | None]:
        """(log, status it may be cleaned from, reason to keep it)."""
        issue, logs_dir, store = self.issue, self.logs_dir, self.store
        status = log["upload_status"]
        if status not in states.STORED:
            return log, None, f"upload status is {status}"
        # taken before anything is hashed: a file written to after this is not deleted
        self.identities[log["local_path"]] = {target: identity
                                              for target in self.targets_of(log)
                                              if (identity := _identity(target)) is not None}
        original = logs_dir / log["local_path"]
        if not self.only_compressed and original.exists() and not _original_unchanged(
                original, log, self.repo.config):
            return log, None, (f"changed since it was archived; kept: `log-archiver archive "
                               f"{issue} --force` archives the new version under a key of its "
                               "own, and the stored version is kept")
        copy = self.copy_of(log)
        if copy is not None and not copy_matches(copy, log):
            return log, None, (f"{log['stored_path']} does not hold the bytes stored for it "
                               "(not the compressed copy made by archive): nothing deleted")
        local_left = [target for target in self._all_local(log) if target.exists()]
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

    def apply(self, txn) -> None:
        """Delete what :meth:`check` cleared, inside ``txn`` (None in a dry run)."""
        # Files go only while the index lock is held and the entry still records them as
        # they were checked: an index restored meanwhile (git checkout) must not lose them.
        issue = self.issue
        live = self.entry if txn is None else txn.get(issue)
        if live is None:
            raise NotArchivedError(
                f"the entry of issue {issue} left {self.repo.index.path} while its local files "
                "were being checked for deletion (was the index restored or another branch "
                "checked out?); nothing was deleted",
                f"run `log-archiver archive {issue}` again: stored objects are found and "
                "kept, nothing is uploaded twice")
        records = {(log["local_path"], log["checksum"], log["upload_status"])
                   for log in live["logs"]}
        new_status: dict[str, str] = {}
        for log, status, reason in self.checked:
            if reason is None and status not in (states.PENDING, states.LOST) and (
                    log["local_path"], log["checksum"], log["upload_status"]) not in records:
                reason = "its index record changed while it was checked; run cleanup again"
            _settle(log, status, reason, self.copy_of(log), self.targets_of(log), self.report,
                    new_status, self.logs_dir, self.identities.get(log["local_path"], {}),
                    dry_run=self.repo.dry_run, only_compressed=self.only_compressed,
                    deleted=self.deleted)
        current = {log["local_path"]: log["upload_status"] for log in live["logs"]}
        new_status = {name: s for name, s in new_status.items() if s != current.get(name)}
        if new_status and txn is not None:
            _record(txn.edit(issue), new_status)


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

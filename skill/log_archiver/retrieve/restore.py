"""``log-archiver restore``: write archived logs back where they were (or under ``--to``).

Each log is streamed from :func:`log_archiver.retrieve.content.read_blocks` (verified
before anything is written) into a temp file beside its target, hashed again as it is
written, synced, and renamed over the target only when it matches the recorded original
checksum: a failure leaves no file and no temp file behind. Targets come from the
index's ``local_path``, so each is confined to the target folder first.

A target that already holds the original is left as it is (``unchanged``); one holding
anything else is kept unless ``force``. The index records nothing new: the logs stay
``cleaned``, and a later ``cleanup-local`` frees them again.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from log_archiver.errors import ArchiveError, LocalFileError, UsageError
from log_archiver.repository import Repository
from log_archiver.retrieve.content import read_original
from log_archiver.retrieve.record import check_store, find_entry, find_log, readable
from log_archiver.util.fsutil import fsync_dir, local_error
from log_archiver.util.hashing import bare, sha256_file
from log_archiver.util.paths import UnsafePath, confined


def restore(repo: Repository, issue: int, *, to: Path | None = None,
            files: tuple[str, ...] = (), force: bool = False) -> dict:
    entry = find_entry(repo, issue)
    check_store(repo, entry)
    root = Path(to).absolute() if to is not None else repo.logs_dir
    if not root.is_dir():
        raise UsageError(f"folder {root} to restore into does not exist",
                         "create it first, or leave --to out to restore into the logs dir")
    logs = [find_log(entry, name) for name in files] if files else list(entry.get("logs") or [])
    result: dict = {"issue_number": issue, "target_dir": str(root), "restored": [],
                    "unchanged": [], "kept": [], "failed": [], "restored_bytes": 0}
    errors = []
    for log in {id(log): log for log in logs}.values():
        try:
            _restore_one(repo, issue, log, root, force, result)
        except ArchiveError as error:
            result["failed"].append({"local_path": str(log.get("local_path")),
                                     "message": error.message})
            errors.append({**error.to_dict(), "file": str(log.get("local_path"))})
    # a kept file (other content there, no --force) is not restored: partial
    status = "error" if errors else "partial" if result["kept"] \
        else "ok" if result["restored"] else "noop"
    return {"status": status, **result, "errors": errors}


def _target(root: Path, log: dict) -> Path:
    try:
        return confined(root, log.get("local_path"))
    except UnsafePath as error:
        raise UsageError(f"the index names {error.path!r} for a log of this issue, which "
                         f"{error.reason}; nothing was written for it",
                         "fix the entry's local_path (`log-archiver archive ISSUE "
                         "--reindex-only` rebuilds it)") from None


def _restore_one(repo: Repository, issue: int, log: dict, root: Path, force: bool,
                 result: dict) -> None:
    target = _target(root, log)
    name = str(log["local_path"])
    expected = bare(str(log.get("original_checksum")))
    if os.path.lexists(target):
        if not os.path.isfile(target) or os.path.islink(target):
            result["kept"].append({"local_path": name, "reason": "not a regular file there"})
            return
        try:
            same = sha256_file(target) == expected
        except OSError as error:
            raise local_error(error, "read", target) from error
        if same:
            result["unchanged"].append(name)
            return
        if not force:
            result["kept"].append({"local_path": name, "reason": "a file with other content "
                                   "is there (pass --force to replace it)"})
            return
    readable(repo, log)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        confined(root, name)  # again, now the folders exist: no symlink was slipped in
    except UnsafePath as error:
        raise UsageError(f"{name!r} {error.reason}; nothing was written",
                         "remove the symlink from the target folder") from None
    except OSError as error:
        raise local_error(error, "create", target.parent) from error
    size = _write_verified(repo, log, target, expected)
    result["restored"].append(name)
    result["restored_bytes"] += size
    repo.events.emit("file.restored", issue=issue, path=name, bytes=size,
                     checksum=log.get("original_checksum"), target=str(target))


def _write_verified(repo: Repository, log: dict, target: Path, expected: str) -> int:
    temp = target.with_name(f".la-restore-{os.getpid()}-{os.urandom(4).hex()}.part")
    digest, size = hashlib.sha256(), 0
    try:
        try:
            with open(temp, "xb") as out:
                for raw in read_original(repo, log):
                    out.write(raw)
                    digest.update(raw)
                    size += len(raw)
                out.flush()
                os.fsync(out.fileno())
        except OSError as error:
            raise local_error(error, "write", target) from error
        if digest.hexdigest() != expected or size != log.get("original_size_bytes"):
            raise LocalFileError(
                f"{target} came out as {size} bytes sha256 {digest.hexdigest()}, the index "
                f"records {log.get('original_size_bytes')} bytes sha256 {expected}; "
                "nothing was written", "run the restore again; if it fails the same way, "
                "the record does not describe the stored copy")
        os.replace(temp, target)
        fsync_dir(target.parent)
        return size
    finally:
        temp.unlink(missing_ok=True)

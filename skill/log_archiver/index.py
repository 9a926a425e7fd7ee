"""The archive index: ``<logs_dir>/.archive-index.json``.

Every write is a transaction: take the lock, read, change, validate, write a temp file
beside the index, fsync, rename over, fsync the folder. While it runs, the previous
version is kept as a hard link (``.archive-index.json.backup``; no copy is made) and put
back if anything fails. A corrupt or schema-invalid index is never overwritten.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import IndexCorruptError, IndexLockTimeout
from .fsutil import fsync_dir, local_error, write_bytes_atomic
from .timeutil import now_iso

SCHEMA_VERSION = 1
STATE_ORDER = ("pending", "retrying", "failed", "uploaded", "verified", "cleaned")
STORED_STATES = frozenset({"uploaded", "verified", "cleaned"})


def empty_index() -> dict:
    return {"schema_version": SCHEMA_VERSION, "last_updated": now_iso(), "archives": []}


def sort_archives(archives: list[dict]) -> list[dict]:
    return sorted(archives, key=lambda entry: entry["issue_number"], reverse=True)


def find_entry(doc: dict, issue: int) -> dict | None:
    for entry in doc["archives"]:
        if entry["issue_number"] == issue:
            return entry
    return None


def put_entry(doc: dict, entry: dict) -> None:
    """Insert or replace the entry for its issue, keeping the archives sorted."""
    recompute_entry(entry)
    others = [e for e in doc["archives"] if e["issue_number"] != entry["issue_number"]]
    doc["archives"] = sort_archives([*others, entry])


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
    complete = all(log["upload_status"] in STORED_STATES for log in logs)
    entry["upload_complete"] = complete
    entry["partial_archive"] = not complete or bool(entry.get("partial_reason"))
    return entry


def dumps(doc: dict) -> bytes:
    return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def validate_document(doc, source: Path | str = "index") -> None:
    """Raise :class:`IndexCorruptError` naming the first violation of the schema."""
    from .schemas import SchemaViolation, validate

    try:
        validate("index", doc)
    except SchemaViolation as violation:
        raise IndexCorruptError(
            f"archive index {source} breaks its schema at {violation.path}: {violation.detail}",
            f"run `log-archiver validate-index {source}` for every problem, then fix the file "
            "or restore it from git; it was left untouched",
        ) from None
    issues = [entry["issue_number"] for entry in doc["archives"]]
    if len(set(issues)) != len(issues):
        raise IndexCorruptError(f"archive index {source} lists an issue twice",
                                f"run `log-archiver validate-index {source}` and merge the entries")


class ArchiveIndex:
    def __init__(self, path: Path, lock_timeout: float = 120.0):
        self.path = Path(path)
        self.backup_path = self.path.with_name(self.path.name + ".backup")
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self.lock_timeout = lock_timeout

    def read(self) -> dict:
        """The current index (an empty one when there is none yet), validated."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return empty_index()
        except OSError as error:
            raise local_error(error, "read", self.path) from error
        try:
            doc = json.loads(raw)
        except ValueError as error:
            raise IndexCorruptError(
                f"archive index {self.path} is not valid JSON ({error})",
                self._restore_hint(),
            ) from None
        validate_document(doc, self.path)
        return doc

    def read_entry(self, issue: int) -> dict:
        from .errors import NotArchivedError

        entry = find_entry(self.read(), issue)
        if entry is None:
            raise NotArchivedError(f"issue {issue} has no entry in {self.path}",
                                   f"run `prepare-upload {issue}` or `archive {issue}` first")
        return entry

    def _restore_hint(self) -> str:
        if self.backup_path.exists():
            return (f"it was left untouched; compare it with the backup {self.backup_path} "
                    f"or restore it from git (`git checkout -- {self.path.name}`)")
        return ("it was left untouched; restore it from git "
                f"(`git checkout -- {self.path.name}`) or fix the JSON by hand")

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the index lock (for a transaction, or to commit a stable index)."""
        from filelock import FileLock, Timeout

        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise local_error(error, "create", self.path.parent) from error
        lock = FileLock(str(self.lock_path), timeout=self.lock_timeout)
        try:
            lock.acquire()
        except Timeout:
            raise IndexLockTimeout(
                f"archive index {self.path} stayed locked for {self.lock_timeout:.0f} s",
                "another archive run holds it; wait for it to finish and run again",
            ) from None
        except OSError as error:
            raise local_error(error, "lock", self.lock_path) from error
        try:
            yield
        finally:
            lock.release()

    @contextmanager
    def transaction(self) -> Iterator[IndexTransaction]:
        """Yield the index to change; on a clean exit the changes are validated and written."""
        with self.locked():
            txn = IndexTransaction(self.read())
            yield txn
            if not txn.changed:
                return
            doc = txn.doc
            for issue in txn.changed:
                entry = find_entry(doc, issue)
                if entry is not None:
                    recompute_entry(entry)
            doc["archives"] = sort_archives(doc["archives"])
            doc["last_updated"] = now_iso()
            validate_document(doc, f"{self.path} (as changed, not written)")
            self._write(dumps(doc))

    def _write(self, data: bytes) -> None:
        had_index = self.path.exists()
        if had_index:
            self.backup_path.unlink(missing_ok=True)
            os.link(self.path, self.backup_path)
        try:
            write_bytes_atomic(self.path, data)
        except BaseException:
            if had_index and not self.path.exists():
                os.replace(self.backup_path, self.path)
            raise
        if had_index:
            self.backup_path.unlink(missing_ok=True)
            fsync_dir(self.path.parent)


class IndexTransaction:
    """The index being changed, and which issues the change touched."""

    def __init__(self, doc: dict):
        self.doc = doc
        self.changed: set[int] = set()

    def entry(self, issue: int) -> dict | None:
        return find_entry(self.doc, issue)

    def put(self, entry: dict) -> None:
        put_entry(self.doc, entry)
        self.changed.add(entry["issue_number"])

    def touch(self, issue: int) -> None:
        """Record that the entry of ``issue`` was changed in place."""
        self.changed.add(issue)

    def remove(self, issue: int) -> None:
        self.doc["archives"] = [e for e in self.doc["archives"] if e["issue_number"] != issue]
        self.changed.add(issue)

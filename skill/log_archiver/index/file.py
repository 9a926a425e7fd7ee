"""The archive index: ``<logs_dir>/.archive-index.json``.

Every write is a transaction: take the lock, read, change, validate, write a temp file
beside the index, fsync, rename over, fsync the folder. While it runs, the previous
version is kept as a hard link (``.archive-index.json.backup``; no copy is made) and put
back if anything fails. A corrupt or schema-invalid index is never overwritten.

An index of 10,000 issues is tens of megabytes, and validating all of it takes longer
than a whole archive should, so the work is not repeated when the bytes are known:

- Within a process, a read of the file last read or written returns the document
  already parsed (see ``ArchiveIndex._hold`` for why that check is exact).
- Across processes, ``.archive-index.json.valid`` records which file this tool last
  wrote or validated (device, inode, size, times, and SHA-256 when it was read), with a
  stamp of the schema; that file is not validated again. Anything else (a hand edit, a
  merge, a checkout) is validated whole.
- A transaction validates what it changed: the entries it touched and the document's
  frame (version, order, one entry per issue). The rest was valid when it was read.
"""

from __future__ import annotations

import hashlib
import os
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import orjson

from log_archiver.errors import IndexCorruptError, IndexLockTimeout
from log_archiver.model.records import recompute_entry
from log_archiver.util.clock import now_iso
from log_archiver.util.fsutil import (
    local_error,
    remove_stale_temps_in,
    write_bytes_atomic,
    write_parts_atomic,
)
from log_archiver.util.hashing import file_identity

SCHEMA_VERSION = 1


def empty_index() -> dict:
    return {"schema_version": SCHEMA_VERSION, "last_updated": now_iso(), "archives": []}


def sort_archives(archives: list[dict]) -> list[dict]:
    return sorted(archives, key=lambda entry: entry["issue_number"], reverse=True)


def copied(entry: dict | None) -> dict | None:
    """A private copy of an entry: what readers get, so no caller changes the cache."""
    return None if entry is None else orjson.loads(orjson.dumps(entry))


def dumps(doc: dict) -> bytes:
    """The index as written: two-space indented UTF-8 JSON and a final newline."""
    from log_archiver.index.layout import dumps as dump_layout

    return dump_layout(doc)


def loads(raw: bytes):
    """Bytes this tool wrote or already validated (others go through :func:`load_index_bytes`)."""
    return orjson.loads(raw)


def _corrupt(source, problems: list[dict], hint: str | None = None) -> IndexCorruptError:
    first = problems[0]
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    if first["rule"] == "json":
        message = f"archive index {source} is {first['message']}"
    else:
        message = (f"archive index {source} breaks the rule {first['rule']!r} at "
                   f"{first['path']}: {first['message']}{more}")
    return IndexCorruptError(message, hint or (
        f"run `log-archiver validate-index {source}` for every problem, then fix the file "
        "or restore it from git; it was left untouched"))


def load_index_bytes(raw: bytes, source: Path | str = "index", hint: str | None = None) -> dict:
    """The index ``raw`` holds, judged as ``validate-index`` judges it (strict JSON, the
    schema and every rule), or :class:`IndexCorruptError` naming the first problem."""
    from log_archiver.index.rules import check_index_bytes

    doc, problems = check_index_bytes(raw)
    if problems:
        raise _corrupt(source, problems, hint if problems[0]["rule"] == "json" else None)
    return doc


def validate_document(doc, source: Path | str = "index") -> None:
    """Raise :class:`IndexCorruptError` naming the first violation of the schema or rules."""
    from log_archiver.index.rules import validate_index_document

    problems = validate_index_document(doc)
    if problems:
        raise _corrupt(source, problems)


def _schema_error(source, violation) -> IndexCorruptError:
    return _corrupt(source, [{"path": violation.path, "rule": "schema",
                              "message": violation.detail}])


def validate_changes(document, changed: set[int], source: Path | str = "index") -> None:
    """Validate a document whose entries were valid except, maybe, those of ``changed``:
    the frame, and each changed entry against the schema and the rules of one entry (an
    object lies in its own issue's folder, so no other entry can claim it)."""
    from log_archiver.index.rules import entry_problems
    from log_archiver.util.schemas import SchemaViolation, validate

    issues = document.issues()
    try:
        validate("index", {"schema_version": document.schema_version,
                           "last_updated": document.last_updated, "archives": []})
        for issue in changed:
            entry = document.find(issue)
            if entry is not None:
                validate("entry", entry)
                problems = entry_problems(entry, f"$.archives[{issues.index(issue)}]")
                if problems:
                    raise _corrupt(source, problems)
    except SchemaViolation as violation:
        raise _schema_error(source, violation) from None
    _check_issues_unique(issues, source)


def _check_issues_unique(issues: list[int], source) -> None:
    if len(set(issues)) != len(issues):
        raise IndexCorruptError(f"archive index {source} lists an issue twice",
                                f"run `log-archiver validate-index {source}` and merge the entries")


def _identity_text(identity: tuple) -> str:
    return ":".join(map(str, identity))


@cache
def _validation_stamp() -> str:
    """Names the rules bytes were validated under: a new schema, rule or parser invalidates
    old records (the sources of the rules and of the strict reader count too)."""
    from log_archiver import __version__
    from log_archiver.index import rules
    from log_archiver.model import block_table
    from log_archiver.util import strict_json
    from log_archiver.util.schemas import schema_dir

    digest = hashlib.sha256((schema_dir() / "archive-index.schema.json").read_bytes())
    for module in (rules, strict_json, block_table):
        digest.update(Path(module.__file__).read_bytes())
    return f"{__version__}:{digest.hexdigest()[:16]}"


class ArchiveIndex:
    def __init__(self, path: Path, lock_timeout: float = 120.0):
        self.path = Path(path)  # as named: in messages, and what git commits
        # A symlinked index is written through the link: the lock, the backup, the temp file
        # and the validity record live beside the file it points to, shared by every link.
        self.file = Path(os.path.realpath(self.path)) if self.path.is_symlink() else self.path
        self.backup_path = self.file.with_name(self.file.name + ".backup")
        self.lock_path = self.file.with_name(self.file.name + ".lock")
        self.valid_path = self.file.with_name(self.file.name + ".valid")
        self.lock_timeout = lock_timeout
        self._doc: dict | None = None
        self._identity: tuple | None = None
        self._held: weakref.finalize | None = None
        self._swept = False
        self._folder_made = False  # (the index's folder, made once a process)
        self.before_write: list = []  # called before each write (the audit trail syncs)
        self._validity_deferred = False  # (see deferring_validity)
        self._validity_due: tuple | None = None

    def read(self) -> dict:
        """The current index as a dict (an empty one when there is none yet), validated.

        Parses every entry: code that needs one issue uses :meth:`find` instead. What it
        returns is a copy: changes reach the file only through :meth:`transaction`.
        """
        return copied(self._document().to_dict())

    def snapshot(self):
        """The validated document as read (:class:`~log_archiver.index.layout.
        IndexDocument`), shared and not copied: for readers of many entries (``list``)
        that must not change what it holds."""
        return self._document()
    def entries_for_reading(self) -> list[dict]:
        """Every entry as read, not copied: for a read-only pass over the whole index (gc's
        plan), where copying 10,000 entries costs more than the pass. Never change them."""
        return self._document().entries()

    def find(self, issue: int) -> dict | None:
        """A copy of the entry of ``issue``, or None."""
        return copied(self._document().find(issue))

    def _document(self):
        from log_archiver.index.layout import IndexDocument

        try:
            if self._doc is not None and file_identity(os.stat(self.file)) == self._identity:
                return self._doc
            fd = os.open(self.file, os.O_RDONLY)
        except FileNotFoundError:
            self._forget()
            return IndexDocument.from_dict(empty_index())
        except OSError as error:
            raise local_error(error, "read", self.path) from error
        try:
            with open(fd, "rb", closefd=False) as handle:
                raw = handle.read()
            identity = file_identity(os.fstat(fd))
            if not self._swept:  # once a process: what a killed writer left beside the index
                self._swept = True
                remove_stale_temps_in(self.file.parent, self.file.name)
            document = self._parse(raw, identity)
        except BaseException:
            os.close(fd)
            raise
        self._hold(fd, identity, document)
        return document

    def _parse(self, raw: bytes, identity: tuple):
        from log_archiver.index.layout import IndexDocument

        known = self._known(identity, raw)
        if known == "layout":
            document = IndexDocument.from_layout(raw)
            if document is not None:
                return document
        if known is None:
            doc = load_index_bytes(raw, self.path, self._restore_hint())
            self._record_valid(identity, hashlib.sha256(raw).hexdigest(),
                               in_layout=dumps(doc) == raw)
        else:
            doc = loads(raw)
        return IndexDocument.from_dict(doc)

    def _hold(self, fd: int, identity: tuple, doc: dict) -> None:
        """Cache ``doc`` as the content of the file ``fd`` is open on.

        While the descriptor is open its inode number cannot be given to another file, so a
        path whose device, inode, size and times all still match holds these very bytes:
        writers of the index never change a file in place, they rename a new one over it.
        """
        self._forget()
        self._doc, self._identity = doc, identity
        self._held = weakref.finalize(self, os.close, fd)

    def _forget(self) -> None:
        if self._held is not None:
            self._held()
        self._doc = self._identity = self._held = None

    def _known(self, identity: tuple, raw: bytes) -> str | None:
        """``layout`` or ``valid`` when these are bytes this tool wrote or validated
        (``layout``: written in the index's own layout); None when they must be checked."""
        try:
            stamp, recorded, digest, layout = self.valid_path.read_text().split()
        except (OSError, UnicodeDecodeError, ValueError):
            return None
        if stamp != _validation_stamp():
            return None
        if recorded != _identity_text(identity) and digest != hashlib.sha256(raw).hexdigest():
            return None
        return "layout" if layout == "layout" else "valid"

    @contextmanager
    def deferring_validity(self) -> Iterator[None]:
        """Inside, the validity record is written once, when the block ends: a batch
        writes the index many times, and only its last write matters to the next process
        (which, if this one is killed first, validates the index once more)."""
        if self._validity_deferred:
            yield
            return
        self._validity_deferred = True
        try:
            yield
        finally:
            self._validity_deferred = False
            due, self._validity_due = self._validity_due, None
            if due is not None:
                self._record_valid(due[0], due[1], in_layout=due[2])

    def _record_valid(self, identity: tuple, digest: str = "-", *, in_layout: bool) -> None:
        """Best effort: without the record the next read just validates again."""
        if self._validity_deferred:
            self._validity_due = (identity, digest, in_layout)
            return
        text = (f"{_validation_stamp()} {_identity_text(identity)} {digest} "
                f"{'layout' if in_layout else 'other'}\n")
        try:
            write_bytes_atomic(self.valid_path, text.encode(), durable=False)
        except OSError:
            pass

    def read_entry(self, issue: int) -> dict:
        from log_archiver.errors import NotArchivedError

        entry = self.find(issue)
        if entry is None:
            raise NotArchivedError(f"issue {issue} has no entry in {self.path}",
                                   f"run `prepare-upload {issue}` or "
                                   f"`log-archiver archive {issue}` first")
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
        from log_archiver.util.flock import LockTimeout, acquire, release

        if not self._folder_made:
            try:
                self.file.parent.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise local_error(error, "create", self.file.parent) from error
            self._folder_made = True
        try:
            fd = acquire(self.lock_path, self.lock_timeout)
        except LockTimeout:
            raise IndexLockTimeout(
                f"archive index {self.path} stayed locked for {self.lock_timeout:.0f} s",
                "another archive run holds it; wait for it to finish and run again",
            ) from None
        except OSError as error:
            raise local_error(error, "lock", self.lock_path) from error
        try:
            yield
        finally:
            release(fd)

    @contextmanager
    def transaction(self) -> Iterator[IndexTransaction]:
        """Yield the index to change; on a clean exit the changes are validated and written."""
        with self.locked():
            txn = IndexTransaction(self._document())
            try:
                yield txn
                if not txn.changed:
                    return
                document, changed = txn.document, txn.changed
                for issue in changed:
                    entry = document.find(issue)
                    if entry is not None:
                        recompute_entry(entry)
                document.last_updated = now_iso()
                validate_changes(document, changed, f"{self.path} (as changed, not written)")
                for hook in self.before_write:
                    hook()
                self._write(document.to_parts(changed))
                fd = os.open(self.file, os.O_RDONLY)
            except BaseException:
                self._forget()  # the shared document may hold changes that were not written
                raise
            identity = file_identity(os.fstat(fd))
            self._hold(fd, identity, document)
            self._record_valid(identity, in_layout=True)

    def _write(self, parts: list[bytes]) -> None:
        had_index = self.file.exists()
        if had_index:
            self.backup_path.unlink(missing_ok=True)
            os.link(self.file, self.backup_path)
        try:
            write_parts_atomic(self.file, parts)
        except BaseException:
            if had_index and not self.file.exists():
                os.replace(self.backup_path, self.file)
            raise
        if had_index:  # a backup left by a crash here is replaced by the next write
            self.backup_path.unlink(missing_ok=True)


class IndexTransaction:
    """The index being changed. An entry taken with :meth:`edit` is written back when
    the transaction ends (validated, its totals derived again); nothing else is."""

    def __init__(self, document):
        self.document = document
        self.changed: set[int] = set()

    def has(self, issue: int) -> bool:
        return self.document.find(issue) is not None

    def get(self, issue: int) -> dict | None:
        """A copy of the entry of ``issue`` to look at (changing it changes nothing)."""
        return copied(self.document.find(issue))

    def edit(self, issue: int) -> dict | None:
        """The entry of ``issue`` to change in place, or None; it will be written."""
        entry = self.document.find(issue)
        if entry is not None:
            self.changed.add(issue)
        return entry

    def put(self, entry: dict) -> None:
        """Insert or replace the entry of its issue (its totals computed now)."""
        recompute_entry(entry)
        self.document.put(entry)
        self.changed.add(entry["issue_number"])

"""``gc --orphans``: objects in the store under the archive's layout that no index entry
names, older than a grace period (another clone may be mid-archive: its index, not ours,
names what it is uploading), listed with size and age, then deleted.

Named means: a log's ``remote_path`` (tombstones included: never delete what any record
names) or one of the entry's ``kept_objects``. An object of an issue whose entry is on
legal hold is never an orphan. Keys come from a listing and are hostile until
:func:`log_archiver.model.keys.parse_key` accepts them: anything else under the prefix is
counted and left alone. The store is listed before the index is read: a run on this machine
records a key in the index before it uploads to it, so an object it wrote is named by then.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from log_archiver.errors import ArchiveError
from log_archiver.model import keys
from log_archiver.model.holds import held_issues
from log_archiver.repository import Repository

DEFAULT_GRACE = 24 * 3600.0


@dataclass
class OrphanObjects:
    grace_seconds: float = DEFAULT_GRACE
    orphans: list[dict] = field(default_factory=list)   # deleted (dry run: would be)
    kept: list[dict] = field(default_factory=list)      # unnamed, but kept, and why
    failed: list[dict] = field(default_factory=list)
    not_in_layout: int = 0                              # keys under the root we never write
    deleted_bytes: int = 0


def named_keys(archives: list[dict]) -> set[str]:
    named: set[str] = set()
    for entry in archives:
        named.update(log["remote_path"] for log in entry["logs"])
        named.update(kept["remote_path"] for kept in entry.get("kept_objects") or ())
    return named


def collect_orphans(repo: Repository, *, grace: float = DEFAULT_GRACE,
                    now: float | None = None) -> OrphanObjects:
    report = OrphanObjects(grace_seconds=grace)
    store = repo.store
    listed = list(store.list(keys.ROOT))
    now = time.time() if now is None else now
    archives = repo.index.read()["archives"]
    named, held = named_keys(archives), held_issues(archives)
    for info in listed:
        parsed = keys.parse_key(info.key)
        if parsed is None or parsed.name in (".", "..") or not parsed.name.isprintable():
            report.not_in_layout += 1
            continue
        if info.key in named:
            continue
        age = None if info.modified is None else max(0.0, now - info.modified)
        record = {"key": info.key, "issue_number": parsed.issue, "bytes": info.size,
                  "age_seconds": None if age is None else int(age)}
        if parsed.issue in held:
            report.kept.append({**record, "reason": "held"})
        elif age is None:
            report.kept.append({**record, "reason": "age_unknown"})
        elif age < grace:
            report.kept.append({**record, "reason": "within_grace"})
        else:
            _delete(store, record, repo, report)
    report.deleted_bytes = sum(item["bytes"] for item in report.orphans)
    return report


def _delete(store, record: dict, repo: Repository, report: OrphanObjects) -> None:
    if not repo.dry_run:
        try:
            store.delete(record["key"])
        except ArchiveError as error:
            report.failed.append({**record, "type": error.type, "message": error.message,
                                  "retryable": error.retryable, "hint": error.hint})
            return
        repo.events.emit("object.deleted", issue=record["issue_number"], path=None,
                         bytes=record["bytes"], key=record["key"], checksum=None,
                         rule="orphan")
    report.orphans.append(record)

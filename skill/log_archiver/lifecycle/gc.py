"""``gc``: delete from the store the logs whose retention ran out, leaving tombstones.

Safe to kill at any point, and a rerun deletes nothing twice:

1. The plan is decided by :mod:`.policy`, then recorded: one index transaction marks every
   due log ``expiring`` (``{"since", "rule"}``), so the index says why before anything is
   deleted.
2. Batches of logs are then settled, each inside an index transaction (the lock is held,
   so no ``hold`` or archive slips in between the last look at an entry and the delete):
   the entry is decided again; each object is deleted (one a previous, killed run marked
   is looked up first, and one already gone is done); a log whose objects are all gone
   becomes ``expired`` (:func:`states.expire`), its mark removed. A log whose entry is now
   held or incomplete, or no longer due, loses its mark and keeps its object (a mark whose
   object is already gone becomes the tombstone it was meant to be).
3. The index is committed, as the archive commits it.

A killed run leaves marks; the next run resumes them. A failed delete is recorded and the
run goes on (it ends ``partial`` with the list); the log keeps its mark for the next run.

The entry's ``kept_objects`` of the same log (its earlier versions, kept when ``--force``
archived a new one; see :func:`log_archiver.model.records.keep_object`) expire with it:
they were archived no later than the log itself, under the same entry and rules. Each gets
``expired_at`` and ``expired_rule`` and stays listed. An object another writer left at a
log's key (``other_object_at_key``) is not the log's and is never deleted by gc.

Tests stop a real run at chosen points with ``LOG_ARCHIVER_TEST_GC_KILL`` (``marked``: after
the marks are written; ``deleted:N``: after the N-th delete; ``batch:N``: after the N-th
batch is written): the process kills itself with SIGKILL.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from log_archiver.errors import ArchiveError
from log_archiver.lifecycle.policy import DUE, Decision, Policy
from log_archiver.model import states
from log_archiver.model.holds import is_held
from log_archiver.repository import Repository
from log_archiver.util.clock import now_iso, utc_now

BATCH_OBJECTS = 64
KILL_HOOK = "LOG_ARCHIVER_TEST_GC_KILL"
OWN_VERSIONS = "replaced_by_newer_version"


@dataclass
class GcReport:
    configured: bool = False
    rules: list[dict] = field(default_factory=list)
    deleted: list[dict] = field(default_factory=list)       # (dry run: would be deleted)
    already_gone: list[dict] = field(default_factory=list)  # marked by a killed run, gone
    failed: list[dict] = field(default_factory=list)
    kept: list[dict] = field(default_factory=list)
    expired_logs: int = 0
    deleted_bytes: int = 0
    issues: list[int] = field(default_factory=list)         # entries gc changed

    def kept_by_reason(self) -> dict[str, int]:
        """Logs kept, counted by reason."""
        counts: dict[str, int] = {}
        for kept in self.kept:
            counts[kept["reason"]] = counts.get(kept["reason"], 0) + len(kept["local_paths"])
        return counts


def collect_garbage(repo: Repository, *, issue: int | None = None, now=None) -> GcReport:
    """Delete (dry run: list) the stored objects whose retention ran out; see the module."""
    policy = Policy(repo.config.retention)
    now = now or utc_now()
    report = GcReport(configured=policy.configured, rules=[r.describe() for r in policy.rules()])
    entries = ([repo.index.read_entry(issue)] if issue is not None
               else repo.index.entries_for_reading())
    due: dict[int, dict[str, Decision]] = {}
    for entry in entries:
        marked = {log["local_path"] for log in entry["logs"] if "expiring" in log}
        for decision in policy.decide(entry, now):
            if decision.verdict == DUE or decision.local_path in marked:
                due.setdefault(entry["issue_number"], {})[decision.local_path] = decision
            if decision.verdict != DUE:
                _keep(report.kept, decision)
        if repo.dry_run and entry["issue_number"] in due:
            for _log, objects in _objects(entry, due[entry["issue_number"]], only_due=True):
                report.deleted += objects
    if repo.dry_run or not due:
        report.deleted_bytes = sum(item["bytes"] for item in report.deleted)
        return report
    resumed = _mark(repo, due, policy, now)
    _checkpoint("marked")
    _settle_all(repo, due, resumed, policy, now, report)
    report.deleted_bytes = sum(item["bytes"] for item in report.deleted)
    return report


def _keep(kept: list[dict], decision: Decision) -> None:
    """Kept logs are listed by entry and reason: the logs of one entry kept for the same
    reason (held, not due until the same day...) share one item."""
    if kept:
        last = kept[-1]
        if (last["issue_number"], last["reason"], last["rule"], last["expires_at"]) == \
                (decision.issue, decision.verdict, decision.rule, decision.expires_at):
            last["local_paths"].append(decision.local_path)
            return
    kept.append(decision.as_kept())


def _objects(entry: dict, decisions: dict[str, Decision], *, only_due: bool):
    """(log, [object]) for each log of ``entry`` named in ``decisions``: the log's own
    object and the kept earlier versions of it."""
    issue = entry["issue_number"]
    for log in entry["logs"]:
        decision = decisions.get(log["local_path"])
        if decision is None or log["upload_status"] not in states.EXPIRABLE:
            continue
        if only_due and decision.verdict != DUE:
            continue
        rule = decision.rule if decision.verdict == DUE else log.get("expiring", {}).get("rule")
        objects = [_item(issue, log["local_path"], log["remote_path"], log["size_bytes"], rule,
                         "log", log["checksum"])]
        for kept in entry.get("kept_objects") or ():
            if kept["local_path"] == log["local_path"] and kept["reason"] == OWN_VERSIONS \
                    and "expired_at" not in kept:
                objects.append(_item(issue, log["local_path"], kept["remote_path"],
                                     kept["size_bytes"], rule, "kept_object", kept["checksum"]))
        yield log, objects


def _item(issue, local_path, key, size, rule, kind, checksum) -> dict:
    return {"issue_number": issue, "local_path": local_path, "key": key, "bytes": size,
            "rule": rule, "kind": kind, "checksum": checksum}


def _mark(repo: Repository, due: dict, policy: Policy, now) -> set[tuple[int, str]]:
    """Write the marks of every due log (step 1); returns the logs a killed run marked."""
    resumed: set[tuple[int, str]] = set()
    since = now_iso()
    with repo.index.transaction() as txn:
        for issue, decisions in due.items():
            entry = txn.edit(issue)
            if entry is None:
                continue
            fresh = {d.local_path: d for d in policy.decide(entry, now)}
            for log in entry["logs"]:
                path = log["local_path"]
                if "expiring" in log:
                    resumed.add((issue, path))
                elif path in decisions and fresh.get(path, decisions[path]).verdict == DUE:
                    log["expiring"] = {"since": since, "rule": fresh[path].rule}
    return resumed


def _settle_all(repo, due: dict, resumed: set, policy: Policy, now, report: GcReport) -> None:
    batch: list[int] = []
    size = 0
    batches = 0
    for issue, decisions in due.items():
        batch.append(issue)
        size += len(decisions)
        if size >= BATCH_OBJECTS:
            _settle_batch(repo, batch, resumed, policy, now, report)
            batches += 1
            _checkpoint(f"batch:{batches}")
            batch, size = [], 0
    if batch:
        _settle_batch(repo, batch, resumed, policy, now, report)
        _checkpoint(f"batch:{batches + 1}")


def _settle_batch(repo, issues: list[int], resumed: set, policy: Policy, now,
                  report: GcReport) -> None:
    store = repo.store
    with repo.index.transaction() as txn:
        work = []  # (entry, log, objects, delete?)
        for issue in issues:
            entry = txn.edit(issue)
            if entry is None:
                continue
            decisions = {d.local_path: d for d in policy.decide(entry, now)}
            blocked = is_held(entry) or not entry["upload_complete"] or entry["partial_archive"]
            for log, objects in _objects(entry, decisions, only_due=False):
                if "expiring" not in log:
                    continue
                still_due = not blocked and decisions[log["local_path"]].verdict == DUE
                work.append((entry, log, objects, still_due))
        outcomes = _delete_all(store, repo, work, resumed)
        for entry, log, objects, still_due in work:
            results = [outcomes[(entry["issue_number"], item["key"])] for item in objects]
            for item, result in zip(objects, results, strict=True):
                if result == "failed":
                    report.failed.append(_failure(item))
            if not still_due and "kept" in results:
                log.pop("expiring", None)  # held, incomplete or no longer due: kept
                continue
            if any(result == "failed" for result in results) or "kept" in results:
                continue  # the mark stays: the next run tries again
            _tombstone(entry, log, objects, results, report)


def _delete_all(store, repo, work: list, resumed: set) -> dict:
    """Delete (or, for a log no longer due, only look up) every object of ``work``."""
    outcomes: dict[tuple[int, str], str] = {}
    jobs = [(entry, log, item, still_due) for entry, log, objects, still_due in work
            for item in objects]

    def one(job):
        entry, log, item, still_due = job
        issue = entry["issue_number"]
        try:
            look_first = (issue, log["local_path"]) in resumed or not still_due
            if look_first and store.head(item["key"]) is None:
                return "gone"
            if not still_due:
                return "kept"
            store.delete(item["key"])
        except ArchiveError as error:
            item["error"] = error
            return "failed"
        _count_delete()
        repo.events.emit("object.deleted", issue=issue, path=item["local_path"],
                         bytes=item["bytes"], key=item["key"], checksum=item["checksum"],
                         rule=item["rule"])
        return "deleted"

    workers = max(1, min(repo.config.upload_concurrency, len(jobs)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="gc") as pool:
        for (entry, _log, item, _due), outcome in zip(jobs, pool.map(one, jobs), strict=True):
            outcomes[(entry["issue_number"], item["key"])] = outcome
    return outcomes


def _tombstone(entry: dict, log: dict, objects: list[dict], results: list[str],
               report: GcReport) -> None:
    at = now_iso()
    rule = log["expiring"]["rule"]
    for item, result in zip(objects, results, strict=True):
        item = {k: v for k, v in item.items() if k != "error"}
        (report.deleted if result == "deleted" else report.already_gone).append(item)
    keys = {item["key"] for item in objects if item["kind"] == "kept_object"}
    for kept in entry.get("kept_objects") or ():
        if kept["remote_path"] in keys:
            kept.update(expired_at=at, expired_rule=rule)
    states.expire(log, at=at, rule=rule)
    report.expired_logs += 1
    if entry["issue_number"] not in report.issues:
        report.issues.append(entry["issue_number"])


def _failure(item: dict) -> dict:
    error = item["error"]
    return {**{k: v for k, v in item.items() if k != "error"}, "type": error.type,
            "message": error.message, "retryable": error.retryable, "hint": error.hint}


_deletes = {"count": 0}
_deletes_lock = threading.Lock()


def _count_delete() -> None:
    if os.environ.get(KILL_HOOK, "").startswith("deleted:"):
        with _deletes_lock:
            _deletes["count"] += 1
            _checkpoint(f"deleted:{_deletes['count']}")


def _checkpoint(name: str) -> None:
    """Where a test asked a real run to die (``LOG_ARCHIVER_TEST_GC_KILL``)."""
    if os.environ.get(KILL_HOOK) == name:
        import signal

        os.kill(os.getpid(), signal.SIGKILL)

"""``hold ISSUE --reason TEXT`` and ``release ISSUE``: a legal hold on an entry.

The hold is recorded in the entry first (``{"reason", "by", "at"}``), so from then on
nothing of this tool deletes the entry's objects or files. On a store that declares
``Capabilities.object_lock`` (S3) whose bucket has Object Lock enabled, each stored object of
the entry (its logs' and its kept objects) also gets an S3 legal hold, so no other tool can
delete it either; ``release`` lifts them. Without it the output says so: the hold then lives
in the index only. Both are safe to rerun: legal holds are put (or lifted) again.

Who: the git user (``user.name <user.email>``) of the repository, else ``$USER``.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from log_archiver.errors import ArchiveError, UsageError
from log_archiver.model import states
from log_archiver.model.holds import is_held
from log_archiver.repository import Repository
from log_archiver.util.clock import now_iso

MAX_REASON = 500


@dataclass
class HoldReport:
    changed: bool = False
    hold: dict | None = None
    object_lock: dict = field(default_factory=dict)  # supported, enabled, message
    objects: list[str] = field(default_factory=list)  # keys whose S3 legal hold was set
    failed: list[dict] = field(default_factory=list)


def check_reason(reason: str) -> str:
    text = (reason or "").strip()
    if not text or len(text) > MAX_REASON or not text.isprintable():
        raise UsageError(f"hold reason {reason!r} must be 1 to {MAX_REASON} printable "
                         "characters on one line",
                         "say why in a short sentence: --reason 'litigation 2025-17'")
    return text


def who(root: Path) -> str:
    """The git user of ``root`` (``name <email>``), else ``$USER``, else ``unknown``."""
    def git(name: str) -> str:
        try:
            done = subprocess.run(["git", "-C", str(root), "config", "--get", name],
                                  capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return ""
        return done.stdout.strip() if done.returncode == 0 else ""

    name, email = git("user.name"), git("user.email")
    found = f"{name} <{email}>" if name and email else name or email
    found = found or os.environ.get("USER") or os.environ.get("LOGNAME") or "unknown"
    return "".join(ch if ch.isprintable() else "?" for ch in found)[:300]


def hold(repo: Repository, issue: int, reason: str) -> HoldReport:
    reason = check_reason(reason)
    report = HoldReport()
    with repo.index.transaction() as txn:
        entry = txn.get(issue)
        if entry is None:
            repo.index.read_entry(issue)  # raises: not archived
        if not is_held(entry):
            entry = txn.edit(issue)
            entry["hold"] = {"reason": reason, "by": who(repo.config.root), "at": now_iso()}
            report.changed = True
    report.hold = entry["hold"]
    if report.changed:
        repo.events.emit("entry.held", issue=issue, reason=report.hold["reason"],
                         by=report.hold["by"])
    _legal_holds(repo, entry, True, report)
    return report


def release(repo: Repository, issue: int) -> HoldReport:
    report = HoldReport()
    by = who(repo.config.root)
    with repo.index.transaction() as txn:
        entry = txn.get(issue)
        if entry is None:
            repo.index.read_entry(issue)
        if is_held(entry):
            report.hold = entry["hold"]
            entry = txn.edit(issue)
            entry["hold"] = None
            report.changed = True
    if report.changed:
        repo.events.emit("entry.released", issue=issue, reason=report.hold["reason"], by=by)
    _legal_holds(repo, entry, False, report)
    return report


def stored_keys(entry: dict) -> list[str]:
    found = [log["remote_path"] for log in entry["logs"] if states.is_stored(log)]
    found += [kept["remote_path"] for kept in entry.get("kept_objects") or ()
              if "expired_at" not in kept]
    return found


def _legal_holds(repo: Repository, entry: dict, on: bool, report: HoldReport) -> None:
    store = repo.store
    if not store.capabilities.object_lock:
        report.object_lock = {"supported": False, "enabled": False,
                              "message": f"{store.url} has no object lock (a file store): the "
                                         "hold is kept in the index only"}
        return
    try:
        enabled, why = store.object_lock_status()
    except ArchiveError as error:
        report.object_lock = {"supported": True, "enabled": False,
                              "message": f"cannot tell whether the bucket has Object Lock: "
                                         f"{error.message}; the hold is kept in the index only"}
        report.failed.append({"key": None, "type": error.type, "message": error.message,
                              "retryable": error.retryable, "hint": error.hint})
        return
    suffix = "" if enabled else ": the hold is kept in the index only"
    report.object_lock = {"supported": True, "enabled": enabled, "message": why + suffix}
    if not enabled:
        return
    for key in stored_keys(entry):
        try:
            store.set_legal_hold(key, on)
        except ArchiveError as error:
            report.failed.append({"key": key, "type": error.type, "message": error.message,
                                  "retryable": error.retryable, "hint": error.hint})
            continue
        report.objects.append(key)

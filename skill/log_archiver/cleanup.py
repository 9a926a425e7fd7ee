"""Freeing local disk: a log is deleted only once its stored copy is verified.

Before an original is deleted its bytes are hashed again and compared with the checksum
taken when it was archived, so a log that grew after archiving (a session still being
written) is kept, never lost.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ArchiveError
from .hashing import bare, sha256_file
from .index import ArchiveIndex
from .retry import RetryPolicy
from .storage import Store, at_timeout, read_timeout, verify


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


def cleanup_local(index: ArchiveIndex, issue: int, logs_dir: Path, *,
                  store: Store | None = None, policy: RetryPolicy | None = None,
                  only_compressed: bool = False, dry_run: bool = False,
                  workers: int = 2) -> CleanupReport:
    """Delete the local files of every verified log of ``issue``; record them ``cleaned``.

    ``only_compressed`` removes just the compressed copies (a partial archive keeps its
    originals). Logs merely ``uploaded`` are verified against ``store`` first.
    """
    policy = policy or RetryPolicy()
    report = CleanupReport()
    entry = index.read_entry(issue)
    new_status: dict[str, str] = {}

    def check(log: dict) -> tuple[dict, str | None, str | None]:
        """(log, status it may be cleaned from, reason to keep it)."""
        status = log["upload_status"]
        if status == "uploaded":
            if store is None:
                return log, None, "uploaded but not verified; no store to verify against"
            try:
                policy.run(lambda timeout: verify(at_timeout(store, timeout),
                                                  log["remote_path"],
                                                  sha256=bare(log["checksum"]),
                                                  size=log["size_bytes"]),
                           base_timeout=read_timeout(store))
            except ArchiveError as error:
                return log, None, f"stored copy not verified: {error.message}"
            status = "verified"
        if status not in ("verified", "cleaned"):
            return log, None, f"upload status is {status}"
        original = logs_dir / log["local_path"]
        if not only_compressed and original.exists() and not _original_unchanged(original, log):
            return log, None, "changed since it was archived; re-archive it with --force"
        return log, status, None

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        checked = list(pool.map(check, entry["logs"]))
    for log, status, reason in checked:
        name = log["local_path"]
        if reason is not None:
            report.kept.append({"local_path": name, "reason": reason})
            continue
        targets = [logs_dir / log["stored_path"]] if log["compressed"] else []
        if not only_compressed:
            targets.append(logs_dir / log["local_path"])
        for target in targets:
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
            new_status[name] = "cleaned"
        elif status != log["upload_status"]:
            new_status[name] = status
    current = {log["local_path"]: log["upload_status"] for log in entry["logs"]}
    new_status = {name: s for name, s in new_status.items() if s != current[name]}
    if new_status and not dry_run:
        with index.transaction() as txn:
            for log in txn.entry(issue)["logs"]:
                if log["local_path"] in new_status:
                    log["upload_status"] = new_status[log["local_path"]]
            txn.touch(issue)
    return report

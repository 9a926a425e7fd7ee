"""``verify``: the index against the store, read-only.

Every log the index records as stored (``uploaded``, ``verified``, ``cleaned``) is
checked against its object: quickly by default (a HEAD each, in parallel: see
:mod:`.checks`), by reading every object back with ``deep``, or deeply for a random
``sample`` percent (a seed picks them and is reported, so a run can be repeated). Logs
in any other state are not expected in the store (``expired`` ones were deleted on
purpose) and are only counted. The index itself is checked against the rules of
``validate-index``, and the store is listed for objects no entry names.

Nothing is written: the index is read as bytes (not through the index reader, which
keeps a validity record beside it), and the store is used through a wrapper that
refuses every write.
"""

from __future__ import annotations

import math
import random
import re
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from log_archiver.errors import ArchiveError, NotArchivedError, UsageError
from log_archiver.index.rules import HINTS, check_index_bytes
from log_archiver.integrity.checks import Outcome, deep_check, quick_check
from log_archiver.integrity.findings import (
    KINDS,
    object_finding,
    rule_finding,
    unindexed_finding,
)
from log_archiver.model import keys
from log_archiver.model.states import STORED
from log_archiver.repository import Repository
from log_archiver.storage.wrappers import DryRunStore

_ENTRY_AT = re.compile(r"^\$\.archives\[(\d+)\]")
MAX_HEAD_THREADS = 32


@dataclass
class VerifyReport:
    mode: str
    issues: list[int] | None
    storage_url: str
    index_path: str
    logs: int = 0                       # stored logs checked
    deep: int = 0                       # of them, read back whole
    objects_listed: int = 0
    proofs: dict[str, int] = field(default_factory=dict)
    not_checked: dict[str, int] = field(default_factory=dict)  # by upload_status
    other_stores: int = 0               # entries archived to another store
    sample: dict | None = None
    findings: list[dict] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def head_threads(repo: Repository) -> int:
    """HEADs wait on the network, not the CPU: as many as the store's connection pool
    holds (4 per upload slot, as the S3 client sizes it), never fewer than ``workers``."""
    config = repo.config
    return max(1, min(MAX_HEAD_THREADS, max(config.workers, 4 * config.upload_concurrency)))


def verify_archive(repo: Repository, issues: list[int] | None = None, *, deep: bool = False,
                   sample: float | None = None, seed: int | None = None) -> VerifyReport:
    started = time.monotonic()
    if deep and sample is not None:
        raise UsageError("--deep reads every object back already; --sample picks some",
                         "pass one of --deep and --sample PERCENT")
    if sample is not None and not 0 < sample <= 100:
        raise UsageError(f"sample {sample!r} is not a percentage above 0 and at most 100",
                         "pass --sample 5 to read back a random 5% of the stored logs")
    store = DryRunStore(repo.store)  # verify never writes: any write is refused
    mode = "deep" if deep else "sample" if sample is not None else "quick"
    report = VerifyReport(mode, sorted(set(issues)) if issues else None, store.url,
                          str(repo.config.index_path))
    doc = _read_index(repo, report)
    archives = doc.get("archives") if isinstance(doc, dict) else None
    if isinstance(archives, list):
        todo = _stored_logs(archives, report, store.url)
        chosen = _deep_set(todo, deep, sample, seed, report)
        with ThreadPoolExecutor(max_workers=1) as lister:  # the listing overlaps the HEADs
            listed = lister.submit(_list_layout, store, report)
            _check_objects(repo, store, todo, chosen, report)
            _find_unindexed(repo, store, archives, report, listed.result())
    report.findings.sort(key=lambda f: (KINDS.index(f["kind"]), -(f["issue"] or 0),
                                        f["file"] or "", f["remote_path"] or ""))
    for item in report.findings:
        report.counts[item["kind"]] = report.counts.get(item["kind"], 0) + 1
    report.seconds = round(time.monotonic() - started, 3)
    repo.events.emit("archive.verified", status="error" if report.findings else "ok",
                     mode=mode, issues=report.issues, logs=report.logs, deep=report.deep,
                     findings=len(report.findings), counts=report.counts,
                     seed=(report.sample or {}).get("seed"))
    return report


def _read_index(repo: Repository, report: VerifyReport) -> dict | None:
    path = repo.config.index_path
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        if report.issues:
            raise NotArchivedError(f"there is no archive index at {path}",
                                   "archive an issue first, or pass --logs-dir") from None
        return {"archives": []}
    except OSError as error:
        raise UsageError(f"cannot read the archive index {path}: {error.strerror or error}",
                         "check the logs dir and its permissions") from error
    doc, violations = check_index_bytes(raw)
    archives = doc.get("archives") if isinstance(doc, dict) else None
    wanted = set(report.issues or [])
    for violation in violations:
        match = _ENTRY_AT.match(violation["path"])
        entry = archives[int(match.group(1))] if match and isinstance(archives, list) else None
        issue = entry.get("issue_number") if isinstance(entry, dict) else None
        if not isinstance(issue, int) or isinstance(issue, bool):
            issue = None
        if wanted and issue is not None and issue not in wanted:
            continue
        if violation["rule"] == "schema" and isinstance(entry, dict):
            entry["__unsound__"] = True  # its logs cannot be trusted to be checked
        report.findings.append(rule_finding(violation, issue, HINTS[violation["rule"]]))
    if wanted and isinstance(archives, list):
        known = {entry.get("issue_number") for entry in archives if isinstance(entry, dict)}
        absent = sorted(wanted - known)
        if absent:
            raise NotArchivedError(
                f"issue {', '.join(map(str, absent))} has no entry in {path}",
                "run `log-archiver verify` without ISSUE to check every archived issue")
    return doc


def _stored_logs(archives: list, report: VerifyReport, url: str) -> list[tuple[int, dict]]:
    wanted = set(report.issues or [])
    todo = []
    for entry in archives:
        if not isinstance(entry, dict) or entry.get("__unsound__"):
            continue
        issue = entry["issue_number"]
        if wanted and issue not in wanted:
            continue
        if entry.get("storage_url", url) != url:
            report.other_stores += 1
            continue
        for log in entry["logs"]:
            status = str(log["upload_status"])
            if status in STORED:
                todo.append((issue, log))
            else:
                report.not_checked[status] = report.not_checked.get(status, 0) + 1
    report.logs = len(todo)
    return todo


def _deep_set(todo: list, deep: bool, sample: float | None, seed: int | None,
              report: VerifyReport) -> set[int]:
    """Positions in ``todo`` to read back whole."""
    if deep:
        return set(range(len(todo)))
    if sample is None:
        return set()
    if seed is None:
        seed = random.SystemRandom().randrange(2**32)
    count = min(len(todo), math.ceil(len(todo) * sample / 100))
    chosen = set(random.Random(seed).sample(range(len(todo)), count))
    report.sample = {"percent": sample, "seed": seed, "logs": count,
                     "keys": sorted(todo[i][1]["remote_path"] for i in chosen)}
    return chosen


def _check_objects(repo: Repository, store, todo: list, chosen: set[int],
                   report: VerifyReport) -> None:
    logs_dir = repo.logs_dir
    threads = head_threads(repo) if not chosen else max(1, repo.config.workers)
    with tempfile.TemporaryDirectory(prefix="log-archiver-verify-") as folder:
        scratch = Path(folder)

        def check(position: int) -> Outcome:
            log = todo[position][1]
            if position in chosen:
                return deep_check(store, log, scratch)
            return quick_check(store, log)

        with ThreadPoolExecutor(max_workers=threads) as pool:
            outcomes = list(pool.map(check, range(len(todo))))
    report.deep = len(chosen)
    for (issue, log), outcome in zip(todo, outcomes, strict=True):
        if outcome.proof is not None and not outcome.problems:
            report.proofs[outcome.proof] = report.proofs.get(outcome.proof, 0) + 1
        for kind, message in outcome.problems:
            report.findings.append(object_finding(kind, issue, log, message, logs_dir,
                                                  store.url_for(log["remote_path"])))


def _list_layout(store, report: VerifyReport):
    """Every object under the archive's layout (of the issues asked about), or the error
    that stopped the listing."""
    try:
        if report.issues:
            return [info for issue in report.issues
                    for prefix in keys.issue_prefixes(store.list_folders, issue)
                    for info in store.list(prefix)]
        return list(store.list(keys.ROOT))
    except ArchiveError as error:
        return error


def _find_unindexed(repo: Repository, store, archives: list, report: VerifyReport,
                    listed) -> None:
    """Objects under the archive's layout (of the issues asked about) no entry names."""
    if isinstance(listed, ArchiveError):
        report.findings.append(object_finding(
            "unreadable", None, {"local_path": None, "remote_path": keys.ROOT},
            f"the store could not be listed: {listed.message}", repo.logs_dir, store.url))
        return
    named = set()
    for entry in archives:
        if not isinstance(entry, dict) or not isinstance(entry.get("logs"), list):
            continue
        named |= {log.get("remote_path") for log in entry["logs"] if isinstance(log, dict)}
        named |= {kept.get("remote_path") for kept in entry.get("kept_objects") or []
                  if isinstance(kept, dict)}
    report.objects_listed = len(listed)
    for info in listed:
        parsed = keys.parse_key(info.key)
        if parsed is None or info.key in named:
            continue
        if report.issues and parsed.issue not in report.issues:
            continue
        report.findings.append(unindexed_finding(parsed.issue, info.key, info.size,
                                                 store.url_for(info.key)))

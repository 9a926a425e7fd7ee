"""Prometheus metrics of the archive, computed from the index and the audit trail alone.

Rendered by prometheus-client into a private registry (nothing global is touched) in the
text exposition format, for node_exporter's textfile collector. The index says what the
archive holds now; the audit trail says when things last happened and what failed.
"""

from __future__ import annotations

from pathlib import Path

from log_archiver.audit.reader import read_trail
from log_archiver.audit.trail import audit_dir
from log_archiver.errors import UsageError
from log_archiver.model import states
from log_archiver.repository import Repository
from log_archiver.util.fsutil import local_error, write_bytes_atomic

ARCHIVE_STATES = ("complete", "partial", "held", "expired")
FAILED_OUTCOMES = frozenset({"failed", "error", "partial"})
LAST_OPERATIONS = {"archive": ("archive",), "gc": ("gc", "delete_object"),
                   "verify": ("verify",)}
EXPIRED = "expired"


def entry_archive_state(entry: dict) -> str:
    """``complete | partial | held | expired`` (as ``list --state`` says it)."""
    decided = getattr(states, "archive_state", None)
    if decided is not None:
        return decided(entry)
    if entry.get("hold"):
        return "held"
    logs = entry["logs"]
    if logs and all(str(log["upload_status"]) == EXPIRED for log in logs):
        return "expired"
    if entry["partial_archive"] or not entry["upload_complete"]:
        return "partial"
    return "complete"


def figures_of(doc: dict, trail: list[dict]) -> dict:
    """Every figure, as plain numbers (what the exposition renders)."""
    archives = {name: 0 for name in ARCHIVE_STATES}
    logs: dict[tuple[str, str], int] = {}
    stored = original = held = 0
    failed_logs: dict[str, int] = {}
    for entry in doc["archives"]:
        state = entry_archive_state(entry)
        archives[state] = archives.get(state, 0) + 1
        held += bool(entry.get("hold"))
        for log in entry["logs"]:
            status = str(log["upload_status"])
            logs[(status, log["type"])] = logs.get((status, log["type"]), 0) + 1
            if status in states.STORED:
                stored += log["size_bytes"]
                original += log["original_size_bytes"]
            if status in (states.FAILED, states.LOST):
                failed_logs[status] = failed_logs.get(status, 0) + 1
    last: dict[str, float] = {}
    failures: dict[str, int] = {}
    for line in trail:
        outcome = str(line.get("outcome"))
        if outcome in FAILED_OUTCOMES:
            failures[line["op"]] = failures.get(line["op"], 0) + 1
            continue
        for name, ops in LAST_OPERATIONS.items():
            if line["op"] in ops:
                last[name] = max(last.get(name, 0.0), _seconds(line["time"]))
    return {"archives": archives,
            "logs": [{"state": s, "type": t, "count": n} for (s, t), n in sorted(logs.items())],
            "stored_bytes": stored, "original_bytes": original,
            "efficiency_ratio": round(stored / original, 6) if original else None,
            "held_archives": held, "failed_logs": failed_logs, "audit_failures": failures,
            "last_success": last}


def _seconds(stamp: str) -> float:
    from datetime import UTC, datetime

    text = stamp.rstrip("Z")
    moment = datetime.fromisoformat(text).replace(tzinfo=UTC)
    return moment.timestamp()


def render(figures: dict, skipped_lines: int) -> str:
    from prometheus_client import CollectorRegistry, Gauge, generate_latest

    registry = CollectorRegistry(auto_describe=False)

    def gauge(name: str, doc: str, labels=()):
        return Gauge(f"log_archiver_{name}", doc, labels, registry=registry)

    archives = gauge("archives", "Archived issues by state (complete, partial, held, expired).",
                     ["state"])
    for state, count in figures["archives"].items():
        archives.labels(state=state).set(count)
    logs = gauge("logs", "Logs in the index by upload state and type.", ["state", "type"])
    for item in figures["logs"]:
        logs.labels(state=item["state"], type=item["type"]).set(item["count"])
    gauge("stored_bytes", "Bytes of every stored log as the store holds them (compressed)."
          ).set(figures["stored_bytes"])
    gauge("original_bytes", "Bytes the stored logs had before compression."
          ).set(figures["original_bytes"])
    if figures["efficiency_ratio"] is not None:
        gauge("storage_efficiency_ratio", "Stored bytes over original bytes (compressed "
              "over raw; lower is better).").set(figures["efficiency_ratio"])
    gauge("held_archives", "Archived issues under legal hold.").set(figures["held_archives"])
    failed = gauge("failed_logs", "Logs whose upload failed, or whose every copy is lost.",
                   ["state"])
    for state in (states.FAILED, states.LOST):
        failed.labels(state=state).set(figures["failed_logs"].get(state, 0))
    audit = gauge("audit_failures", "Operations the audit trail records as failed, by "
                  "operation.", ["operation"])
    for operation, count in sorted(figures["audit_failures"].items()):
        audit.labels(operation=operation).set(count)
    last = gauge("last_success_timestamp_seconds", "When an archive, gc or verify last "
                 "succeeded (from the audit trail).", ["operation"])
    for operation, seconds in sorted(figures["last_success"].items()):
        last.labels(operation=operation).set(seconds)
    gauge("audit_skipped_lines", "Audit trail lines skipped as incomplete or malformed."
          ).set(skipped_lines)
    return generate_latest(registry).decode("utf-8")


def archive_metrics(repo: Repository) -> tuple[str, dict]:
    """The exposition text, and the figures it shows."""
    doc = repo.index.read()
    reading = read_trail(audit_dir(repo.logs_dir))
    figures = figures_of(doc, reading.lines)
    figures["audit_skipped_lines"] = len(reading.skipped)
    return render(figures, len(reading.skipped)), figures


def write_textfile(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically: a temp file in the same folder, renamed."""
    path = Path(path).absolute()
    if path.is_dir():
        raise UsageError(f"--textfile {str(path)!r} is a folder",
                         "name a file, e.g. /var/lib/node_exporter/textfile/log_archiver.prom")
    if not path.parent.is_dir():
        raise UsageError(f"--textfile folder {str(path.parent)!r} does not exist",
                         "create it, or point --textfile at node_exporter's textfile folder")
    try:
        write_bytes_atomic(path, text.encode("utf-8"))
    except OSError as error:
        raise local_error(error, "write", path) from error
    return path

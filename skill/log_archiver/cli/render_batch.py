"""The human summary of a batch archive (several issues, or --all-closed)."""

from __future__ import annotations

from log_archiver.integrations.comment import human_size

MAX_LINES = 40  # issues listed one per line; the rest are counted


def _issue_line(result: dict) -> str:
    status = result["status"]
    entry = result.get("entry") or {}
    what = ""
    if entry:
        size = human_size(entry.get("total_size_bytes", 0))
        what = f" {entry.get('total_logs', 0)} log(s), {size}"
    if result.get("resumed"):
        what += " (archived by the earlier run)"
    if status in ("error", "partial"):
        errors = result.get("errors") or (result.get("upload") or {}).get("failed") or []
        if errors:
            what += f": {errors[0]['message']}"
    if status == "not_attempted":
        what = f": {result.get('reason', '')}"
    return f"  #{result['issue_number']} {status}{what}"


def batch_summary(doc: dict) -> str:
    summary = doc["summary"]
    head = (f"Batch archive: {summary['planned']} issue(s): {summary['ok']} archived, "
            f"{summary['noop']} unchanged, {summary['partial']} partial, {summary['error']} "
            f"failed, {summary['not_attempted']} not attempted, {summary['skipped']} skipped")
    lines = [head]
    for result in doc["issues"][:MAX_LINES]:
        lines.append(_issue_line(result))
    if len(doc["issues"]) > MAX_LINES:
        lines.append(f"  ... and {len(doc['issues']) - MAX_LINES} more (see the JSON)")
    for skipped in doc.get("skipped_issues", [])[:MAX_LINES]:
        lines.append(f"  #{skipped['issue_number']} skipped: {skipped['reason']}")
    breaker = doc.get("breaker") or {}
    if breaker.get("open"):
        lines.append(f"  Store failing: stopped trying it; try again after {breaker['open_until']}")
    commit = doc.get("commit") or {}
    if commit.get("status") == "ok" and commit.get("commit"):
        lines.append(f"  Committed the index: {commit['commit'][:12]}")
    if doc.get("hint"):
        lines.append(f"  Next: {doc['hint']}")
    return "\n".join(lines)

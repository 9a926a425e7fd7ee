"""The human summaries printed on stderr: the library returns data, this reads it.

Warnings and errors are added below each summary by ``output.run``; a summary only
says, in its first line, that there are warnings, and never that all is well then.
"""

from __future__ import annotations

from log_archiver.integrations.comment import human_size
from log_archiver.repository import NO_GITHUB_REPOSITORY


def is_note(warning: str) -> bool:
    """A warning that reports a normal state (no GitHub repository configured), not a
    problem: printed as a note, and no reason for a ⚠."""
    return warning == NO_GITHUB_REPOSITORY


def _warnings(doc: dict) -> list[str]:
    return [w for w in doc.get("warnings") or [] if not is_note(w)]


def _count(number: int, word: str = "log") -> str:
    return f"{number} {word}" if number == 1 else f"{number} {word}s"


def _warned(doc: dict) -> str:
    warnings = _warnings(doc)
    return f", with {_count(len(warnings), 'warning')} (below)" if warnings else ""


def archive_summary(doc: dict) -> str:
    issue = doc.get("issue_number")
    status = doc["status"]
    if status == "error":
        return f"✗ Archive of issue #{issue} failed"
    if status == "noop" and "entry" not in doc and doc.get("collected") == 0:
        return (f"No logs of issue #{issue} found: nothing archived, posted or committed "
                "(check the issue number and the logs dir; --allow-empty records an empty "
                "entry)")
    if doc.get("dry_run"):
        plan = doc.get("plan", [])
        return f"Dry run for issue #{issue}: {len(plan)} log(s) would be archived"
    if "upload" not in doc:  # already archived: at most the comment and the commit were done
        if status == "noop" and not _warnings(doc):
            return f"✓ Issue #{issue} is already archived; nothing to do"
        mark = "⚠" if _warnings(doc) else "✓"
        message = doc.get("message") or f"issue #{issue} is already archived"
        return f"{mark} {message[:1].upper()}{message[1:]}{_warned(doc)}"
    entry = doc.get("entry", {})
    packed = doc.get("compressed", {})
    upload = doc.get("upload", {})
    cleanup = doc.get("cleanup", {})
    commit = doc.get("commit", {})
    comment = doc.get("comment", {})
    if status == "partial":
        head = f"⚠ Partial archive for issue #{issue}"
    else:
        head = f"{'⚠' if _warnings(doc) else '✓'} Logs archived for issue #{issue}"
    lines = [head + _warned(doc), f"  Collected: {_count(doc.get('collected', 0))}"]
    if packed.get("files"):
        lines.append(f"  Compressed: {packed['files']} log(s) "
                     f"({human_size(packed['original_bytes'])} → "
                     f"{human_size(packed['stored_bytes'])}, "
                     f"{packed['reduction'] * 100:.0f}% reduction)")
    # this run's counts: a log stored by an earlier run or step is "already stored"
    failed = set(doc.get("failed_files", [])) | {f["local_path"] for f in upload.get("failed", [])}
    already = (set(doc.get("already_stored", [])) | set(upload.get("already_stored", []))) \
        - set(upload.get("verified", []))
    lines.append(f"  Uploaded: {_count(len(upload.get('verified', [])))} "
                 f"to {entry.get('remote_folder') or '-'}/")
    lines.append(f"  Already stored: {_count(len(already))}")
    lines.append(f"  Failed: {_count(len(failed))}")
    lines.append(f"  Index updated: {doc.get('index_path')}")
    if comment.get("posted"):
        posted = "posted"
    elif comment.get("action") == "failed":
        posted = "not posted (see the warning)"
    else:
        posted = "rendered, not posted"
    lines.append(f"  GitHub comment: {posted}")
    lines.append(f"  Local cleaned: {human_size(cleanup.get('freed_bytes', 0))} freed")
    commit_text = commit.get("commit") or commit.get("reason") or commit.get("status")
    lines.append(f"  Commit: {commit_text}")
    if status == "partial":
        for failure in upload.get("failed", []):
            lines.append(f"  ✗ {failure['local_path']}: {failure['message']}")
        lines.append(f"  Retry with: archive {issue} --retry")
    return "\n".join(lines)


def reindex_summary(doc: dict) -> str:
    """``archive ISSUE --reindex-only``."""
    issue = doc.get("issue_number")
    if doc["status"] == "error":
        return f"✗ Reindex of issue #{issue} failed"
    counts = doc["reindex"]
    verb = "would be rebuilt" if doc.get("dry_run") else (
        "unchanged" if doc["status"] == "noop" else "rebuilt")
    lines = [f"Index entry of issue #{issue} {verb} from {doc['storage_url']}{_warned(doc)}",
             f"  Stored objects: {counts['objects']}, local logs: {counts['local_logs']}",
             f"  Verified (stored and local): {len(counts['verified'])}",
             f"  Cleaned (stored only): {len(counts['cleaned'])}",
             f"  Pending (local only): {len(counts['pending'])}"]
    if counts["missing"]:
        lines.append(f"  Missing (neither stored nor local): {len(counts['missing'])}")
    if doc.get("hint"):
        lines.append(f"  Next: {doc['hint']}")
    return "\n".join(lines)


def orphan_summary(doc: dict) -> str:
    """``cleanup-local --orphans``."""
    if doc["status"] == "error" and "orphans" not in doc:
        return ""
    verb = "would be removed" if doc["dry_run"] else "removed"
    lines = [f"Orphaned files {verb}: {len(doc['orphans'])} "
             f"({human_size(doc['freed_bytes'])})"]
    for orphan in doc["orphans"]:
        days = orphan["age_seconds"] / 86_400
        lines.append(f"  {orphan['path']}: {orphan['reason']} ({days:.1f} days, "
                     f"{human_size(orphan['size_bytes'])})")
    for kept in doc["kept"]:
        lines.append(f"  kept {kept['path']}: {kept['reason']}")
    return "\n".join(lines)

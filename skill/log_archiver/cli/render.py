"""The human summary printed on stderr after ``archive``."""

from __future__ import annotations

from log_archiver.integrations.comment import human_size


def archive_summary(doc: dict) -> str:
    issue = doc.get("issue_number")
    status = doc["status"]
    if status == "error":
        return f"✗ Archive of issue #{issue} failed"
    if status == "noop" and "entry" not in doc and doc.get("collected") == 0:
        return (f"No logs of issue #{issue} found: nothing archived, posted or committed "
                "(check the issue number and the logs dir; --allow-empty records an empty "
                "entry)")
    if status == "noop":
        return f"✓ Issue #{issue} is already archived; nothing to do"
    if doc.get("dry_run"):
        plan = doc.get("plan", [])
        return f"Dry run for issue #{issue}: {len(plan)} log(s) would be archived"
    entry = doc.get("entry", {})
    packed = doc.get("compressed", {})
    upload = doc.get("upload", {})
    cleanup = doc.get("cleanup", {})
    commit = doc.get("commit", {})
    comment = doc.get("comment", {})
    head = (f"⚠ Partial archive for issue #{issue}" if status == "partial"
            else f"✓ Logs archived for issue #{issue}")
    lines = [head, f"  Collected: {doc.get('collected', 0)} logs"]
    if packed.get("files"):
        lines.append(f"  Compressed: {packed['files']} log(s) "
                     f"({human_size(packed['original_bytes'])} → "
                     f"{human_size(packed['stored_bytes'])}, "
                     f"{packed['reduction'] * 100:.0f}% reduction)")
    stored = len(upload.get("verified", [])) + len(upload.get("already_stored", []))
    if entry.get("upload_complete"):  # counts logs stored by earlier runs or steps too
        stored = max(stored, entry.get("total_logs", 0))
    lines.append(f"  Uploaded: {stored} logs to {entry.get('remote_folder') or '-'}/")
    lines.append(f"  Index updated: {doc.get('index_path')}")
    posted = "posted" if comment.get("posted") else "rendered, not posted"
    lines.append(f"  GitHub comment: {posted}")
    lines.append(f"  Local cleaned: {human_size(cleanup.get('freed_bytes', 0))} freed")
    commit_text = commit.get("commit") or commit.get("reason") or commit.get("status")
    lines.append(f"  Commit: {commit_text}")
    if status == "partial":
        for failure in upload.get("failed", []):
            lines.append(f"  Failed: {failure['local_path']}: {failure['message']}")
        lines.append(f"  Retry with: archive {issue} --retry")
    for warning in doc.get("warnings", []):
        lines.append(f"  Warning: {warning}")
    return "\n".join(lines)

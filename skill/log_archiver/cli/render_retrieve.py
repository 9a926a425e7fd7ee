"""Human summaries of read, list and restore (stderr)."""

from __future__ import annotations

from log_archiver.integrations.comment import human_size


def record_summary(doc: dict) -> str | None:
    if doc["status"] == "error":
        return None
    lines = [f"Issue #{doc['issue_number']}: {doc.get('issue_title') or '(no title)'}",
             f"  archived {doc.get('archived_at')} ({doc.get('archive_reason')}), "
             f"{doc.get('state')}, in {doc.get('storage_url')}"]
    for log in doc.get("logs", []):
        where = "on disk" if log["on_disk"] else "store only"
        lines.append(f"  {log['type']:<10} {log['local_path']}  "
                     f"{human_size(log.get('original_size_bytes') or 0)}  "
                     f"{log['upload_status']}  {where}")
    return "\n".join(lines)


def read_summary(doc: dict) -> str | None:
    if doc["status"] == "error":
        return None
    fetched = doc.get("bytes_fetched", 0)
    source = {"local": "the local file", "blocks": "the store (by block)",
              "object": "the store"}.get(doc.get("source"), doc.get("source"))
    what = f"{doc.get('returned_lines', 0)} line(s)" if doc.get("lines") \
        else human_size(doc.get("bytes_written", 0))
    return (f"✓ {what} of {doc['local_path']} from {source}, verified "
            f"({'block by block' if doc.get('verified') == 'blocks' else 'whole'}; "
            f"{human_size(fetched)} read)")


def list_summary(doc: dict) -> str | None:
    if doc["status"] == "error":
        return None
    if not doc["archives"]:
        return "No archives match."
    lines = [f"{entry['archived_at']}  #{entry['issue_number']:<6} {entry['state']:<8} "
             f"{entry['total_logs']} log(s)  {entry.get('issue_title') or ''}"
             for entry in doc["archives"]]
    if doc.get("next_cursor"):
        lines.append(f"… {doc['remaining']} more: --cursor {doc['next_cursor']}")
    return "\n".join(lines)


def restore_summary(doc: dict) -> str | None:
    if "restored" not in doc:
        return None
    parts = [f"{len(doc['restored'])} restored ({human_size(doc['restored_bytes'])})"]
    if doc["unchanged"]:
        parts.append(f"{len(doc['unchanged'])} already there")
    if doc["kept"]:
        parts.append(f"{len(doc['kept'])} kept (other content there; --force replaces)")
    if doc["failed"]:
        parts.append(f"{len(doc['failed'])} failed")
    mark = "✓" if doc["status"] in ("ok", "noop") else "⚠"
    return f"{mark} Issue #{doc['issue_number']} into {doc['target_dir']}: " + ", ".join(parts)

"""``archive ISSUE``: every step of the workflow in one process, in order."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from log_archiver.archive.cleanup import cleanup_local
from log_archiver.archive.collect import collect_logs
from log_archiver.archive.prepare import prepare
from log_archiver.archive.trigger import check_reason, note_github
from log_archiver.archive.upload import check_same_store, upload_records
from log_archiver.errors import ArchiveError, NotArchivedError
from log_archiver.integrations.comment import render_comment
from log_archiver.integrations.github import publish_comment
from log_archiver.model.states import entry_state
from log_archiver.repository import Repository


def archive(repo: Repository, issue: int, *, reason: str = "manual", force: bool = False,
            retry: bool = False, pr: int | None = None, commit: bool = True,
            progress=lambda message: None) -> dict:
    """Run the whole workflow; returns the JSON payload (``status`` included)."""
    config = repo.config
    result: dict = {"issue_number": issue, "reason": reason, "index_path": str(repo.index.path),
                    "storage_url": config.storage, "warnings": [], "errors": []}
    entry = repo.index.find(issue)
    state = entry_state(entry)
    result["previous_state"] = state
    if state != "done" or force:
        check_same_store(entry, repo.store, move=force)
    issue_info = check_reason(repo, issue, reason, pr, force, result)
    if state == "done" and not force:
        found, _ = collect_logs(config.logs_dir, issue)
        known = {log["local_path"] for log in entry["logs"]}
        result["new_logs"] = [f.relative for f in found if f.relative not in known]
        if not result["new_logs"]:
            return _settle(repo, entry, result, commit=commit)
        progress(f"{len(result['new_logs'])} log(s) of issue #{issue} appeared since it was "
                 "archived")
    if repo.dry_run:
        plan = prepare(repo, issue, reason=reason, force=force)
        result.update(status="ok", plan=plan["files"], collected=len(plan["found"]))
        return result

    progress(f"collecting and compressing logs of issue #{issue}")
    if commit and config.commit:  # the main thread mostly waits while logs are compressed
        from log_archiver.integrations.git import import_in_background

        import_in_background()
    plan = prepare(repo, issue, reason=reason, force=force,
                   title=issue_info.get("title"), url=issue_info.get("url"))
    result["collected"] = len(plan["found"])
    if not plan["found"] and not (entry or {}).get("logs"):
        result["message"] = f"No logs found for issue #{issue}; an empty entry records that"
    result["skipped"] = plan["skipped"]
    result["errors"].extend(plan["errors"])
    progress(f"uploading to {repo.store.url}")
    report = upload_records(repo, issue, retry_failed=retry or force, overwrite=force)
    result["upload"] = asdict(report)
    entry = _still_indexed(repo, issue, "after its logs were uploaded")
    result["compressed"] = _compression_summary(entry)
    partial = entry["partial_archive"] or bool(plan["errors"])

    progress("rendering the issue comment")
    result["comment"] = _comment(repo, entry, result)
    progress("freeing local disk")
    cleaned = cleanup_local(repo, issue, only_compressed=partial)
    result["cleanup"] = asdict(cleaned)
    if commit and config.commit:
        result["commit"] = _commit(repo, issue, cleaned.freed_bytes)
        if result["commit"]["status"] == "error":
            result["warnings"].append(f"index not committed: {result['commit']['message']}; "
                                      f"{result['commit']['hint']}")
    else:
        result["commit"] = {"status": "noop", "reason": "committing was turned off"}
    entry = _still_indexed(repo, issue, "after its local files were cleaned up",
                           deleted=bool(cleaned.deleted))
    result["entry"] = _entry_summary(entry)
    if partial:
        result["status"] = "partial"
        result["failed_files"] = ([f["local_path"] for f in report.failed]
                                  + [_relative(error["file"], config.logs_dir)
                                     for error in plan["errors"]])
        result["hint"] = f"run `log-archiver archive {issue} --retry` once the cause is fixed"
        if any(f.get("type") == "storage_conflict" for f in report.failed):
            result["hint"] += (f"; a different object already at a key is replaced only by "
                               f"`log-archiver archive {issue} --force`")
    else:
        result["status"] = "ok"
    return result


def _still_indexed(repo: Repository, issue: int, moment: str, *, deleted: bool = False) -> dict:
    """The entry of ``issue``, or a clear error when the index lost it (restored by git)."""
    entry = repo.index.find(issue)
    if entry is not None:
        return entry
    if deleted:
        hint = (f"run `log-archiver archive {issue} --reindex-only`: it records again the logs "
                "that were deleted here from their verified copies in the store")
    else:
        hint = (f"run `log-archiver archive {issue}` again: stored objects are found and "
                "kept, nothing is uploaded twice")
    raise NotArchivedError(f"the entry of issue {issue} left {repo.index.path} {moment} (was "
                           "the index restored or another branch checked out?)", hint)


def _settle(repo: Repository, entry: dict, result: dict, *, commit: bool) -> dict:
    """An issue archived whole: post its comment and commit the index if an earlier run
    could not (``ok``), or change nothing at all (``noop``)."""
    issue = entry["issue_number"]
    result.update(entry=_entry_summary(entry),
                  message=f"issue #{issue} is already archived ({entry['archived_at']})")
    client = note_github(repo, result)
    did = []
    if client is not None and not repo.dry_run:
        result["comment"] = _comment(repo, entry, result)
        if result["comment"]["action"] in ("created", "updated"):
            did.append(f"comment {result['comment']['action']}")
    if commit and repo.config.commit and not repo.dry_run:
        result["commit"] = _commit(repo, issue, None)
        if result["commit"]["status"] == "ok":
            did.append("index committed")
    result["status"] = "ok" if did else "noop"
    if did:
        result["message"] += "; " + " and ".join(did) + " now"
    return result


def _comment(repo: Repository, entry: dict, result: dict) -> dict:
    body = render_comment(entry, logs_dir=repo.config.logs_dir)
    published = publish_comment(note_github(repo, result), entry["issue_number"], body)
    posted = published["status"] in ("created", "updated", "unchanged")
    if published["status"] == "failed":
        result["warnings"].append(f"comment not posted: {published['error']['message']}")
    return {"body": body, "posted": posted, "action": published["status"],
            "url": published.get("url"), "reason": published.get("reason")}


def _commit(repo: Repository, issue: int, freed: int | None) -> dict:
    from log_archiver.integrations.git import commit_archive

    try:
        return commit_archive(repo.index, issue, repo_root=repo.config.root, freed_bytes=freed)
    except ArchiveError as error:
        return {"status": "error", **error.to_dict()}


def _relative(path: str, logs_dir) -> str:
    try:
        return Path(path).relative_to(logs_dir).as_posix()
    except ValueError:
        return str(path)


def _compression_summary(entry: dict) -> dict:
    packed = [log for log in entry["logs"] if log["compressed"]]
    before = sum(log["original_size_bytes"] for log in packed)
    after = sum(log["size_bytes"] for log in packed)
    return {"files": len(packed), "original_bytes": before, "stored_bytes": after,
            "reduction": round(1 - after / before, 4) if before else 0.0}


def _entry_summary(entry: dict) -> dict:
    keys = ("issue_number", "archived_at", "archive_reason", "total_logs", "total_size_bytes",
            "total_original_size_bytes", "compression_ratio", "partial_archive",
            "upload_complete", "retry_count")
    summary = {key: entry[key] for key in keys}
    summary["remote_folder"] = (entry["logs"][0]["remote_path"].rsplit("/", 1)[0]
                                if entry["logs"] else None)
    return summary

"""``archive ISSUE``: every step of the workflow in one process, in order."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from log_archiver.archive.cleanup import CleanupReport, cleanup_local, lost_errors
from log_archiver.archive.collect import collect
from log_archiver.archive.prepare import (
    UNPREPARED,
    changed_since_archived,
    prepare,
    relative_to_logs,
)
from log_archiver.archive.trigger import check_reason, note_github
from log_archiver.archive.upload import check_same_store, upload_records
from log_archiver.errors import ArchiveError, NotArchivedError
from log_archiver.integrations.comment import render_comment
from log_archiver.integrations.github import publish_comment
from log_archiver.model.states import entry_state
from log_archiver.repository import Repository


def archive(repo: Repository, issue: int, **options) -> dict:
    """Run the whole workflow; returns the JSON payload (``status`` included).

    An issue with no entry and no logs is a ``noop`` that records, posts and commits
    nothing (a mistyped number stays harmless), unless ``allow_empty``. Its audit lines
    are synced together, each before the index records what it says."""
    from log_archiver.search.archive_hook import archive_indexing

    # the search index is written last: its grams are computed while the logs upload
    indexing = None if options.get("ahead") is not None else archive_indexing(repo)
    try:
        with repo.audit_deferred(), repo.keeping_pools(), repo.index.deferring_validity():
            return _archive(repo, issue, indexing=indexing, **options)
    finally:
        if indexing is not None:
            indexing.close()


def _archive(repo: Repository, issue: int, *, reason: str = "manual", force: bool = False,
             retry: bool = False, pr: int | None = None, commit: bool = True,
             allow_empty: bool = False, progress=lambda message: None, ahead=None,
             indexing=None, clean: bool = True) -> dict:
    config, events = repo.config, repo.events
    result: dict = {"issue_number": issue, "reason": reason, "index_path": str(repo.index.path),
                    "storage_url": config.storage, "warnings": [], "errors": []}
    entry = repo.index.find(issue)
    state = entry_state(entry)
    result["previous_state"] = state
    if state != "done" or force:
        check_same_store(entry, repo.store, move=force)
    collected = None
    if entry is None:  # a new issue: its logs are collected once, before anything else
        events.emit("stage", issue=issue, stage="collecting")
        progress(f"collecting and compressing logs of issue #{issue}")
        collected = collect(repo, issue)
        if not collected[0] and not allow_empty:
            result.update(status="noop", collected=0,
                          skipped=[vars(s) for s in collected[1]],
                          message=f"No logs of issue #{issue} found under {config.logs_dir}; "
                                  "nothing was archived, posted or committed")
            return result
    # the issue's title is asked of GitHub only while the entry does not know it
    issue_info = check_reason(repo, issue, reason, pr, force, result,
                              describe=force or not (entry or {}).get("issue_title"))
    if state == "done" and not force:
        collected = collect(repo, issue)
        known = {log["local_path"] for log in entry["logs"]}
        result["new_logs"] = [f.relative for f in collected[0] if f.relative not in known]
        if not result["new_logs"]:  # (with new logs, prepare looks for changed ones)
            result["changed_logs"] = changed_since_archived(entry, collected[0], config)
            return _report_changed(_settle(repo, entry, result, commit=commit), issue)
        progress(f"{len(result['new_logs'])} log(s) of issue #{issue} appeared since it was "
                 "archived")
    if repo.dry_run:
        plan = prepare(repo, issue, reason=reason, force=force, allow_empty=allow_empty,
                       collected=collected)
        result.update(status="ok", plan=plan["files"], collected=len(plan["found"]),
                      redaction=plan["redaction"])
        return result

    if entry is not None:
        events.emit("stage", issue=issue, stage="collecting")
        progress(f"collecting and compressing logs of issue #{issue}")
    plan = prepare(repo, issue, reason=reason, force=force, title=issue_info.get("title"),
                   url=issue_info.get("url"), allow_empty=allow_empty, collected=collected,
                   labels=issue_info.get("labels"), ahead=ahead, indexing=indexing)
    result["collected"] = len(plan["found"])
    result["already_stored"] = plan["already_stored"]
    if not plan["found"] and not (entry or {}).get("logs"):
        result["message"] = f"No logs found for issue #{issue}; an empty entry records that " \
                            "(--allow-empty)"
    result["skipped"] = plan["skipped"]
    result["errors"].extend(plan["errors"])
    result["redaction"] = plan["redaction"]
    events.emit("stage", issue=issue, stage="uploading")
    progress(f"uploading to {repo.store.url}")
    report = upload_records(repo, issue, retry_failed=retry or force, move_on_conflict=force)
    result["upload"] = asdict(report)
    entry = _still_indexed(repo, issue, "after its logs were uploaded")
    result["compressed"] = _compression_summary(entry)
    partial = entry["partial_archive"] or bool(plan["errors"])

    events.emit("stage", issue=issue, stage="commenting")
    progress("rendering the issue comment")
    result["comment"] = _comment(repo, entry, result)
    tail = CleanupDue(entry=entry, partial=partial, plan_errors=plan["errors"],
                      changed=plan["changed"], reason=reason, commit=commit)
    if not clean:
        result["cleanup_due"] = tail  # (the batch cleans several issues at once)
        return result
    events.emit("stage", issue=issue, stage="cleaning")
    progress("freeing local disk")
    return finish_archive(repo, result, cleanup_local(repo, issue, only_compressed=partial),
                          tail)


@dataclass
class CleanupDue:
    """What an archive stopped before its cleanup (``clean=False``) needs to finish."""

    entry: dict         # as its uploads left it
    partial: bool       # (then only the compressed copies are cleaned up)
    plan_errors: list
    changed: list
    reason: str
    commit: bool


def finish_archive(repo: Repository, result: dict, cleaned: CleanupReport,
                   tail: CleanupDue) -> dict:
    """The rest of an archive once its local files are cleaned up: its audit line, its
    commit, and its status."""
    issue, config, events = result["issue_number"], repo.config, repo.events
    result.pop("cleanup_due", None)
    result["cleanup"] = asdict(cleaned)
    result["errors"].extend(lost_errors(cleaned, issue))
    partial = tail.partial or bool(cleaned.lost or cleaned.requeued)
    # before the commit, so that its audit line is committed with the index it describes
    done = (repo.index.find(issue) or tail.entry) if events.listening else tail.entry
    events.emit("issue.archived", issue=issue, bytes=done["total_size_bytes"],
                status="partial" if partial else "ok", logs=done["total_logs"],
                original_bytes=done["total_original_size_bytes"], reason=tail.reason)
    if tail.commit and config.commit:
        events.emit("stage", issue=issue, stage="committing")
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
        result["failed_files"] = ([f["local_path"] for f in result["upload"]["failed"]]
                                  + [relative_to_logs(error["file"], config.logs_dir)
                                     for error in tail.plan_errors])
        result["hint"] = f"run `log-archiver archive {issue} --retry` once the cause is fixed"
        if any(f.get("type") == "storage_conflict" for f in result["upload"]["failed"]):
            result["hint"] += (f"; a different object already at a key is kept, and the log is "
                               f"stored under a key of its own by "
                               f"`log-archiver archive {issue} --force`")
        _explain_partial_reason(entry, result)
    else:
        result["status"] = "ok"
    result["changed_logs"] = tail.changed
    return _report_changed(result, issue)


def _explain_partial_reason(entry: dict, result: dict) -> None:
    """A reason set by hand keeps an entry partial whatever uploads: say it, and how to
    clear it."""
    reason = entry.get("partial_reason")
    if not reason:
        return
    result["partial_reason"] = reason
    if not reason.startswith(UNPREPARED):
        issue = entry["issue_number"]
        result["hint"] = (f"the entry is marked partial: {reason!r}; once that is fixed, run "
                          f"`mark-partial-archive {issue} --clear`, then "
                          f"`log-archiver archive {issue} --retry` if logs are still to upload")


def _report_changed(result: dict, issue: int) -> dict:
    """Logs that changed after they were archived are never a silent success."""
    changed = result.get("changed_logs") or []
    if not changed:
        return result
    shown = ", ".join(changed[:5]) + (", ..." if len(changed) > 5 else "")
    result["warnings"].append(
        f"{len(changed)} log(s) changed since they were archived ({shown}): the stored "
        "versions are kept and the new content is not archived yet")
    if result["status"] in ("ok", "noop"):
        result["status"] = "partial"
        result["hint"] = (f"run `log-archiver archive {issue} --force` to archive the new "
                          "versions under keys of their own; the stored versions are kept "
                          "(listed in the entry's kept_objects)")
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
    could not (``ok``), or change nothing at all (``noop``). A commit that was due and
    failed makes it ``partial``: the archive stands, the commit step is still to run."""
    issue = entry["issue_number"]
    result.update(entry=_entry_summary(entry),
                  message=f"issue #{issue} is already archived ({entry['archived_at']})")
    client = note_github(repo, result)
    did = []
    if not repo.dry_run and repo.audit is not None and not _archive_line_written(repo, entry):
        # the run that finished this archive was stopped before its audit line
        repo.events.emit("issue.archived", issue=issue, bytes=entry["total_size_bytes"],
                         status="ok", logs=entry["total_logs"], reason=entry["archive_reason"],
                         original_bytes=entry["total_original_size_bytes"], recovered=True)
    if client is not None and not repo.dry_run:
        result["comment"] = _comment(repo, entry, result)
        if result["comment"]["action"] in ("created", "updated"):
            did.append(f"comment {result['comment']['action']}")
    failed = False
    if commit and repo.config.commit and not repo.dry_run:
        result["commit"] = _commit(repo, issue, None)
        if result["commit"]["status"] == "ok":
            did.append("index committed" if result["commit"].get("committed", True)
                       else "git index repaired")
        elif result["commit"]["status"] == "error":
            failed = True
            result["warnings"].append(
                f"index not committed: {result['commit']['message']}; once that is fixed, "
                f"run `log-archiver commit {issue}`")
            result["hint"] = f"run `log-archiver commit {issue}` once the cause is fixed"
    result["status"] = "partial" if failed else "ok" if did else "noop"
    if did:
        result["message"] += "; " + " and ".join(did) + " now"
    return result


def _archive_line_written(repo: Repository, entry: dict) -> bool:
    """Whether the audit trail holds an ``archive`` line of ``entry``'s issue from after
    its last upload (the run that finished the archive writes one)."""
    from log_archiver.audit.reader import has_line

    stamps = [entry.get("archived_at"), *(log.get("upload_timestamp") for log in entry["logs"])]
    last = max((stamp for stamp in stamps if isinstance(stamp, str)), default="")
    return has_line(repo.audit.folder, since=last or "0000-01-01", issue=entry["issue_number"],
                    op="archive")


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
        return commit_archive(repo.index, issue, repo_root=repo.config.root, freed_bytes=freed,
                              untrack_logs=repo.config.untrack_cleaned_logs)
    except ArchiveError as error:
        return {"status": "error", **error.to_dict()}


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

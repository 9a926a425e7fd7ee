"""``archive ISSUE``: every step of the workflow in one process, in order."""

from __future__ import annotations

from dataclasses import asdict

from log_archiver.archive.cleanup import cleanup_local
from log_archiver.archive.prepare import Context, archive_state, prepare
from log_archiver.archive.upload import check_same_store, upload_records
from log_archiver.errors import ArchiveError
from log_archiver.events import Events


def archive(ctx: Context, issue: int, *, reason: str = "manual", force: bool = False,
            retry: bool = False, pr: int | None = None, commit: bool = True,
            progress=lambda message: None, events: Events | None = None) -> dict:
    """Run the whole workflow; returns the JSON payload (``status`` included)."""
    config = ctx.config
    events = events or Events()
    result: dict = {"issue_number": issue, "reason": reason, "index_path": str(ctx.index.path),
                    "storage_url": config.storage, "warnings": [], "errors": []}
    entry = ctx.index.find(issue)
    state = archive_state(entry)
    result["previous_state"] = state
    if state != "done" or force:
        check_same_store(entry, ctx.store, move=force)
    issue_info = check_reason(ctx, issue, reason, pr, force, result)
    if state == "done" and not force:
        from log_archiver.archive.collect import collect_logs

        found, _ = collect_logs(config.logs_dir, issue)
        known = {log["local_path"] for log in entry["logs"]}
        result["new_logs"] = [f.relative for f in found if f.relative not in known]
        if not result["new_logs"]:
            return _settle(ctx, entry, result, commit=commit)
        progress(f"{len(result['new_logs'])} log(s) of issue #{issue} appeared since it was "
                 "archived")
    if ctx.dry_run:
        plan = prepare(ctx, issue, reason=reason, force=force)
        result.update(status="ok", plan=plan["files"], collected=len(plan["found"]))
        return result

    events.emit("stage", issue=issue, stage="collecting")
    progress(f"collecting and compressing logs of issue #{issue}")
    if commit and config.commit:  # the main thread mostly waits while logs are compressed
        from log_archiver.integrations.git import import_in_background

        import_in_background()
    plan = prepare(ctx, issue, reason=reason, force=force,
                   title=issue_info.get("title"), url=issue_info.get("url"), events=events)
    result["collected"] = len(plan["found"])
    if not plan["found"] and not (entry or {}).get("logs"):
        result["message"] = f"No logs found for issue #{issue}; an empty entry records that"
    result["skipped"] = plan["skipped"]
    result["errors"].extend(plan["errors"])
    events.emit("stage", issue=issue, stage="uploading")
    progress(f"uploading to {ctx.store.url}")
    report = upload_records(ctx.index, issue, ctx.store, config.logs_dir,
                            retry_failed=retry or force, overwrite=force, policy=ctx.policy,
                            concurrency=config.upload_concurrency, events=events)
    result["upload"] = asdict(report)
    entry = ctx.index.read_entry(issue)
    result["compressed"] = _compression_summary(entry)
    partial = entry["partial_archive"] or bool(plan["errors"])

    events.emit("stage", issue=issue, stage="commenting")
    progress("rendering the issue comment")
    result["comment"] = _comment(ctx, entry, result)
    events.emit("stage", issue=issue, stage="cleaning")
    progress("freeing local disk")
    cleaned = cleanup_local(ctx.index, issue, config.logs_dir, store=ctx.store,
                            policy=ctx.policy, only_compressed=partial, workers=config.workers)
    result["cleanup"] = asdict(cleaned)
    if commit and config.commit:
        events.emit("stage", issue=issue, stage="committing")
        result["commit"] = _commit(ctx, issue, cleaned.freed_bytes)
        if result["commit"]["status"] == "error":
            result["warnings"].append(f"index not committed: {result['commit']['message']}; "
                                      f"{result['commit']['hint']}")
    else:
        result["commit"] = {"status": "noop", "reason": "committing was turned off"}
    entry = ctx.index.read_entry(issue)
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


def _settle(ctx: Context, entry: dict, result: dict, *, commit: bool) -> dict:
    """An issue archived whole: post its comment and commit the index if an earlier run
    could not (``ok``), or change nothing at all (``noop``)."""
    issue = entry["issue_number"]
    result.update(entry=_entry_summary(entry),
                  message=f"issue #{issue} is already archived ({entry['archived_at']})")
    client = _github(ctx, result)
    did = []
    if client is not None and not ctx.dry_run:
        result["comment"] = _comment(ctx, entry, result)
        if result["comment"]["action"] in ("created", "updated"):
            did.append(f"comment {result['comment']['action']}")
    if commit and ctx.config.commit and not ctx.dry_run:
        result["commit"] = _commit(ctx, issue, None)
        if result["commit"]["status"] == "ok":
            did.append("index committed")
    result["status"] = "ok" if did else "noop"
    if did:
        result["message"] += "; " + " and ".join(did) + " now"
    return result


def _github(ctx: Context, result: dict):
    """A GitHub client for the configured repository, or None (and a warning) without one."""
    if "github" not in ctx.__dict__:
        from log_archiver.integrations.github import GitHubClient

        try:
            ctx.__dict__["github"] = GitHubClient.from_config(ctx.config, policy=ctx.policy)
        except ArchiveError as error:
            result["warnings"].append(f"GitHub steps skipped: {error.message}")
            ctx.__dict__["github"] = None
            ctx.__dict__["github_error"] = error
        if ctx.__dict__["github"] is None and not any("GitHub" in w for w in result["warnings"]):
            result["warnings"].append("GitHub steps skipped: no GitHub repository is known "
                                      "(set GITHUB_REPOSITORY=owner/name)")
    return ctx.__dict__["github"]


def check_reason(ctx: Context, issue: int, reason: str, pr, force: bool, result) -> dict:
    """The issue's title and URL when GitHub answers; raises when the reason does not hold.

    ``--force`` skips the check; ``manual`` needs none.
    """
    from log_archiver.integrations.github import check_trigger

    client = _github(ctx, result)
    if not force:
        if client is None and reason in ("issue_closed", "pr_merged") \
                and "github_error" in ctx.__dict__:
            raise ctx.__dict__["github_error"]  # the cause, not just "no repository known"
        result["trigger"] = check_trigger(client, issue, reason, pr=pr)
    if client is None:
        return {}
    info = (result.get("trigger") or {}).get("issue")
    if info is None:
        try:
            info = client.issue(issue)
        except ArchiveError as error:
            result["warnings"].append(f"issue title not fetched: {error.message}")
            return {}
    return {"title": info.get("title"), "url": info.get("url")}


def _comment(ctx: Context, entry: dict, result: dict) -> dict:
    from log_archiver.integrations.comment import render_comment
    from log_archiver.integrations.github import publish_comment

    body = render_comment(entry, logs_dir=ctx.config.logs_dir)
    published = publish_comment(_github(ctx, result), entry["issue_number"], body)
    posted = published["status"] in ("created", "updated", "unchanged")
    if published["status"] == "failed":
        result["warnings"].append(f"comment not posted: {published['error']['message']}")
    return {"body": body, "posted": posted, "action": published["status"],
            "url": published.get("url"), "reason": published.get("reason")}


def _commit(ctx: Context, issue: int, freed: int | None) -> dict:
    from log_archiver.integrations.git import commit_archive

    try:
        return commit_archive(ctx.index, issue, repo_root=ctx.config.root, freed_bytes=freed)
    except ArchiveError as error:
        return {"status": "error", **error.to_dict()}


def _relative(path: str, logs_dir) -> str:
    from pathlib import Path

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

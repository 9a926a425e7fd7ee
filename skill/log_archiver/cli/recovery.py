"""Recovery tools: update-index, update-file-status, mark-partial-archive,
retry-failed-uploads, cleanup-local."""

from __future__ import annotations

from dataclasses import asdict

import click

from log_archiver.cli import output
from log_archiver.cli.options import (
    build_repository,
    common_options,
    dry_run_option,
    issue_argument,
    optional_issue_argument,
)


@click.command("update-index")
@issue_argument
@click.argument("metadata", type=click.File("rb"))
@common_options
def update_index_command(issue, metadata, settings):
    """Add or replace the index entry of ISSUE from METADATA (a JSON file, or -).

    Logs claimed stored (uploaded, verified, cleaned) are recorded so only when the
    stored object verifies; otherwise pending (status partial, exit 3).
    """
    from log_archiver.archive.repair import load_metadata, update_index

    def body():
        data = load_metadata(metadata.read(), metadata.name)
        result = update_index(build_repository(settings), issue, data)
        errors = [{"type": "not_stored", "message": f"{d['local_path']} was claimed "
                   f"{d['claimed']} but {d['reason']}; recorded as pending",
                   "retryable": True, "file": d["local_path"],
                   "hint": f"run `retry-failed-uploads {issue} --execute` to upload it"}
                  for d in result["downgraded"]]
        return {"issue_number": issue, **result, "errors": errors}

    output.run("update-index", body, quiet=settings["quiet"])


@click.command("update-file-status")
@issue_argument
@click.argument("file")
@click.argument("status", type=click.Choice(["pending", "retrying", "failed", "uploaded"]))
@click.argument("cloud_url", required=False)
@click.option("--error", "error_text", default=None, help="The error to record with failed.")
@common_options
def update_file_status_command(issue, file, status, cloud_url, error_text, settings):
    """Record the upload STATUS of one FILE of ISSUE (pending, retrying, failed, uploaded)."""
    from log_archiver.archive.repair import update_file_status

    def body():
        return {"status": "ok", "issue_number": issue,
                **update_file_status(build_repository(settings), issue, file, status, cloud_url,
                                     error_text)}

    output.run("update-file-status", body, quiet=settings["quiet"])


@click.command("mark-partial-archive")
@issue_argument
@click.argument("reason", required=False)
@click.option("--clear", is_flag=True,
              help="Remove the partial flag a REASON set, once its cause is fixed.")
@common_options
def mark_partial_archive_command(issue, reason, clear, settings):
    """Flag the archive of ISSUE as partial, recording REASON (e.g. index update failed).

    With --clear (and no REASON), remove that flag again; the entry stays partial only
    while some of its logs are not stored.
    """
    from log_archiver.archive.repair import mark_partial

    if clear == (reason is not None):
        raise click.UsageError("pass either REASON or --clear" if not clear else
                               "--clear takes no REASON")

    def body():
        return {"status": "ok", "issue_number": issue,
                **mark_partial(build_repository(settings), issue, reason)}

    output.run("mark-partial-archive", body, quiet=settings["quiet"])


@click.command("retry-failed-uploads")
@issue_argument
@click.option("--execute", is_flag=True, help="Upload them now instead of only listing them.")
@common_options
def retry_failed_uploads_command(issue, execute, settings):
    """List the files of ISSUE still to upload (failed or pending); --execute uploads them."""
    from log_archiver.archive.upload import upload_records, wants_upload
    from log_archiver.util.paths import check_entry_paths

    def body():
        ctx = build_repository(settings)
        entry = ctx.index.read_entry(issue)
        check_entry_paths(entry, ctx.logs_dir)  # before local_exists looks at any path
        todo = [log for log in entry["logs"] if wants_upload(log, retry_failed=True)]

        def described(logs):
            return [{"local_path": log["local_path"], "stored_path": log["stored_path"],
                     "remote_path": log["remote_path"], "upload_status": log["upload_status"],
                     "last_error": log["last_error"],
                     "local_exists": (ctx.logs_dir / log["stored_path"]).exists()}
                    for log in logs]

        if not todo:
            return {"status": "noop", "issue_number": issue, "files": []}
        if not execute:
            return {"status": "ok", "issue_number": issue, "files": described(todo)}
        report = upload_records(ctx, issue, retry_failed=True)
        # the files as they are now, after the uploads (the same logs, re-read)
        names = {log["local_path"] for log in todo}
        after = [log for log in ctx.index.read_entry(issue)["logs"] if log["local_path"] in names]
        return {"status": "partial" if report.failed else "ok", "issue_number": issue,
                "files": described(after), **asdict(report)}

    output.run("retry-failed-uploads", body, quiet=settings["quiet"])


@click.command("cleanup-local")
@optional_issue_argument
@click.option("--orphans", is_flag=True,
              help="Instead of one issue's logs, remove what abandoned runs left: compressed "
                   "copies no index entry names (over 7 days old), temp files (over 24 h), "
                   "lock files no process holds (over 1 h); in the store, temp files of dead "
                   "uploads (file://) and multipart uploads begun over 24 h ago (S3).")
@dry_run_option
@common_options
def cleanup_local_command(issue, orphans, dry_run, settings):
    """Delete the local logs of ISSUE whose stored copy is verified; keep the index.

    With --orphans (and no ISSUE), remove orphaned files under the logs dir instead.
    """
    from log_archiver.archive.cleanup import cleanup_local, lost_errors
    from log_archiver.errors import UsageError

    def body():
        if orphans == (issue is not None):
            raise UsageError("pass either ISSUE or --orphans, not both" if orphans else
                             "no ISSUE given", "run `cleanup-local ISSUE` to free one issue's "
                             "logs, or `cleanup-local --orphans` for abandoned files")
        ctx = build_repository(settings, dry_run)
        if orphans:
            return _orphans(ctx, dry_run)
        report = cleanup_local(ctx, issue)
        errors = [{"type": "local_file", "message": f"cannot delete {f['path']}: {f['message']}",
                   "retryable": False, "hint": "fix its permissions and run cleanup-local again"}
                  for f in report.failed] + lost_errors(report, issue)
        status = "error" if errors else (
            "partial" if report.requeued else ("ok" if report.deleted else "noop"))
        payload = {"status": status, "issue_number": issue, **asdict(report), "errors": errors}
        if report.requeued:
            payload["hint"] = (f"run `log-archiver archive {issue}` to upload again the logs "
                               "whose stored copy went missing")
        return payload

    def human(doc):
        from log_archiver.cli.render import orphan_summary

        return orphan_summary(doc) if orphans else None

    output.run("cleanup-local", body, dry_run=dry_run, quiet=settings["quiet"], human=human)


def _orphans(ctx, dry_run: bool) -> dict:
    from log_archiver.archive.leftovers import remove_leftovers

    ctx.check_logs_dir()
    report = remove_leftovers(ctx.index, ctx.logs_dir, dry_run=dry_run, store=ctx.store)
    errors = [_orphan_error(failure) for failure in report.failed]
    status = "error" if report.failed else ("ok" if report.orphans else "noop")
    return {"status": status, "mode": "orphans", "logs_dir": str(ctx.logs_dir),
            **asdict(report), "errors": errors}


def _orphan_error(failure: dict) -> dict:
    if "type" in failure:  # the store's
        return {"type": failure["type"], "message": f"{failure['path']}: {failure['message']}",
                "retryable": failure["retryable"], "hint": failure["hint"]}
    return {"type": "local_file", "message": f"cannot delete {failure['path']}: "
            f"{failure['message']}", "retryable": False,
            "hint": "fix its permissions and run cleanup-local --orphans again"}

"""The workflow steps: archive, collect-logs, compress-logs, prepare-upload, file-manager."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import click

from log_archiver.cli import output
from log_archiver.cli.options import (
    CommandGroup,
    build_repository,
    common_options,
    dry_run_option,
    issue_argument,
    issues_callback,
)
from log_archiver.cli.redaction import no_redact_option
from log_archiver.errors import UsageError

REASON = click.Choice(["issue_closed", "pr_merged", "manual", "retention"])


@click.command("archive")
@click.argument("issues", nargs=-1, callback=issues_callback, metavar="ISSUE...")
@click.option("--all-closed", is_flag=True,
              help="Every issue with logs on disk that GitHub says is closed (reason "
                   "issue_closed); the open ones are listed as skipped. Takes no ISSUE.")
@click.option("--since", type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%SZ",
                                              "%Y-%m-%dT%H:%M:%S"]), default=None,
              help="With --all-closed: only issues closed at or after DATE (UTC).")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="With --all-closed: archive at most N issues (the lowest numbers first).")
@click.option("--reason", type=REASON, default="manual", show_default=True,
              help="Why the logs are archived; issue_closed and pr_merged are checked on GitHub.")
@click.option("--force", is_flag=True,
              help="Archive again even if already archived; a log whose stored copy differs "
                   "gets a key of its own (the stored copy is kept).")
@click.option("--retry", is_flag=True, help="Upload again the files that failed before.")
@click.option("--pr", type=click.IntRange(min=1), default=None,
              help="The pull request that must be merged (with --reason pr_merged).")
@click.option("--no-commit", is_flag=True, help="Leave the updated index uncommitted.")
@click.option("--allow-empty", is_flag=True,
              help="Record (comment on, commit) an empty entry when ISSUE has no logs; "
                   "without it such a run changes nothing.")
@click.option("--reindex-only", is_flag=True,
              help="Only rebuild the index entry of ISSUE from the store and the local files "
                   "(after a failed index update); uploads and deletes nothing.")
@dry_run_option
@common_options
@no_redact_option
@click.pass_context
def archive_command(ctx, issues, all_closed, since, limit, reason, force, retry, pr, no_commit,
                    allow_empty, reindex_only, dry_run, settings):
    """Archive every log of ISSUE: collect, compress, upload, index, comment, clean, commit.

    With several ISSUEs (or --all-closed) each is archived as alone, the others go on when
    one fails, and one commit at the end names them all; a rerun of a batch that was
    stopped skips what is already archived."""
    if all_closed or len(issues) > 1 or since is not None or limit is not None:
        from log_archiver.cli.batch import run_batch

        return run_batch(ctx, issues, all_closed=all_closed, since=since, limit=limit,
                         reason=reason, force=force, retry=retry, pr=pr, no_commit=no_commit,
                         allow_empty=allow_empty, reindex_only=reindex_only, dry_run=dry_run,
                         settings=settings)
    if not issues:
        raise click.UsageError("Missing argument 'ISSUE...' (or --all-closed).", ctx)
    issue = issues[0]
    if pr is not None and reason != "pr_merged":
        raise click.UsageError(f"--pr {pr} needs --reason pr_merged (the reason is {reason})")
    from log_archiver.archive.pipeline import archive
    from log_archiver.cli.progress import progress_display
    from log_archiver.cli.render import archive_summary
    from log_archiver.cli.render_redaction import with_redaction

    if reindex_only:
        return _reindex(issue, force or retry, dry_run, settings)

    def body():
        ctx = build_repository(settings, dry_run)
        with progress_display(quiet=settings["quiet"], events=ctx.events) as shown:
            result = archive(ctx, issue, reason=reason, force=force, retry=retry, pr=pr,
                             commit=not no_commit, allow_empty=allow_empty,
                             progress=shown.say)
        return shown.report(result)

    output.run("archive", body, dry_run=dry_run, quiet=settings["quiet"],
               human=with_redaction(archive_summary))


def _reindex(issue, other_mode, dry_run, settings):
    from log_archiver.archive.reindex import reindex
    from log_archiver.cli.render import reindex_summary

    def body():
        if other_mode:
            raise UsageError("--reindex-only cannot be combined with --force or --retry",
                             f"run `log-archiver archive {issue} --reindex-only` first, then "
                             f"`log-archiver archive {issue} --retry`")
        return reindex(build_repository(settings, dry_run), issue)

    output.run("archive", body, dry_run=dry_run, quiet=settings["quiet"], human=reindex_summary)


@click.command("collect-logs")
@issue_argument
@common_options
def collect_logs_command(issue, settings):
    """List the logs of ISSUE under the logs dir (sessions, builds, deployments, debug)."""
    from log_archiver.archive.collect import collect

    def body():
        ctx = build_repository(settings)
        found, skipped = collect(ctx, issue)
        return {"status": "ok", "issue_number": issue, "logs_dir": str(ctx.logs_dir),
                "files": [str(f.path) for f in found],
                "logs": [{"path": str(f.path), "local_path": f.relative, "type": f.type,
                          "size_bytes": f.size} for f in found],
                "skipped": [asdict(s) for s in skipped]}

    output.run("collect-logs", body, quiet=settings["quiet"])


@click.command("compress-logs")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@common_options
@no_redact_option
def compress_logs_command(files, settings):
    """Compress each FILE over the size threshold; report what will be uploaded."""
    from log_archiver.archive.prepare import compress

    def body():
        ctx = build_repository(settings)
        missing = [str(f) for f in files if not f.is_file()]
        if missing:
            raise UsageError(f"not a file: {', '.join(missing)}",
                             "pass log files, e.g. the paths collect-logs prints")
        stored, errors = compress(ctx, [f.absolute() for f in files])
        return {"status": "partial" if errors else "ok",
                "files": [{"source": str(s.source), "path": str(s.path),
                           "compressed": s.compression is not None,
                           "compression": s.compression, "size_bytes": s.size,
                           "original_size_bytes": s.original_size,
                           "checksum": f"sha256:{s.sha256}",
                           **({"redaction": s.redaction} if s.redaction else {})}
                          for s in stored],
                "errors": errors}

    output.run("compress-logs", body, quiet=settings["quiet"])


@click.command("prepare-upload")
@issue_argument
@click.option("--reason", type=REASON, default="manual", show_default=True,
              help="Archive reason recorded in a new index entry.")
@click.option("--force", is_flag=True, help="Prepare again logs that are already stored.")
@click.option("--pr", type=click.IntRange(min=1), default=None,
              help="The pull request that must be merged (with --reason pr_merged).")
@dry_run_option
@common_options
@no_redact_option
def prepare_upload_command(issue, reason, force, pr, dry_run, settings):
    """Compress and checksum the logs of ISSUE and record the upload plan in the index.

    issue_closed and pr_merged are checked on GitHub first, as archive does (--force
    skips the check)."""
    from log_archiver.archive.prepare import prepare_upload

    if pr is not None and reason != "pr_merged":
        raise click.UsageError(f"--pr {pr} needs --reason pr_merged (the reason is {reason})")

    def body():
        return prepare_upload(build_repository(settings, dry_run), issue, reason=reason, pr=pr,
                              force=force)

    output.run("prepare-upload", body, dry_run=dry_run, quiet=settings["quiet"])


@click.group("file-manager", cls=CommandGroup)
def file_manager_group():
    """Perform storage operations for the archive (the uploading agent's tool)."""


@file_manager_group.command("upload")
@click.argument("plan", type=click.File("rb"))
@click.option("--force", is_flag=True,
              help="Store a log under a key of its own when a different object holds its key "
                   "(that object is kept).")
@common_options
def file_manager_upload(plan, force, settings):
    """Upload the files of PLAN (prepare-upload's output, a file or -), verifying each."""
    from log_archiver.archive.repair_input import plan_files
    from log_archiver.archive.upload import upload_records
    from log_archiver.cli.progress import progress_display

    def body():
        issue, paths = plan_files(plan.read(), plan.name)
        ctx = build_repository(settings)
        with progress_display(quiet=settings["quiet"], events=ctx.events) as shown:
            report = upload_records(ctx, issue, local_paths=paths, retry_failed=True,
                                    move_on_conflict=force)
        shown.report({})
        entry = ctx.index.read_entry(issue)
        status = "partial" if report.failed else (
            "ok" if report.verified or report.already_stored else "noop")
        return {"status": status, "issue_number": issue, "storage_url": ctx.store.url,
                **asdict(report),
                "files": [log for log in entry["logs"] if log["local_path"] in paths]}

    output.run("file-manager", body, quiet=settings["quiet"])

"""``archive ISSUE ISSUE...`` and ``archive --all-closed``: many issues in one process."""

from __future__ import annotations

from datetime import UTC

import click

from log_archiver.cli import output
from log_archiver.cli.options import build_repository


def run_batch(ctx: click.Context, issues: tuple[int, ...], *, all_closed: bool, since, limit,
              reason: str, force: bool, retry: bool, pr, no_commit: bool, allow_empty: bool,
              reindex_only: bool, dry_run: bool, settings: dict) -> None:
    """The batch form of ``archive``: checks the options, then runs the library's batch."""
    if all_closed and issues:
        raise click.UsageError(f"--all-closed takes no ISSUE (got {', '.join(map(str, issues))})"
                               "; name the issues or pass --all-closed", ctx)
    if not all_closed and (since is not None or limit is not None):
        raise click.UsageError("--since and --limit go with --all-closed", ctx)
    if reindex_only:
        raise click.UsageError("--reindex-only takes one ISSUE; run it for each issue", ctx)
    if pr is not None:
        raise click.UsageError(f"--pr {pr} names the pull request of one issue; with several "
                               "issues, leave it out (each issue's merged pull request is found "
                               "on GitHub)", ctx)
    explicit = ctx.get_parameter_source("reason") != click.core.ParameterSource.DEFAULT
    if all_closed and explicit and reason != "issue_closed":
        raise click.UsageError(f"--all-closed archives with reason issue_closed, not {reason}",
                               ctx)
    from log_archiver.cli.progress import progress_display
    from log_archiver.cli.render_batch import batch_summary
    from log_archiver.queue.batch import archive_all_closed, archive_issues

    def body():
        repo = build_repository(settings, dry_run)
        with progress_display(quiet=settings["quiet"]) as shown:
            repo.events = shown.events or repo.events
            common = {"force": force, "retry": retry, "commit": not no_commit,
                      "allow_empty": allow_empty, "progress": shown.say}
            if all_closed:
                result = archive_all_closed(
                    repo, since=None if since is None else since.replace(tzinfo=UTC),
                    limit=limit, **common)
            else:
                result = archive_issues(repo, list(issues), reason=reason, **common)
        return shown.report(result)

    output.run("archive", body, dry_run=dry_run, quiet=settings["quiet"], human=batch_summary)

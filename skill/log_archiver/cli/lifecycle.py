"""The archive's lifetime: gc (retention and orphans), hold and release."""

from __future__ import annotations

import click

from log_archiver.cli import output
from log_archiver.cli.options import (
    _issue_callback,
    build_repository,
    common_options,
    dry_run_option,
    issue_argument,
)
from log_archiver.errors import UsageError


def _grace_callback(ctx, param, value):
    if value is None:
        return None
    from log_archiver.util.durations import parse_grace

    seconds = parse_grace(value)
    if seconds is None:
        raise click.BadParameter(f"{value!r} is not a grace period; use a number and a unit "
                                 "(s, m for minutes, h, d), e.g. 24h or 7d")
    return seconds


@click.command("gc")
@click.option("--issue", "issue", default=None, metavar="N",
              callback=lambda c, p, v: None if v is None else _issue_callback(c, p, v),
              help="Only the logs of issue N.")
@click.option("--orphans", is_flag=True,
              help="Instead of expired logs: objects in the store that no index entry names.")
@click.option("--older-than", "grace", default=None, metavar="AGE", callback=_grace_callback,
              help="With --orphans: only objects older than AGE (default 24h; e.g. 90m, 7d).")
@dry_run_option
@common_options
def gc_command(issue, orphans, grace, dry_run, settings):
    """Delete from the store the logs whose retention ran out, keeping tombstones.

    Retention comes from `retention` in .log-archiver.json (a default, and durations by log
    type, archive reason and issue label; the longest matching rule wins). Held, partial
    and incomplete entries, and logs whose stored copy was never verified, are never
    touched. --dry-run lists exactly what a run would delete and why every other log is
    kept. A failed delete never stops the rest (status partial, exit 3). With --orphans,
    delete the objects under archive/logs/ that no entry names, older than --older-than.
    """
    def body():
        if grace is not None and not orphans:
            raise UsageError("--older-than goes with --orphans",
                             "run `log-archiver gc --orphans --older-than 24h`")
        if orphans and issue is not None:
            raise UsageError("--issue does not go with --orphans",
                             "orphans belong to no entry: run `log-archiver gc --orphans`")
        repo = build_repository(settings, dry_run)
        return _orphans(repo, grace) if orphans else _expired(repo, issue)

    from log_archiver.cli.render_lifecycle import gc_summary

    output.run("gc", body, dry_run=dry_run, quiet=settings["quiet"], human=gc_summary)


def _expired(repo, issue) -> dict:
    from log_archiver.lifecycle.commit import commit, gc_message
    from log_archiver.lifecycle.gc import collect_garbage

    report = collect_garbage(repo, issue=issue)
    payload = {"mode": "expired", "issue_number": issue,
               "retention": {"configured": report.configured, "rules": report.rules},
               "deleted": report.deleted, "already_gone": report.already_gone,
               "failed": report.failed, "kept": report.kept,
               "kept_by_reason": report.kept_by_reason(), "deleted_count": len(report.deleted),
               "deleted_bytes": report.deleted_bytes, "expired_logs": report.expired_logs,
               "issues": report.issues}
    payload["errors"] = [_delete_error(item) for item in report.failed]
    if not report.configured:
        payload["message"] = ("no retention configured (`retention` in .log-archiver.json): "
                              "nothing ever expires")
    if report.expired_logs and not repo.dry_run:
        payload["commit"] = commit(repo, gc_message(report.expired_logs, len(report.deleted),
                                                    report.deleted_bytes, report.issues))
    else:
        payload["commit"] = {"status": "noop", "reason": "the index did not change"}
    changed = report.deleted or report.already_gone or report.expired_logs
    payload["status"] = "partial" if report.failed else "ok" if changed else "noop"
    if report.failed:
        payload["hint"] = ("run `log-archiver gc` again once the cause is fixed: the logs "
                           "that failed keep their mark and are tried again")
    return payload


def _orphans(repo, grace) -> dict:
    from log_archiver.lifecycle.orphans import DEFAULT_GRACE, collect_orphans

    report = collect_orphans(repo, grace=DEFAULT_GRACE if grace is None else grace)
    return {"status": "partial" if report.failed else "ok" if report.orphans else "noop",
            "mode": "orphans", "grace_seconds": int(report.grace_seconds),
            "orphans": report.orphans, "kept": report.kept, "failed": report.failed,
            "not_in_layout": report.not_in_layout, "deleted_count": len(report.orphans),
            "deleted_bytes": report.deleted_bytes,
            "errors": [_delete_error(item) for item in report.failed]}


def _delete_error(item: dict) -> dict:
    where = f"issue {item['issue_number']}"
    if item.get("local_path"):
        where += f", {item['local_path']}"
    return {"type": item["type"], "message": f"cannot delete {item['key']} ({where}): "
            f"{item['message']}", "retryable": item["retryable"], "hint": item["hint"]}


@click.command("hold")
@issue_argument
@click.option("--reason", required=True, metavar="TEXT", help="Why the archive must be kept.")
@common_options
def hold_command(issue, reason, settings):
    """Put the archive of ISSUE on legal hold: nothing deletes it until `release`.

    Recorded in the entry (who, when, why). On an S3 bucket with Object Lock enabled each
    stored object also gets an S3 legal hold; otherwise the output says the hold is kept in
    the index only.
    """
    def body():
        from log_archiver.lifecycle.holds import hold

        repo = build_repository(settings)
        return _hold_payload(repo, issue, hold(repo, issue, reason), on=True)

    from log_archiver.cli.render_lifecycle import hold_summary

    output.run("hold", body, quiet=settings["quiet"], human=hold_summary)


@click.command("release")
@issue_argument
@common_options
def release_command(issue, settings):
    """Lift the legal hold on the archive of ISSUE (and the S3 legal holds of its objects)."""
    def body():
        from log_archiver.lifecycle.holds import release

        repo = build_repository(settings)
        return _hold_payload(repo, issue, release(repo, issue), on=False)

    from log_archiver.cli.render_lifecycle import hold_summary

    output.run("release", body, quiet=settings["quiet"], human=hold_summary)


def _hold_payload(repo, issue: int, report, *, on: bool) -> dict:
    from log_archiver.lifecycle.commit import commit, hold_message

    payload = {"issue_number": issue, "held": on, "changed": report.changed,
               "hold": report.hold, "object_lock": report.object_lock,
               "legal_holds": report.objects, "failed": report.failed}
    if report.changed:
        payload["commit"] = commit(repo, hold_message(issue, report.hold, on=on))
    else:
        payload["commit"] = {"status": "noop", "reason": "the index did not change"}
    payload["errors"] = [{"type": f["type"], "message": (f"{f['key']}: " if f["key"] else "")
                          + f["message"], "retryable": f["retryable"], "hint": f["hint"]}
                         for f in report.failed]
    payload["status"] = ("partial" if report.failed else
                         "ok" if report.changed or report.objects else "noop")
    if report.failed:
        again = f"hold {issue} --reason TEXT" if on else f"release {issue}"
        payload["hint"] = f"run `log-archiver {again}` again once the cause is fixed"
    return payload

"""``scan ISSUE``: what redaction would replace in an issue's logs; and ``--no-redact``,
the flag of the commands that store logs."""

from __future__ import annotations

import functools

import click

from log_archiver.cli import output
from log_archiver.cli.options import build_repository, common_options, issue_argument


def no_redact_option(function):
    """``--no-redact``: store this run's logs as they are (``redaction.enabled`` for one
    run). Put it below ``common_options``: it sets ``settings["redact"]``."""

    @click.option("--no-redact", is_flag=True,
                  help="Store the logs as they are, without replacing secrets "
                       "(redaction.enabled false for this run).")
    @functools.wraps(function)
    def wrapper(*args, no_redact, settings, **kwargs):
        if no_redact:
            settings = {**settings, "redact": False}
        return function(*args, settings=settings, **kwargs)

    return wrapper


@click.command("scan")
@issue_argument
@common_options
def scan_command(issue, settings):
    """List what redaction would replace in the logs of ISSUE (rule, file, line, masked
    preview); changes nothing. Uses the rules in force even when redaction is off."""
    from log_archiver.archive.collect import collect
    from log_archiver.cli.render_redaction import scan_summary
    from log_archiver.redaction.identity import identity_scanner
    from log_archiver.redaction.scan import scan_logs

    def body():
        repo = build_repository(settings, dry_run=True)
        found, _skipped = collect(repo, issue)
        result = {"issue_number": issue, "logs_dir": str(repo.logs_dir)}
        report = scan_logs([(f.relative, f.path) for f in found],
                           identity_scanner(repo.config), enabled=repo.config.redact,
                           workers=repo.config.workers)
        result["redaction"] = report
        if not found:
            result.update(status="noop",
                          message=f"no logs of issue #{issue} found under {repo.logs_dir}")
        return result

    output.run("scan", body, dry_run=True, quiet=settings["quiet"], human=scan_summary)

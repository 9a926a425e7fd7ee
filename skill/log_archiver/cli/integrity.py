"""verify (the index against the store), audit (the trail read back) and metrics."""

from __future__ import annotations

import re
from dataclasses import asdict
from pathlib import Path

import click

from log_archiver.cli import output
from log_archiver.cli.options import _issue_callback, build_repository, common_options
from log_archiver.errors import UsageError

_SINCE = re.compile(r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2})?Z?)?$")


def _issues_callback(ctx, param, values):
    return [_issue_callback(ctx, param, value) for value in values]


@click.command("verify")
@click.argument("issues", nargs=-1, callback=_issues_callback, metavar="[ISSUE]...")
@click.option("--deep", is_flag=True,
              help="Read every object back: re-hash it and check that it decompresses.")
@click.option("--sample", type=float, default=None, metavar="PERCENT",
              help="Read back a random PERCENT of the stored logs (the rest get a HEAD); "
                   "the seed is printed.")
@click.option("--seed", type=click.IntRange(min=0), default=None,
              help="Pick the --sample with this seed (to repeat a run).")
@common_options
def verify_command(issues, deep, sample, seed, settings):
    """Check that every stored log the index names is in the store, whole.

    Without ISSUE every archived issue is checked. Each stored object gets a HEAD (its
    size and checksum; objects without a checksum the server computed are read back);
    --deep reads every object back and checks that it decompresses. Also reports the
    index's rule violations and objects no index entry names. Exit 1 with every finding
    when anything is wrong. Changes nothing.
    """
    from log_archiver.cli.render_integrity import verify_summary
    from log_archiver.integrity.findings import as_error
    from log_archiver.integrity.verify import verify_archive

    def body():
        if seed is not None and sample is None:
            raise UsageError("--seed picks a --sample; no --sample was given",
                             "pass --sample PERCENT --seed N to repeat a sampled run")
        repo = build_repository(settings)
        report = verify_archive(repo, list(issues) or None, deep=deep, sample=sample,
                                seed=seed)
        payload = asdict(report)
        payload["duration_seconds"] = payload.pop("seconds")
        warnings = []
        if report.other_stores:
            warnings.append(f"{report.other_stores} entries are archived to another store "
                            "and were not checked: run verify with --storage set to it")
        if report.proofs.get("claimed"):
            warnings.append(f"{report.proofs['claimed']} multipart objects were checked "
                            "only against their recorded checksum: --deep reads them back")
        if report.not_checked.get("lost"):
            warnings.append(f"{report.not_checked['lost']} logs are recorded lost (no copy "
                            "anywhere): they were not looked for")
        return {"status": "error" if report.findings else "ok", **payload,
                "warnings": warnings, "errors": [as_error(f) for f in report.findings]}

    output.run("verify", body, quiet=settings["quiet"], human=verify_summary)


@click.command("audit")
@click.option("--since", default=None, metavar="DATE",
              help="Only lines from DATE on (YYYY-MM-DD, or YYYY-MM-DDTHH:MM:SSZ, UTC).")
@click.option("--issue", "issue", default=None, metavar="N",
              callback=lambda c, p, v: None if v is None else _issue_callback(c, p, v),
              help="Only lines about issue N.")
@click.option("--op", default=None, metavar="OP",
              help="Only one operation (archive, upload, delete_local, delete_object, hold, "
                   "release, restore, update-index, update-file-status, reindex, "
                   "mark-partial-archive, verify, gc).")
@common_options
def audit_command(since, issue, op, settings):
    """Read the audit trail back: every change to the archive, oldest first.

    Lines that are incomplete or malformed (a write cut short by a crash) are skipped
    and counted in skipped_lines.
    """
    from log_archiver.audit.reader import read_trail
    from log_archiver.audit.trail import audit_dir
    from log_archiver.cli.render_integrity import audit_summary

    def body():
        if since is not None and not _SINCE.match(since):
            raise UsageError(f"--since {since!r} is not a UTC date or time",
                             "use YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ")
        repo = build_repository(settings, read_only=True)
        folder = audit_dir(repo.logs_dir)
        reading = read_trail(folder, since=since.rstrip("Z") if since else None,
                             issue=issue, op=op)
        warnings = [f"skipped {len(reading.skipped)} incomplete or malformed line(s)"] \
            if reading.skipped else []
        return {"status": "ok" if reading.lines else "noop", "path": str(folder),
                "files": reading.files, "lines": reading.lines,
                "count": len(reading.lines), "skipped_lines": len(reading.skipped),
                "skipped": reading.skipped, "warnings": warnings}

    output.run("audit", body, quiet=settings["quiet"], human=audit_summary)


@click.command("metrics")
@click.option("--textfile", type=click.Path(path_type=Path), default=None, metavar="PATH",
              help="Write the exposition to PATH atomically (node_exporter's textfile "
                   "collector reads *.prom files) instead of only printing it.")
@common_options
def metrics_command(textfile, settings):
    """Prometheus metrics of the archive, from the index and the audit trail.

    The exposition text is in the JSON's exposition field, and with --textfile in PATH
    (written to a temp file in the same folder, then renamed over PATH).
    """
    from log_archiver.metrics.exposition import archive_metrics, write_textfile

    def body():
        repo = build_repository(settings, read_only=True)
        text, figures = archive_metrics(repo)
        result = {"status": "ok", "exposition": text, "figures": figures, "textfile": None}
        if textfile is not None:
            result["textfile"] = str(write_textfile(textfile, text))
        return result

    output.run("metrics", body, quiet=settings["quiet"],
               human=lambda doc: f"wrote {doc['textfile']}" if doc.get("textfile") else None)

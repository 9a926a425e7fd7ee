"""Getting the logs back: read, list, restore.

``read ISSUE FILE`` (without ``--json``) writes the log's content to stdout, so its JSON
object goes to stderr (its last line, compact), on every path: stdout carries the
content and nothing else. Only an argument error found before the command starts
(exit 2) is printed on stdout, as for every command; nothing was read then.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import click

from log_archiver.cli import output
from log_archiver.cli.options import build_repository, common_options, issue_argument

MAX_JSON_LINES = 2000
MAX_LINE_BYTES = 8192


@click.command("read")
@issue_argument
@click.argument("file", required=False)
@click.option("--lines", "lines_spec", default=None, metavar="A:B",
              help="Only lines A to B (from 1, both included; A: to the end, :B from the "
                   "start). Fetches only the blocks that hold them.")
@click.option("--json", "as_json", is_flag=True,
              help=f"Put the lines in the JSON object (at most {MAX_JSON_LINES} lines of "
                   f"{MAX_LINE_BYTES} bytes each, saying when cut) instead of stdout.")
@common_options
def read_command(issue, file, lines_spec, as_json, settings):
    """Show the archive record of ISSUE, or write the content of its log FILE.

    FILE is the log's local_path or its file name (when only one log has it). The
    content comes from the local file while it matches its checksum, else from the
    store, verified before it is written; without --json it goes to stdout and the JSON
    object to stderr.
    """
    from log_archiver.cli.render_retrieve import read_summary, record_summary
    from log_archiver.errors import UsageError

    quiet = settings["quiet"]
    if file is None:
        def record():
            if lines_spec is not None:
                raise UsageError("--lines needs a FILE", f"run `log-archiver read {issue} "
                                 "FILE --lines A:B`")
            from log_archiver.retrieve.record import archive_record

            return archive_record(build_repository(settings, read_only=True), issue)

        output.run("read", record, quiet=quiet, human=record_summary)
        return
    if not as_json:
        output.json_to_stderr()

    def content():
        from log_archiver.retrieve.lines import parse_lines

        wanted = parse_lines(lines_spec) if lines_spec is not None else None
        return _read_content(build_repository(settings, read_only=True), issue, file, wanted,
                             as_json)

    output.run("read", content, quiet=quiet, human=read_summary)


def _read_content(repo, issue: int, name: str, wanted, as_json: bool) -> dict:
    from log_archiver.retrieve.content import fetch_tally
    from log_archiver.retrieve.record import check_store, find_entry, find_log, readable

    entry = find_entry(repo, issue)
    log = find_log(entry, name)
    readable(repo, log)
    check_store(repo, entry)
    result = {"issue_number": issue, "local_path": log["local_path"],
              "object": log.get("cloud_url") or repo.store.url_for(log["remote_path"]),
              "lines": wanted.as_dict() if wanted else None}
    with fetch_tally() as tally:
        if as_json:
            result.update(_json_lines(repo, log, wanted))
        else:
            result.update(_write_content(repo, log, wanted))
    result.update({"source": tally.source or "local", "bytes_fetched": tally.bytes_fetched,
                   "requests": tally.requests})
    return {"status": "ok", **result}


def _json_lines(repo, log: dict, wanted) -> dict:
    from log_archiver.retrieve.lines import LineRange, collect_lines, line_pieces

    pieces = line_pieces(repo, log, wanted or LineRange(1, None))
    lines, truncated = collect_lines(pieces, max_lines=MAX_JSON_LINES,
                                     max_line_bytes=MAX_LINE_BYTES)
    pieces.close()
    return {"content": lines, "returned_lines": len(lines), "truncated": truncated,
            "max_lines": MAX_JSON_LINES, "max_line_bytes": MAX_LINE_BYTES,
            "verified": "blocks" if wanted else "whole"}


def _write_content(repo, log: dict, wanted) -> dict:
    from log_archiver.errors import IntegrityError
    from log_archiver.retrieve.content import read_original
    from log_archiver.retrieve.lines import line_pieces
    from log_archiver.util.hashing import bare

    sys.stdout.flush()
    stream = sys.stdout.buffer
    written, lines, digest, last_line = 0, 0, hashlib.sha256(), None
    try:
        if wanted is None:
            for raw in read_original(repo, log):
                stream.write(raw)
                digest.update(raw)
                written += len(raw)
        else:
            for number, piece, _ends in line_pieces(repo, log, wanted):
                stream.write(piece)
                written += len(piece)
                lines += number != last_line
                last_line = number
        stream.flush()
    except BrokenPipeError:  # the reader went away (`| head`): not an error of ours
        return {"bytes_written": written, "stdout_closed": True,
                "verified": "blocks" if wanted else "whole"}
    if wanted is None and digest.hexdigest() != bare(str(log.get("original_checksum"))):
        raise IntegrityError(f"{log['local_path']} read back as sha256 {digest.hexdigest()}, "
                             f"the index records {log.get('original_checksum')}",
                             "the record does not describe its stored copy; rebuild it with "
                             "`log-archiver archive ISSUE --reindex-only`")
    result = {"bytes_written": written, "verified": "blocks" if wanted else "whole"}
    if wanted is not None:
        result["returned_lines"] = lines
    return result


@click.command("list")
@click.option("--since", default=None, metavar="DATE", help="Archived on or after DATE "
              "(YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ, UTC).")
@click.option("--until", default=None, metavar="DATE", help="Archived on or before DATE.")
@click.option("--type", "log_type", default=None,
              type=click.Choice(["session", "build", "deployment", "debug"]),
              help="Only archives holding a log of this type.")
@click.option("--state", default=None,
              type=click.Choice(["complete", "partial", "held", "expired"]),
              help="Only archives in this state.")
@click.option("--reason", default=None,
              type=click.Choice(["issue_closed", "pr_merged", "manual", "retention"]),
              help="Only archives made for this reason.")
@click.option("--label", default=None, help="Only issues that had this GitHub label.")
@click.option("--limit", default=20, type=int, show_default=True,
              help="Archives per page (1 to 1000).")
@click.option("--cursor", default=None, help="The next_cursor of the previous page.")
@common_options
def list_command(since, until, log_type, state, reason, label, limit, cursor, settings):
    """List the archives, newest first, a page at a time (next_cursor goes on)."""
    from log_archiver.cli.render_retrieve import list_summary

    def body():
        from log_archiver.retrieve.listing import Filters, list_archives, parse_date

        filters = Filters(since=parse_date(since, "--since", end_of_day=False),
                          until=parse_date(until, "--until", end_of_day=True),
                          log_type=log_type, state=state, reason=reason, label=label)
        return list_archives(build_repository(settings, read_only=True), filters, limit=limit,
                             cursor=cursor)

    output.run("list", body, quiet=settings["quiet"], human=list_summary)


@click.command("restore")
@issue_argument
@click.option("--to", "to", type=click.Path(path_type=Path), default=None, metavar="DIR",
              help="Restore under DIR (default: the logs dir), each log at its local_path.")
@click.option("--file", "files", multiple=True, metavar="NAME",
              help="Only this log (local_path or unique file name); may be repeated.")
@click.option("--force", is_flag=True, help="Replace a file that holds other content.")
@common_options
def restore_command(issue, to, files, force, settings):
    """Write the archived logs of ISSUE back, each verified by its checksum.

    Each is written to a temp file and renamed; a file already holding the original is
    left as it is, one holding anything else is kept unless --force. The index records
    nothing new: cleanup-local frees the restored files again.
    """
    from log_archiver.cli.render_retrieve import restore_summary

    def body():
        from log_archiver.retrieve.restore import restore

        return restore(build_repository(settings), issue, to=to, files=tuple(files),
                       force=force)

    output.run("restore", body, quiet=settings["quiet"], human=restore_summary)

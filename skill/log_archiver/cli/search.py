"""``search``: find lines in the archived logs (and ``--rebuild`` the search index)."""

from __future__ import annotations

import click

from log_archiver.cli import output
from log_archiver.cli.options import build_repository, common_options
from log_archiver.model.issues import parse_issue
from log_archiver.model.log_types import FOLDERS


def _issue_option(ctx, param, value):
    if value is None:
        return None
    from log_archiver.errors import ArchiveError

    try:
        return parse_issue(value)
    except ArchiveError as error:
        raise click.BadParameter(error.message) from error


@click.command("search")
@click.argument("query", required=False)
@click.option("--regex", "-E", "regex", is_flag=True, help="QUERY is a Python regex.")
@click.option("--ignore-case", "-i", is_flag=True, help="Match regardless of case.")
@click.option("--context", "-C", "context_lines", type=click.IntRange(0, 50), default=0,
              help="Lines of context before and after each match (at most 50).")
@click.option("--issue", callback=_issue_option, default=None, metavar="N",
              help="Only the logs of issue N.")
@click.option("--type", "log_type", type=click.Choice(sorted(FOLDERS)), default=None,
              help="Only logs of this type.")
@click.option("--since", default=None, metavar="DATE",
              help="Only archives made on or after DATE (YYYY-MM-DD or ISO time).")
@click.option("--until", default=None, metavar="DATE",
              help="Only archives made on or before DATE.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=100,
              help="Matches to print at most (total counts them all).")
@click.option("--rebuild", is_flag=True,
              help="Build the search index again from the store and the archive index.")
@common_options
def search_command(query, regex, ignore_case, context_lines, issue, log_type, since, until,
                   limit, rebuild, settings):
    """Print every line of the archived logs that contains QUERY.

    QUERY is text of 3 or more characters (what grep -F finds), or with --regex a Python
    regular expression. Works from any clone with access to the store: the search index
    is a cache, filled from the store when it lacks something. Every reported line was
    read from content verified against its recorded checksum.
    """
    from log_archiver.cli.render_search import search_human

    if query is None and not rebuild:
        raise click.UsageError("give a QUERY to search for (or --rebuild)")

    def body():
        from log_archiver.search.query import search
        from log_archiver.search.rebuild import rebuild_index

        repo = build_repository(settings, read_only=True)
        result = {}
        if rebuild:
            result["rebuild"] = rebuild_index(repo)
            if query is None:
                errors = result["rebuild"].pop("errors")
                return {"status": "partial" if errors else "ok", **result, "errors": errors}
        found = search(repo, query, regex=regex, ignore_case=ignore_case,
                       context_lines=context_lines, issue=issue, log_type=log_type,
                       since=since, until=until, limit=limit)
        if rebuild:
            found["errors"] = result["rebuild"].pop("errors") + found["errors"]
            found["status"] = "partial" if found["errors"] else found["status"]
        return {**result, **found}

    output.run("search", body, quiet=settings["quiet"], human=search_human)

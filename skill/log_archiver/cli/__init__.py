"""The command line: a thin layer over the library (the only place click is used)."""

from __future__ import annotations

import sys

import click

from log_archiver import __version__
from log_archiver.cli.admin import (
    commit_command,
    init_command,
    merge_index_command,
    validate_index_command,
)
from log_archiver.cli.output import emit, envelope
from log_archiver.cli.recovery import (
    cleanup_local_command,
    mark_partial_archive_command,
    retry_failed_uploads_command,
    update_file_status_command,
    update_index_command,
)
from log_archiver.cli.steps import (
    archive_command,
    collect_logs_command,
    compress_logs_command,
    file_manager_group,
    prepare_upload_command,
)

COMMANDS = [
    archive_command, collect_logs_command, compress_logs_command, prepare_upload_command,
    file_manager_group, update_index_command, update_file_status_command,
    mark_partial_archive_command, retry_failed_uploads_command, cleanup_local_command,
    init_command, validate_index_command, commit_command, merge_index_command,
]


@click.group("log-archiver")
@click.version_option(__version__, prog_name="log-archiver")
def cli():
    """Archive the logs of a GitHub issue to durable storage.

    Every command prints one JSON object on stdout; progress and summaries go to stderr.
    Exit codes: 0 ok or noop, 1 error, 2 usage, 3 partial.
    """


for _command in COMMANDS:
    cli.add_command(_command)


def _command_name(ctx: click.Context | None) -> str | None:
    """The command an output belongs to: ``file-manager``, not its ``upload``."""
    chain = []
    while ctx is not None:
        chain.insert(0, ctx)
        ctx = ctx.parent
    if not chain:
        return None
    if chain[0].command is cli and len(chain) > 1:
        return chain[1].command.name
    return chain[0].command.name


def _invoke(command: click.Command, args=None, prog_name=None) -> None:
    """Run a click command so that even a usage error prints the JSON envelope."""
    try:
        command.main(args=args, prog_name=prog_name, standalone_mode=False)
    except click.UsageError as error:
        name = _command_name(error.ctx) or command.name
        message = error.format_message()
        document = envelope(name or "log-archiver", "error", False, {}, [{
            "type": "usage", "message": message, "retryable": False,
            "hint": f"run `{error.ctx.command_path if error.ctx else name} --help`"}])
        words = sys.argv[1:] if args is None else list(args)
        quiet = "--quiet" in words or "-q" in words  # asked for, even if the rest is wrong
        emit(document, quiet=quiet, human=f"error: {message}")
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(1)
    except click.exceptions.Exit as exit_:
        sys.exit(exit_.exit_code)
    sys.exit(0)


def _exit_when_done(run) -> None:
    """Run a console script, then leave without tearing the interpreter down.

    By then every file is written, synced and closed and every thread and child process
    is done; finalizing thousands of objects and modules would only add tens of
    milliseconds to each run an agent makes.
    """
    import os

    try:
        run()
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
        if isinstance(exit_.code, str):
            print(exit_.code, file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def main(args=None) -> None:
    """``log-archiver``; given ``args`` (tests), exits through ``SystemExit`` as usual."""
    if args is not None:
        _invoke(cli, args, "log-archiver")
    _exit_when_done(lambda: _invoke(cli, None, "log-archiver"))


def _script(command: click.Command):
    return lambda: _exit_when_done(lambda: _invoke(command, None, command.name))


archive_main = _script(archive_command)
collect_logs_main = _script(collect_logs_command)
compress_logs_main = _script(compress_logs_command)
prepare_upload_main = _script(prepare_upload_command)
file_manager_main = _script(file_manager_group)
update_index_main = _script(update_index_command)
update_file_status_main = _script(update_file_status_command)
mark_partial_archive_main = _script(mark_partial_archive_command)
retry_failed_uploads_main = _script(retry_failed_uploads_command)
cleanup_local_main = _script(cleanup_local_command)
validate_index_main = _script(validate_index_command)

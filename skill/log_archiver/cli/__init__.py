"""The command line: a thin layer over the library (the only place click is used)."""

from __future__ import annotations

import sys

import click

from log_archiver import __version__
from log_archiver.cli import output
from log_archiver.cli.admin import (
    commit_command,
    init_command,
    merge_index_command,
    validate_index_command,
)
from log_archiver.cli.integrity import audit_command, metrics_command, verify_command
from log_archiver.cli.lifecycle import gc_command, hold_command, release_command
from log_archiver.cli.options import CommandGroup
from log_archiver.cli.output import emit, envelope
from log_archiver.cli.queue import enqueue_command, queue_group, worker_command
from log_archiver.cli.recovery import (
    cleanup_local_command,
    mark_partial_archive_command,
    retry_failed_uploads_command,
    update_file_status_command,
    update_index_command,
)
from log_archiver.cli.redaction import scan_command
from log_archiver.cli.retrieve import list_command, read_command, restore_command
from log_archiver.cli.search import search_command
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
    enqueue_command, worker_command, queue_group,
    gc_command, hold_command, release_command,
]
COMMANDS += [read_command, list_command, restore_command]
COMMANDS.append(scan_command)
COMMANDS.append(search_command)
COMMANDS += [verify_command, audit_command, metrics_command]


@click.group("log-archiver", cls=CommandGroup)
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


def _command_of_words(command: click.Command, words: list[str]) -> str:
    """The command a command line runs, read from its words (no context is left by then)."""
    if command is cli:
        for word in words:
            if not word.startswith("-"):
                return word if word in cli.commands else cli.name
    return command.name or "log-archiver"


def _invoke(command: click.Command, args=None, prog_name=None) -> None:
    """Run a click command so that every way out prints the JSON envelope."""
    output.reset()
    words = sys.argv[1:] if args is None else list(args)
    quiet = "--quiet" in words or "-q" in words  # asked for, even if the rest is wrong
    dry_run = "--dry-run" in words
    try:
        command.main(args=args, prog_name=prog_name, standalone_mode=False)
    except click.ClickException as error:
        ctx = getattr(error, "ctx", None)
        name = _command_name(ctx) or _command_of_words(command, words)
        message = error.format_message()
        path = ctx.command_path if ctx else (prog_name or name)
        document = envelope(name, "error", dry_run, {}, [{
            "type": "usage", "message": message, "retryable": False,
            "hint": f"run `{path} --help`"}])
        emit(document, quiet=quiet, human=f"error: {message}")
        sys.exit(2)
    except click.exceptions.Abort as abort:  # click's form of Ctrl-C (or of an EOF)
        name = _command_of_words(command, words)
        if isinstance(abort.__context__, KeyboardInterrupt):
            output.interrupted(name, dry_run=dry_run, quiet=quiet)
        output.crash(name, abort.__context__ or abort, dry_run=dry_run, quiet=quiet)
    except click.exceptions.Exit as exit_:
        sys.exit(exit_.exit_code)
    except KeyboardInterrupt:
        output.interrupted(_command_of_words(command, words), dry_run=dry_run, quiet=quiet)
    except Exception as error:
        output.crash(_command_of_words(command, words), error, dry_run=dry_run, quiet=quiet)
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


def _script(command: click.Command, name: str):
    """The console script ``name``: its --help and its hints say ``name``, as it was typed."""
    return lambda: _exit_when_done(lambda: _invoke(command, None, name))


archive_main = _script(archive_command, "archive-issue-logs")
collect_logs_main = _script(collect_logs_command, "collect-logs")
compress_logs_main = _script(compress_logs_command, "compress-logs")
prepare_upload_main = _script(prepare_upload_command, "prepare-upload")
file_manager_main = _script(file_manager_group, "file-manager")
update_index_main = _script(update_index_command, "update-index")
update_file_status_main = _script(update_file_status_command, "update-file-status")
mark_partial_archive_main = _script(mark_partial_archive_command, "mark-partial-archive")
retry_failed_uploads_main = _script(retry_failed_uploads_command, "retry-failed-uploads")
cleanup_local_main = _script(cleanup_local_command, "cleanup-local")
validate_index_main = _script(validate_index_command, "validate-index")
read_main = _script(read_command, "read-logs")
list_main = _script(list_command, "list-archives")
restore_main = _script(restore_command, "restore-logs")
search_main = _script(search_command, "search-logs")

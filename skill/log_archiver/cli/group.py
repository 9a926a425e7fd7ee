"""The ``log-archiver`` click group, and running a click command so that every way out
prints the JSON envelope."""

from __future__ import annotations

import sys

import click

from log_archiver import __version__
from log_archiver.cli import output
from log_archiver.cli.commands import COMMANDS
from log_archiver.cli.options import CommandGroup
from log_archiver.cli.output import emit, envelope


@click.group("log-archiver", cls=CommandGroup, lazy=COMMANDS)
@click.version_option(__version__, prog_name="log-archiver")
def cli():
    """Archive the logs of a GitHub issue to durable storage.

    Every command prints one JSON object on stdout; progress and summaries go to stderr.
    Exit codes: 0 ok or noop, 1 error, 2 usage, 3 partial.
    """


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
                return word if word in COMMANDS else cli.name
    return command.name or "log-archiver"


def invoke(command: click.Command, args=None, prog_name=None) -> None:
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
            output.interrupted(name, dry_run=dry_run, quiet=quiet, cause=abort.__context__)
        output.crash(name, abort.__context__ or abort, dry_run=dry_run, quiet=quiet)
    except click.exceptions.Exit as exit_:
        sys.exit(exit_.exit_code)
    except KeyboardInterrupt as stop:
        output.interrupted(_command_of_words(command, words), dry_run=dry_run, quiet=quiet,
                           cause=stop)
    except Exception as error:
        output.crash(_command_of_words(command, words), error, dry_run=dry_run, quiet=quiet)
    sys.exit(0)

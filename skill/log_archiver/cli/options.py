"""Options and arguments many commands share."""

from __future__ import annotations

import functools
from pathlib import Path

import click

from log_archiver.cli.commands import load_command
from log_archiver.errors import UsageError
from log_archiver.model.issues import parse_issue


class CommandGroup(click.Group):
    """A group whose commands are imported when they run, that answers an unknown command
    with the list of its commands.

    ``lazy`` maps a command's name to ``"module:attribute"``: a webhook's ``enqueue`` must
    not pay for importing the modules of the other commands (and what they import).
    click guesses the closest name of an unknown command ("Did you mean 'archive'?" for
    ``search``), which sends a user to an unrelated command."""

    def __init__(self, *args, lazy: dict[str, str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx) -> list[str]:
        return sorted(set(self.commands) | set(self.lazy))

    def get_command(self, ctx, cmd_name):
        if cmd_name not in self.commands and cmd_name in self.lazy:
            self.add_command(load_command(self.lazy[cmd_name]), cmd_name)
        return self.commands.get(cmd_name)

    def resolve_command(self, ctx, args):
        try:
            return super().resolve_command(ctx, args)
        except click.exceptions.NoSuchCommand:
            raise click.UsageError(
                f"no such command {args[0]!r}; the commands are: "
                f"{', '.join(self.list_commands(ctx))}", ctx) from None


def _issue_callback(ctx, param, value):
    try:
        return parse_issue(value)
    except UsageError as error:
        raise click.BadParameter(f"{error.message}; {error.hint}") from None


def issues_callback(ctx, param, values):
    """Several issue numbers, each checked as one; the same issue twice counts once."""
    return tuple(dict.fromkeys(_issue_callback(ctx, param, value) for value in values))


def issue_argument(function):
    return click.argument("issue", callback=_issue_callback, metavar="ISSUE")(function)


def optional_issue_argument(function):
    return click.argument("issue", required=False,
                          callback=lambda c, p, v: None if v is None else _issue_callback(c, p, v),
                          metavar="[ISSUE]")(function)


def common_options(function):
    """--quiet, --logs-dir and --storage, folded into one ``settings`` dict."""

    @click.option("--quiet", "-q", is_flag=True, help="Print nothing on stderr.")
    @click.option("--logs-dir", type=click.Path(path_type=Path), default=None,
                  help="Logs folder (overrides LOG_ARCHIVER_LOGS_DIR and the config).")
    @click.option("--storage", default=None, metavar="URL",
                  help="Store URL: file:///path, s3://bucket/prefix or r2://bucket/prefix.")
    @functools.wraps(function)
    def wrapper(*args, quiet, logs_dir, storage, **kwargs):
        return function(*args, settings={"quiet": quiet, "logs_dir": logs_dir,
                                         "storage": storage}, **kwargs)

    return wrapper


def dry_run_option(function):
    return click.option("--dry-run", is_flag=True,
                        help="Say what would happen; change nothing.")(function)


def build_repository(settings: dict, dry_run: bool = False, *, read_only: bool = False):
    """The repository every operation takes, from the config, the environment and the flags.

    A command that changes the archive records it in the audit trail; ``read_only`` ones
    (list, read, search...) leave the trail alone."""
    from log_archiver.config import check_config, load_config
    from log_archiver.repository import Repository

    config = load_config()
    overrides = {}
    if settings.get("logs_dir") is not None:
        overrides["logs_dir"] = settings["logs_dir"].absolute()
    if settings.get("storage"):
        overrides["storage"] = settings["storage"]
    if settings.get("redact") is False:  # --no-redact
        overrides["redact"] = False
    config = config.with_overrides(**overrides)
    check_config(config)
    repository = Repository(config=config, dry_run=dry_run)
    if not read_only:
        repository.start_audit()
    return repository

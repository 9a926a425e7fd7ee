"""The command-line reference (skill/references/cli.md), generated from the commands' --help.

``make cli-reference`` (``python -m log_archiver.cli.reference --output FILE``) writes it;
``--check`` exits 1 when the file differs from what the commands print now, and a test
does the same, so the reference never drifts from the code.
"""

from __future__ import annotations

import sys
from importlib.metadata import entry_points
from pathlib import Path

import click

# The width `--help` uses when its output is not a terminal (80 columns minus click's margin),
# so the reference reads exactly like the help an agent gets in a pipe.
HELP_WIDTH = 78
DEFAULT_OUTPUT = Path("skill/references/cli.md")

HEADER = """\
# log-archiver command-line reference

<!-- Generated from the commands' --help by `make cli-reference`
     (python -m log_archiver.cli.reference); do not edit by hand. -->

Every command prints one JSON object on stdout (schema: `schemas/output/<command>.json`)
and progress on stderr. Exit codes: 0 ok or noop, 1 error, 2 usage, 3 partial.

Each command runs as `log-archiver COMMAND`; most are also installed as a script of
their own, which runs the same code (in a checkout or a plugin, as `scripts/<script>`):
"""


def _command_of_script(target: str) -> str:
    """``log_archiver.cli:collect_logs_main`` -> ``collect-logs``; the group's ``main`` -> ''."""
    function = target.split(":", 1)[1]
    if function == "main":
        return ""
    return function.removesuffix("_main").replace("_", "-")


def installed_scripts(group: click.Group) -> list[tuple[str, str]]:
    """(script, command) for every console script the installed distribution declares."""
    scripts = []
    for point in entry_points(group="console_scripts"):
        if not point.value.startswith("log_archiver.cli:"):
            continue
        command = _command_of_script(point.value)
        if command and command not in group.list_commands(None):
            raise click.ClickException(
                f"script {point.name} ({point.value}) names no command of log-archiver")
        scripts.append((point.name, command))
    if not scripts:
        raise click.ClickException("no log-archiver scripts are installed; run `make venv` "
                                   "(pip install -e .) before generating the reference")
    return sorted(scripts)


def _sections(command: click.Command, name: str, parent: click.Context | None):
    """(command path, help text) of ``command`` and of every subcommand, depth first."""
    ctx = click.Context(command, info_name=name, parent=parent, terminal_width=HELP_WIDTH)
    yield ctx.command_path, command.get_help(ctx)
    if isinstance(command, click.Group):
        for sub_name in command.list_commands(ctx):
            yield from _sections(command.get_command(ctx, sub_name), sub_name, ctx)


def render_reference() -> str:
    from log_archiver.cli import cli

    lines = [HEADER, "| script | runs |", "|---|---|"]
    for script, command in installed_scripts(cli):
        runs = f"log-archiver {command}" if command else "log-archiver"
        lines.append(f"| `{script}` | `{runs}` |")
    lines.append("")
    for path, text in _sections(cli, "log-archiver", None):
        lines += [f"## {path}", "", "```text", text.rstrip(), "```", ""]
    return "\n".join(lines)


@click.command()
@click.option("--output", type=click.Path(path_type=Path), default=DEFAULT_OUTPUT,
              show_default=True, help="The file to write (or to compare with --check).")
@click.option("--check", is_flag=True, help="Write nothing; exit 1 if the file is out of date.")
def main(output: Path, check: bool) -> None:
    """Generate the command-line reference from every command's --help."""
    text = render_reference()
    if check:
        current = output.read_text(encoding="utf-8") if output.exists() else None
        if current != text:
            click.echo(f"{output} is out of date; run `make cli-reference`", err=True)
            sys.exit(1)
        click.echo(f"{output} is up to date", err=True)
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    click.echo(f"wrote {output}", err=True)


if __name__ == "__main__":
    main()

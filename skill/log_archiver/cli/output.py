"""The contract every command keeps: one JSON object on stdout, humans on stderr.

Exit codes: 0 ok/noop, 1 error, 2 usage, 3 partial.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable

import click

from log_archiver.errors import ArchiveError, UsageError

EXIT_CODES = {"ok": 0, "noop": 0, "error": 1, "usage": 2, "partial": 3}


def envelope(command: str, status: str, dry_run: bool, payload: dict, errors: list) -> dict:
    return {"schema_version": 1, "command": command, "status": status, "dry_run": dry_run,
            **payload, "errors": errors}


def emit(document: dict, *, quiet: bool, human: str | None = None) -> None:
    sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()
    if human and not quiet:
        click.echo(human, err=True)


def error_human(errors: list[dict]) -> str:
    lines = []
    for error in errors:
        lines.append(f"error: {error['message']}")
        if error.get("hint"):
            lines.append(f"  hint: {error['hint']}")
    return "\n".join(lines)


def run(command: str, body: Callable[[], dict], *, dry_run: bool = False, quiet: bool = False,
        human: Callable[[dict], str] | None = None) -> None:
    """Run ``body`` and exit with the code its status calls for."""
    try:
        payload = body()
    except UsageError as error:
        fail(command, error, dry_run=dry_run, quiet=quiet, code=2)
    except ArchiveError as error:
        fail(command, error, dry_run=dry_run, quiet=quiet, code=1)
    status = payload.pop("status", "ok")
    errors = payload.pop("errors", [])
    document = envelope(command, status, dry_run, payload, errors)
    text = human(document) if human else None
    if errors and status != "ok":
        text = "\n".join(filter(None, [text, error_human(errors)]))
    emit(document, quiet=quiet, human=text)
    sys.exit(EXIT_CODES.get(status, 1))


def fail(command: str, error: ArchiveError, *, dry_run: bool, quiet: bool, code: int):
    document = envelope(command, "error", dry_run, {}, [error.to_dict()])
    emit(document, quiet=quiet, human=error_human(document["errors"]))
    sys.exit(code)

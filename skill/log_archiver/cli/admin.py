"""init and validate-index."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..errors import UsageError
from . import output
from .options import build_context, common_options


@click.command("init")
@click.option("--storage", "store_url", default=None, metavar="URL",
              help="Store URL to write (default: a folder under the user's data dir).")
@click.option("--logs-dir", default="logs", show_default=True, help="Logs folder, relative.")
@click.option("--force", is_flag=True, help="Overwrite an existing config file.")
@click.option("--quiet", "-q", is_flag=True, help="Print nothing on stderr.")
def init_command(store_url, logs_dir, force, quiet):
    """Write .log-archiver.json at the repository root."""
    from ..config import CONFIG_NAME, config_template, find_root
    from ..fsutil import write_bytes_atomic

    def body():
        root = find_root(Path.cwd())
        target = root / CONFIG_NAME
        if target.exists() and not force:
            return {"status": "noop", "path": str(target),
                    "message": f"{target} exists; pass --force to replace it"}
        data = config_template(store_url, logs_dir)
        from ..schemas import SchemaViolation, validate

        try:
            validate("config", data)
        except SchemaViolation as violation:
            raise UsageError(f"config would be invalid: {violation}",
                             "check --storage (file:///abs/path or s3://bucket/prefix)") from None
        write_bytes_atomic(target, (json.dumps(data, indent=2) + "\n").encode())
        return {"status": "ok", "path": str(target), "config": data}

    output.run("init", body, quiet=quiet)


@click.command("validate-index")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path), metavar="[PATH]...")
@common_options
def validate_index_command(paths, settings):
    """Check archive indexes against the schema and the rules a schema cannot say.

    PATH is an index file, or a folder holding .archive-index.json; without PATH, the
    index of the configured logs dir. Every violation is listed with its JSON path;
    exit 1 if there is any.
    """
    from ..validation import HINTS, index_file, validate_index_file

    def body():
        targets = [index_file(p) for p in paths] or [build_context(settings).index.path]
        violations, errors = [], []
        for target in targets:
            for problem in validate_index_file(target):
                violations.append({"file": str(target), **problem})
                errors.append({"type": "index_invalid", "file": str(target),
                               "message": f"{target}: {problem['path']}: {problem['message']}",
                               "retryable": False, "hint": HINTS[problem["rule"]]})
        return {"status": "error" if violations else "ok", "path": str(targets[0]),
                "paths": [str(t) for t in targets], "violations": violations,
                "errors": errors}

    output.run("validate-index", body, quiet=settings["quiet"])


@click.command("merge-index")
@click.argument("base", type=click.Path(path_type=Path))
@click.argument("ours", type=click.Path(path_type=Path))
@click.argument("theirs", type=click.Path(path_type=Path))
def merge_index_command(base, ours, theirs):
    """git merge driver for the index: merge BASE, OURS and THEIRS into OURS.

    Installed by `git config merge.log-archiver-index.driver
    "log-archiver merge-index %O %A %B"`; exits 1 and leaves OURS as it was on a conflict.
    """
    import sys

    from ..merge import merge_index_files

    conflicts: list = []
    clean = merge_index_files(base, ours, theirs, report=conflicts)
    for conflict in conflicts:
        click.echo(f"conflict: {conflict}", err=True)
    sys.exit(0 if clean else 1)

"""init (config and git setup), validate-index, commit and the merge-index git driver."""

from __future__ import annotations

import json
from pathlib import Path

import click

from log_archiver.cli import output
from log_archiver.cli.options import build_repository, common_options, issue_argument
from log_archiver.errors import UsageError


@click.command("init")
@click.option("--storage", "store_url", default=None, metavar="URL",
              help="Store URL to write (default: none written; each user's data dir is used).")
@click.option("--logs-dir", default="logs", show_default=True, help="Logs folder, relative.")
@click.option("--force", is_flag=True, help="Overwrite an existing config file.")
@click.option("--quiet", "-q", is_flag=True, help="Print nothing on stderr.")
def init_command(store_url, logs_dir, force, quiet):
    """Write .log-archiver.json at the repository root and install the index merge driver.

    In a git repository it also adds the index's merge driver to .gitattributes and the
    repository's git config, and to .gitignore the index's lock and backup files and the
    temp files and compressed copies made beside the logs, and the job queue's SQLite
    files where they would lie in the work tree (run it once per clone; commit
    .gitattributes and .gitignore). Running it again changes nothing.
    """
    from log_archiver.config import CONFIG_NAME, config_template, find_root, load_config
    from log_archiver.integrations.gitsetup import setup_repository
    from log_archiver.util.fsutil import write_bytes_atomic

    def body():
        root = find_root(Path.cwd())
        target = root / CONFIG_NAME
        if target.exists() and not force:
            result = {"status": "noop", "path": str(target),
                      "message": f"{target} exists; pass --force to replace it"}
            # the file's logs_dir, not this shell's override: .gitattributes is shared
            index_path = load_config(root, environ={}).index_path
        else:
            data = config_template(store_url, logs_dir)
            from log_archiver.util.schemas import SchemaViolation, validate

            try:
                validate("config", data)
            except SchemaViolation as violation:
                raise UsageError(f"config would be invalid: {violation}",
                                 "check --storage (file:///abs/path or s3://bucket/prefix)"
                                 ) from None
            write_bytes_atomic(target, (json.dumps(data, indent=2) + "\n").encode())
            result = {"status": "ok", "path": str(target), "config": data,
                      "message": f"wrote {target}"}
            index_path = root / Path(logs_dir).expanduser() / ".archive-index.json"
        from log_archiver.queue.broker import queue_files_to_ignore

        queue_files = queue_files_to_ignore(load_config(root, environ={}))
        driver = setup_repository(root, index_path, queue_files=queue_files)
        result["merge_driver"] = driver
        if driver.get("changed"):
            result["status"] = "ok"
            result["message"] += ("; installed the archive index merge driver (commit "
                                  ".gitattributes and .gitignore)")
        elif not driver["installed"]:
            result["message"] += f"; merge driver not installed: {driver['reason']}"
        return result

    output.run("init", body, quiet=quiet, human=lambda doc: doc.get("message"))


@click.command("validate-index")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path), metavar="[PATH]...")
@common_options
def validate_index_command(paths, settings):
    """Check archive indexes against the schema and the rules a schema cannot say.

    PATH is an index file, or a folder holding .archive-index.json; without PATH, the
    index of the configured logs dir. Every violation is listed with its JSON path;
    exit 1 if there is any.
    """
    from log_archiver.index.rules import HINTS, index_file, validate_index_file

    def body():
        targets = [index_file(p) for p in paths] or [
            build_repository(settings, read_only=True).index.path]
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


@click.command("commit")
@issue_argument
@common_options
def commit_command(issue, settings):
    """Commit the archive index after ISSUE was archived; nothing else is committed.

    The archive step runs this itself; run it by hand when that commit failed (a git lock
    held, no identity set). Other staged and unstaged work stays exactly as it was.
    """
    from log_archiver.integrations.git import commit_archive

    def body():
        ctx = build_repository(settings)
        done = commit_archive(ctx.index, issue, repo_root=ctx.config.root,
                              untrack_logs=ctx.config.untrack_cleaned_logs)
        return {"status": done["status"], "issue_number": issue, "commit": done}

    output.run("commit", body, quiet=settings["quiet"])


@click.command("merge-index")
@click.argument("base", type=click.Path(path_type=Path))
@click.argument("ours", type=click.Path(path_type=Path))
@click.argument("theirs", type=click.Path(path_type=Path))
def merge_index_command(base, ours, theirs):
    """git merge driver for the index: merge BASE, OURS and THEIRS into OURS.

    `log-archiver init` installs it (git calls `log-archiver merge-index %O %A %B`); exits 1
    and leaves OURS as it was on a conflict, for a person to resolve.
    """
    import sys

    from log_archiver.index.merge import main

    sys.exit(main([str(base), str(ours), str(theirs)]))

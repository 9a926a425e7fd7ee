"""The command line: a thin layer over the library (the only place click is used).

The console scripts start here. This module imports no click: ``enqueue`` with plain
arguments (what a webhook runs) is answered without it; everything else goes through
the click group in :mod:`.group`, which imports only the command it runs.
"""

from __future__ import annotations

import sys

from log_archiver.cli.commands import COMMANDS


def __getattr__(name: str):
    if name == "cli":  # the click group, for the tests and the reference
        from log_archiver.cli.group import cli

        return cli
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
    words = sys.argv[1:] if args is None else [str(arg) for arg in args]
    name = words[0] if words[:1] and words[0] in COMMANDS else "log-archiver"
    if args is not None:  # in the caller's process: its SIGTERM handler comes back
        _interruptible(name, words, lambda: _run(words), restore=True)
    _exit_when_done(lambda: _interruptible(name, words, lambda: _run(words)))


def _interruptible(name: str, words: list[str], run, *, restore: bool = False) -> None:
    """``run`` with SIGTERM stopping it as Ctrl-C does, from the very start (imports and
    the configuration included): an interrupt no command turned into its JSON object yet
    is printed here, as ``name``'s."""
    from log_archiver.cli import output

    with output.sigterm_interrupts(restore=restore):
        try:
            run()
        except KeyboardInterrupt as stop:
            output.interrupted(name, quiet="-q" in words or "--quiet" in words,
                               dry_run="--dry-run" in words, cause=stop)


def _run(words: list[str]) -> None:
    if words[:1] == ["enqueue"]:
        from log_archiver.cli.enqueue import plain_enqueue, run_enqueue

        try:
            plain = plain_enqueue(words[1:])
        except Exception:  # the click command reads the line and reports what is wrong
            plain = None
        if plain is not None:
            run_enqueue(*plain)
    from log_archiver.archive import early_child

    if early_child.is_batch(words):
        early_child.start_early()
    try:
        from log_archiver.cli.group import cli, invoke

        invoke(cli, words, "log-archiver")
    finally:
        early_child.discard_early()


def _script(name: str, command: str):
    """The console script ``name`` running ``command``: its --help and its hints say
    ``name``, as it was typed."""
    def run():
        from log_archiver.cli.commands import load_command
        from log_archiver.cli.group import invoke

        invoke(load_command(COMMANDS[command]), None, name)

    return lambda: _exit_when_done(lambda: _interruptible(command, sys.argv[1:], run))


archive_main = _script("archive-issue-logs", "archive")
collect_logs_main = _script("collect-logs", "collect-logs")
compress_logs_main = _script("compress-logs", "compress-logs")
prepare_upload_main = _script("prepare-upload", "prepare-upload")
file_manager_main = _script("file-manager", "file-manager")
update_index_main = _script("update-index", "update-index")
update_file_status_main = _script("update-file-status", "update-file-status")
mark_partial_archive_main = _script("mark-partial-archive", "mark-partial-archive")
retry_failed_uploads_main = _script("retry-failed-uploads", "retry-failed-uploads")
cleanup_local_main = _script("cleanup-local", "cleanup-local")
validate_index_main = _script("validate-index", "validate-index")
read_main = _script("read-logs", "read")
list_main = _script("list-archives", "list")
restore_main = _script("restore-logs", "restore")
search_main = _script("search-logs", "search")

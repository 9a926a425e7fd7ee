"""The contract every command keeps: one JSON object on stdout, humans on stderr.

Exit codes: 0 ok/noop, 1 error, 2 usage, 3 partial, 130 interrupted (Ctrl-C, SIGINT or
SIGTERM).

Every path ends here, including the ones no one planned for: an exception that is not
an :class:`ArchiveError` becomes an error of type ``internal``, and an interrupt (a
:class:`KeyboardInterrupt`, or the :class:`Terminated` SIGTERM raises) one of type
``interrupted``, so stdout always carries exactly one JSON object.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from log_archiver.errors import ArchiveError, UsageError

EXIT_CODES = {"ok": 0, "noop": 0, "error": 1, "usage": 2, "partial": 3}
INTERRUPTED_EXIT = 130

_state = {"emitted": False, "stderr_gone": False, "json_to_stderr": False,
          "terminating": False}


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread wherever it is. A :class:`KeyboardInterrupt`
    (as Ctrl-C raises), so no ``except Exception`` takes it for a failure to retry or
    set aside, every ``finally`` and cleanup written for Ctrl-C runs, and the command
    ends with the one ``interrupted`` object."""


CLEANUP_GRACE = 10.0  # seconds a repeated SIGTERM leaves the first one's cleanup alone


def _on_sigterm(signum, frame) -> None:
    # Once the object is printed the command is only leaving. A SIGTERM repeated while
    # the first one unwinds must not cut its cleanup short; one that comes later (the
    # first was swallowed, or the cleanup hangs) stops it again. SIGKILL always stops it.
    now = time.monotonic()
    first = _state["terminating"]
    if _state["emitted"] or (first and now - first < CLEANUP_GRACE):
        return
    _state["terminating"] = now
    raise Terminated()


@contextmanager
def sigterm_interrupts(*, restore: bool = False) -> Iterator[None]:
    """For the whole command line: SIGTERM stops the command as Ctrl-C does, with its
    JSON object, instead of killing it silently. The first thing a command line does;
    ``worker`` puts its graceful stop in its place while it takes jobs. ``restore``: put
    the previous handler back at the end (a command run inside another program)."""
    reset()
    _state["terminating"] = False
    try:
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:  # not the main thread (a test's): signals never reach it anyway
        previous, restore = None, False
    try:
        yield
    finally:
        if restore:
            signal.signal(signal.SIGTERM, previous)


def reset() -> None:
    """Forget that an object was printed (one command line runs per call of ``invoke``)."""
    _state["emitted"] = False
    _state["json_to_stderr"] = False


def json_to_stderr() -> None:
    """For a command whose stdout carries content (``read ISSUE FILE``): from here on the
    one JSON object goes to stderr instead, on one line, after any human text, so stdout
    holds the content and nothing else on every path (an error included)."""
    _state["json_to_stderr"] = True


def envelope(command: str, status: str, dry_run: bool, payload: dict, errors: list) -> dict:
    return {"schema_version": 1, "command": command, "status": status, "dry_run": dry_run,
            **payload, "errors": errors}


def emit(document: dict, *, quiet: bool, human: str | None = None) -> None:
    _write(json.dumps(document, indent=2, ensure_ascii=False), human, quiet)


def _write(text: str, human: str | None, quiet: bool) -> None:
    if _state["json_to_stderr"]:
        if human and not quiet:
            to_stderr(human)
        if not _state["emitted"]:
            _state["emitted"] = True
            try:  # as the human text: one stream, in order
                sys.stderr.write(json.dumps(json.loads(text), ensure_ascii=False) + "\n")
                sys.stderr.flush()
            except (OSError, ValueError):
                pass
        return
    if not _state["emitted"]:
        _state["emitted"] = True
        try:
            sys.stdout.write(text + "\n")
            sys.stdout.flush()
        except OSError:  # stdout closed (a reader that went away): stderr still tells
            pass
    if human and not quiet:
        to_stderr(human)


def shown(text: str) -> str:
    """``text`` as it may reach a terminal: control characters (a file name's escape
    sequences, say) replaced, the lines kept."""
    import unicodedata

    return "\n".join("".join("?" if unicodedata.category(ch)[0] == "C" else ch for ch in line)
                     for line in str(text).split("\n"))


def to_stderr(text: str) -> None:
    """One line or more for people. A stderr that went away (a closed pipe) silences the
    rest of the run's human text; it never fails the work or changes the exit code."""
    if _state["stderr_gone"]:
        return
    try:
        sys.stderr.write(shown(text) + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        _state["stderr_gone"] = True


def error_human(errors: list[dict]) -> str:
    lines = []
    for error in errors:
        lines.append(f"error: {error['message']}")
        if error.get("hint"):
            lines.append(f"  hint: {error['hint']}")
    return "\n".join(lines)


def warnings_human(document: dict) -> str:
    from log_archiver.cli.render import is_note

    return "\n".join(f"{'note' if is_note(warning) else 'warning'}: {warning}"
                     for warning in document.get("warnings") or [])


def run(command: str, body: Callable[[], dict], *, dry_run: bool = False, quiet: bool = False,
        human: Callable[[dict], str] | None = None) -> None:
    """Run ``body`` and exit with the code its status calls for."""
    try:
        payload = body()
        status = payload.pop("status", "ok")
        errors = payload.pop("errors", [])
        document = envelope(command, status, dry_run, payload, errors)
        text = json.dumps(document, indent=2, ensure_ascii=False)
    except _click_flow():
        raise
    except UsageError as error:
        fail(command, error, dry_run=dry_run, quiet=quiet, code=2)
    except ArchiveError as error:
        fail(command, error, dry_run=dry_run, quiet=quiet, code=1)
    except KeyboardInterrupt as stop:
        interrupted(command, dry_run=dry_run, quiet=quiet, cause=stop)
    except Exception as error:
        crash(command, error, dry_run=dry_run, quiet=quiet)
    _write(text, None if quiet else _human_text(document, human), quiet)
    sys.exit(EXIT_CODES.get(status, 1))


def _click_flow() -> tuple[type[BaseException], ...]:
    """click's own control flow, which the command line around ``run`` turns into output
    (none when click was never imported: ``enqueue`` runs without it)."""
    click = sys.modules.get("click")
    if click is None:
        return ()
    return (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort)


def _human_text(document: dict, human: Callable[[dict], str] | None) -> str:
    try:
        summary = human(document) if human else None
        errors = document["errors"] if document["status"] != "ok" else []
        return "\n".join(filter(None, [summary, warnings_human(document),
                                       error_human(errors)]))
    except Exception as error:  # the JSON is complete; a summary bug must not hide it
        return (f"(no summary: {type(error).__name__}: {error}; "
                "the JSON object on stdout is complete)")


def fail(command: str, error: ArchiveError, *, dry_run: bool, quiet: bool, code: int):
    document = envelope(command, "error", dry_run, {}, [error.to_dict()])
    emit(document, quiet=quiet, human=error_human(document["errors"]))
    sys.exit(code)


def internal_error(command: str, error: BaseException) -> dict:
    name = type(error).__name__
    detail = str(error).strip()
    return {"type": "internal",
            "message": f"internal error in {command}: {name}: {detail}" if detail
            else f"internal error in {command}: {name}",
            "retryable": False,
            "hint": f"run the same `{command}` command again (every step is safe to rerun); "
                    "if it fails the same way, report it with this message"}


def crash(command: str, error: BaseException, *, dry_run: bool = False, quiet: bool = False):
    """The last resort: an exception no layer turned into an :class:`ArchiveError`."""
    document = envelope(command, "error", dry_run, {}, [internal_error(command, error)])
    human = error_human(document["errors"])
    import traceback

    frames = traceback.extract_tb(error.__traceback__)
    if frames:
        last = frames[-1]
        human += f"\n  at {last.filename}:{last.lineno} in {last.name}"
    emit(document, quiet=quiet, human=human)
    sys.exit(1)


def interrupted(command: str, *, dry_run: bool = False, quiet: bool = False,
                cause: BaseException | None = None):
    how = "SIGTERM" if isinstance(cause, Terminated) else "Ctrl-C or SIGINT"
    document = envelope(command, "error", dry_run, {}, [{
        "type": "interrupted", "message": f"{command} was interrupted ({how})",
        "retryable": True,
        "hint": f"run the same `{command}` command again: it finishes what the interrupted "
                "run left (nothing is lost; see `validate-index` if in doubt)"}])
    emit(document, quiet=quiet, human=error_human(document["errors"]))
    sys.exit(INTERRUPTED_EXIT)

"""Progress on stderr while a command works: a rich bar on a terminal, plain lines elsewhere.

The library reports through :class:`~log_archiver.events.Events`; this module listens.
On a terminal (and without ``--quiet``) a bar shows the bytes done of the total, the files
done and the file last finished; a command over many issues also gets a bar of issues
done. Elsewhere (a pipe, a file, ``TERM=dumb``) stderr gets the same ``… message`` lines
as always and no escape codes. ``rich`` is imported only when a bar is drawn: most runs
are short and piped, and should not pay for it.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from log_archiver.cli.output import shown, to_stderr
from log_archiver.events import Event, Events

STEP_LABELS = {"compress": "compressing", "upload": "uploading"}
FILE_DONE = ("file.compressed", "file.hashed", "file.uploaded", "file.failed")
ITEM_WIDTH = 40


class Display:
    """What a command hands the library: ``say`` for a line, ``events`` for the bar."""

    def __init__(self, say: Callable[[str], None], events: Events | None = None):
        self.say = say
        self.events = events

    def report(self, payload: dict) -> dict:
        """Add to ``payload``'s warnings (or else say on stderr) what went wrong in a
        listener; returns ``payload``. Call it once the work is done."""
        problem = self.events.error_summary() if self.events is not None else None
        if problem is not None:
            if isinstance(payload.get("warnings"), list):
                payload["warnings"].append(problem)
            else:
                self.say(f"warning: {problem}")
        return payload


def on_terminal(stream=None) -> bool:
    stream = stream if stream is not None else sys.stderr
    try:
        return stream.isatty() and os.environ.get("TERM") != "dumb"
    except (AttributeError, ValueError):  # closed or replaced stream
        return False


@contextmanager
def progress_display(*, quiet: bool, stream=None,
                     events: Events | None = None) -> Iterator[Display]:
    """The display for one command run; a bar only when ``stream`` (stderr) is a terminal.

    The bar listens to ``events`` (the repository's, which the audit trail listens to as
    well) when given, else to events of its own."""
    if quiet:
        yield Display(say=lambda message: None, events=events)
        return
    plain = Display(say=lambda message: to_stderr(f"… {message}"), events=events)
    if not on_terminal(stream):
        yield plain
        return
    try:
        bar = TerminalBar(stream if stream is not None else sys.stderr)
        bar.start()
    except Exception:  # no bar is no reason to fail the work: plain lines instead
        yield plain
        return
    events = events if events is not None else Events()
    unsubscribe = events.subscribe(bar.handle)
    try:
        yield Display(say=bar.say, events=events)
    finally:
        unsubscribe()
        try:
            bar.stop()
        except Exception as error:  # the work is done; its JSON must still be printed
            events.note_error(error, "the progress display")


def printable(text: str, width: int | None = None) -> str:
    """``text`` with control and format characters replaced, so a hostile file name can
    neither move the cursor nor recolour the terminal; cut from the left to ``width``."""
    clean = shown(str(text).replace("\n", "?"))
    if width is not None and len(clean) > width:
        clean = "…" + clean[-(width - 1):]
    return clean


class TerminalBar:
    """Renders events with rich: one bar for the current batch of files (bytes done of
    the total, files done, the file last finished) and, for a command over many issues,
    one for the issues (issues done of the total, bytes so far, the current issue and its
    stage, or the issue last done)."""

    describes = "the progress display"

    def __init__(self, stream):
        from rich.console import Console
        from rich.filesize import decimal
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        self._size = decimal
        self.console = Console(file=stream, highlight=False)
        self.progress = Progress(
            TextColumn("{task.description}", markup=False),
            BarColumn(),
            TextColumn("{task.fields[size]}", markup=False),
            TextColumn("{task.fields[count]}", markup=False),
            TimeRemainingColumn(),
            TextColumn("{task.fields[item]}", markup=False),
            console=self.console, transient=True, redirect_stdout=False,
            redirect_stderr=False, auto_refresh=False)
        self.files = self.progress.add_task("", total=None, visible=False, size="", count="",
                                            item="")
        self.issues = None
        self.files_total = self.files_done = 0
        self.bytes_total = self.bytes_done = 0
        self.issue_bytes = 0  # bytes of every batch so far, for the issues bar
        self._drawn = 0.0

    def start(self) -> None:
        self.progress.start()

    def stop(self) -> None:
        self.progress.stop()

    def say(self, message: str) -> None:
        self.console.print(f"… {printable(message)}", markup=False, highlight=False)

    def handle(self, event: Event) -> None:
        name, fields = event.name, event.fields
        size = max(int(event.bytes or 0), 0)
        if name == "files.planned":
            self.files_total, self.files_done = int(fields.get("files", 0)), 0
            self.bytes_total, self.bytes_done = size, 0
            step = fields.get("step") or ""
            self.progress.reset(self.files, total=size or None, completed=0,
                                description=STEP_LABELS.get(step, printable(step)),
                                item="", visible=True, **self._file_fields())
            self._draw(now=True)
        elif name in FILE_DONE:
            self.files_done += 1
            self.bytes_done += size
            self.issue_bytes += size
            item = printable(event.path or "", ITEM_WIDTH)
            self.progress.update(self.files, advance=size, **self._file_fields(),
                                 item=f"failed: {item}" if name == "file.failed" else item)
            self._update_issues()
            self._draw(now=self.files_done == self.files_total)  # the whole batch, once
        elif name == "stage":
            if self.issues is not None and event.issue is not None:  # the current issue
                self._update_issues(item=f"#{event.issue} {printable(fields.get('stage', ''))}")
            if fields.get("stage") not in STEP_LABELS.values():
                self.progress.update(self.files, visible=False)
            self._draw(now=True)
        elif name == "issues.planned":
            total = max(int(fields.get("issues", 0)), 0)
            if self.issues is None:
                self.issues = self.progress.add_task("issues", total=total, size="",
                                                     count="", item="")
            self.progress.reset(self.issues, total=total, completed=0)
            self.issue_bytes = 0
            self._update_issues()
            self._draw(now=True)
        elif name == "issue.done" and self.issues is not None:
            self.progress.advance(self.issues)
            self._update_issues(item="" if event.issue is None else f"#{event.issue}")
            self._draw(now=True)

    def _draw(self, *, now: bool) -> None:
        """Redraw at most ten times a second, in the thread that reports: nothing in a
        thread of its own can fail unseen, and a bar with nothing new is not redrawn."""
        moment = time.monotonic()
        if now or moment - self._drawn >= 0.1:
            self._drawn = moment
            self.progress.refresh()

    def _file_fields(self) -> dict:
        return {"size": f"{self._size(self.bytes_done)}/{self._size(self.bytes_total)}",
                "count": f"{self.files_done}/{self.files_total} files"}

    def _update_issues(self, item: str | None = None) -> None:
        if self.issues is None:
            return
        task = next(t for t in self.progress.tasks if t.id == self.issues)
        extra = {} if item is None else {"item": item}
        self.progress.update(self.issues, size=self._size(self.issue_bytes),
                             count=f"{int(task.completed)}/{int(task.total or 0)} issues",
                             **extra)

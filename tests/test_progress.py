"""The event hook and the progress display: events from the real workflow, a bar on a
terminal (the real command in a pseudo-terminal), nothing of it on a pipe."""

from __future__ import annotations

import fcntl
import io
import json
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from conftest import Result, check_output, script
from log_archiver.archive.pipeline import archive
from log_archiver.archive.prepare import prepare
from log_archiver.archive.upload import upload_records
from log_archiver.cli.progress import Display, TerminalBar, printable, progress_display
from log_archiver.config import load_config
from log_archiver.events import Event, Events
from log_archiver.model.copies import compressed_copy_path
from log_archiver.repository import Repository
from log_archiver.util.samples import log_text, write_sample_logs

BAR = "━"  # what rich draws a bar with
BYTES_OF_TOTAL = re.compile(r"\d+(\.\d+)? MB/\d+(\.\d+)? MB")


def recorder(events: Events) -> list[Event]:
    seen: list[Event] = []
    events.subscribe(seen.append)
    return seen


def context(events: Events | None = None) -> Repository:
    return Repository(config=load_config(), events=events or Events())


# --- the hook ---------------------------------------------------------------------------

def test_an_event_reaches_every_listener_with_its_fields():
    events = Events()
    first, second = recorder(events), recorder(events)
    events.emit("file.uploaded", issue=7, path="builds/7-build.log", bytes=12, outcome="created")
    expected = Event("file.uploaded", 7, "builds/7-build.log", 12, {"outcome": "created"})
    assert first == [expected] and second == [expected]
    assert events.first_error is None and events.error_summary() is None


def test_an_unsubscribed_listener_hears_nothing_more():
    events = Events()
    seen: list[Event] = []
    stop = events.subscribe(seen.append)
    events.emit("stage", stage="collecting")
    stop()
    events.emit("stage", stage="uploading")
    assert [e.fields["stage"] for e in seen] == ["collecting"]


def test_a_raising_listener_is_kept_for_the_caller_and_others_still_hear():
    events = Events()

    def broken(event):
        raise RuntimeError(f"cannot show {event.name}")

    events.subscribe(broken)
    seen = recorder(events)
    events.emit("stage", stage="collecting")
    events.emit("stage", stage="uploading")
    assert len(seen) == 2
    assert isinstance(events.first_error, RuntimeError)
    assert str(events.first_error) == "cannot show stage" and events.error_count == 2
    assert events.error_summary() == ("an event listener failed: RuntimeError: cannot show "
                                      "stage (2 failures in all)")


def test_the_caller_reports_a_listener_failure_in_warnings_or_on_stderr():
    events = Events()
    events.subscribe(lambda event: 1 / 0)
    events.emit("stage", stage="cleaning")
    said: list[str] = []
    display = Display(say=said.append, events=events)
    payload = display.report({"warnings": []})
    assert payload["warnings"] == ["an event listener failed: "
                                   "ZeroDivisionError: division by zero"]
    assert said == []
    assert display.report({}) == {}
    assert said == ["warning: an event listener failed: "
                    "ZeroDivisionError: division by zero"]


# --- the events of the real workflow ----------------------------------------------------

def test_archive_emits_a_stage_per_step_and_an_event_per_file(workspace):
    logs = workspace / "logs"
    files = write_sample_logs(logs, 42, big=2_500_000)
    sizes = {f.relative_to(logs).as_posix(): f.stat().st_size for f in files}
    events = Events()
    seen = recorder(events)
    result = archive(context(events), 42)
    assert result["status"] == "ok"
    stages = [e.fields["stage"] for e in seen if e.name == "stage"]
    assert stages == ["collecting", "compressing", "uploading", "commenting", "cleaning",
                      "committing"]
    assert all(e.issue == 42 for e in seen if e.name == "stage")
    planned = [e for e in seen if e.name == "files.planned"]
    assert [e.fields["step"] for e in planned] == ["compress", "upload"]
    assert planned[0].bytes == sum(sizes.values()) and planned[0].fields["files"] == 4
    compressed = {e.path: e for e in seen if e.name == "file.compressed"}
    hashed = {e.path: e for e in seen if e.name == "file.hashed"}
    assert list(compressed) == ["sessions/session-42-2025-01-15.md"]
    assert set(hashed) == set(sizes) - set(compressed)
    for path, event in {**compressed, **hashed}.items():
        assert event.bytes == sizes[path]
    big = compressed["sessions/session-42-2025-01-15.md"]
    assert big.fields["compression"] == "gzip" and 0 < big.fields["stored_bytes"] < big.bytes
    index = json.loads((logs / ".archive-index.json").read_text())
    stored = {log["local_path"]: log["size_bytes"] for log in index["archives"][0]["logs"]}
    uploaded = {e.path: e for e in seen if e.name == "file.uploaded"}
    assert {path: e.bytes for path, e in uploaded.items()} == stored
    assert {e.fields["outcome"] for e in uploaded.values()} == {"created"}
    assert all(e.issue == 42 for e in uploaded.values())
    assert planned[1].bytes == sum(stored.values()) and planned[1].fields["files"] == 4
    # the order of a listener's view: each batch is planned before its files are done
    names = [e.name for e in seen]
    assert names.index("files.planned") < names.index("file.compressed")
    assert len(names) - 1 - names[::-1].index("files.planned") < names.index("file.uploaded")


def test_a_raising_listener_never_breaks_an_archive(workspace):
    logs = workspace / "logs"
    write_sample_logs(logs, 42, big=2_500_000)
    events = Events()

    def broken(event):
        if event.name.startswith("file."):
            raise OSError("display went away")

    events.subscribe(broken)
    seen = recorder(events)
    result = archive(context(events), 42)
    assert result["status"] == "ok" and not result["errors"]
    index = json.loads((logs / ".archive-index.json").read_text())
    assert {log["upload_status"] for log in index["archives"][0]["logs"]} == {"cleaned"}
    assert not any(p.is_file() for p in (logs / "sessions").iterdir())
    assert isinstance(events.first_error, OSError) and events.error_count == 13
    # 4 compressed/hashed, 4 stored, 5 deleted (the logs and the big one's compressed copy)
    assert sum(e.name.startswith("file.") for e in seen) == 13


def test_failures_are_events_too(workspace):
    logs = workspace / "logs"
    write_sample_logs(logs, 42, big=2_500_000)
    copy = compressed_copy_path(logs / "sessions/session-42-2025-01-15.md", "gzip")
    copy.mkdir()  # the compressed copy cannot land
    events = Events()
    ctx = context(events)
    seen = recorder(events)
    plan = prepare(ctx, 42)
    [failed] = [e for e in seen if e.name == "file.failed"]
    assert failed.path == "sessions/session-42-2025-01-15.md"
    assert failed.bytes == 2_500_000 and failed.fields["step"] == "compress"
    assert failed.fields["error"]["type"] == plan["errors"][0]["type"] == "local_file"
    assert copy.name in failed.fields["error"]["message"]
    # a file that vanished before its upload, with nothing in the store: a failed upload
    gone = next(log for log in plan["files"] if log["local_path"].startswith("builds/"))
    (logs / gone["stored_path"]).unlink()
    report = upload_records(ctx, 42)
    [failure] = [e for e in seen if e.name == "file.failed" and e.fields["step"] == "upload"]
    assert failure.path == gone["local_path"] and failure.issue == 42
    assert failure.bytes == gone["size_bytes"]
    assert failure.fields["error"]["type"] == report.failed[0]["type"] == "local_file"
    assert {e.path for e in seen if e.name == "file.uploaded"} == \
        {log["local_path"] for log in plan["files"]} - {gone["local_path"]}


# --- the bar, drawn by rich -------------------------------------------------------------

def rendered(bar: TerminalBar) -> str:
    from rich.console import Console

    out = Console(file=io.StringIO(), width=160, record=True, color_system=None)
    out.print(bar.progress.make_tasks_table(bar.progress.tasks))
    return out.export_text()


def test_the_bar_counts_bytes_files_and_issues_for_a_batch():
    bar = TerminalBar(io.StringIO())
    bar.handle(Event("issues.planned", fields={"issues": 3}))
    for issue in (7, 8):
        bar.handle(Event("stage", issue, fields={"stage": "uploading"}))
        bar.handle(Event("files.planned", issue, bytes=3_000_000,
                         fields={"files": 2, "step": "upload"}))
        bar.handle(Event("file.uploaded", issue, f"builds/{issue}-build.log", 1_000_000))
        text = rendered(bar)
        assert "1.0 MB/3.0 MB" in text and "1/2 files" in text
        bar.handle(Event("file.uploaded", issue, f"sessions/session-{issue}.md", 2_000_000))
        bar.handle(Event("issue.done", issue))
    text = rendered(bar)
    assert "uploading" in text and "3.0 MB/3.0 MB" in text and "2/2 files" in text
    assert "sessions/session-8.md" in text
    assert "2/3 issues" in text and "6.0 MB" in text and "#8" in text
    bar.handle(Event("stage", 9, fields={"stage": "committing"}))
    assert "files" not in rendered(bar)  # no file bar while no files are being worked on


def test_the_issues_bar_names_the_current_issue_and_its_stage():
    bar = TerminalBar(io.StringIO())
    bar.handle(Event("issues.planned", fields={"issues": 2}))
    bar.handle(Event("stage", 41, fields={"stage": "collecting"}))
    assert "#41 collecting" in rendered(bar) and "0/2 issues" in rendered(bar)
    bar.handle(Event("stage", 41, fields={"stage": "uploading"}))
    assert "#41 uploading" in rendered(bar)
    bar.handle(Event("issue.done", 41))
    bar.handle(Event("stage", 42, fields={"stage": "cleaning\x1b[2J"}))
    text = rendered(bar)
    assert "#42 cleaning?[2J" in text and "1/2 issues" in text and "\x1b[2J" not in text


def test_a_hostile_file_name_cannot_drive_the_terminal():
    assert printable("a\x1b[2Jb\u202ec\r\n") == "a?[2Jb?c??"
    assert printable("x" * 50, 10) == "…" + "x" * 9
    bar = TerminalBar(io.StringIO())
    bar.handle(Event("files.planned", bytes=10, fields={"files": 1, "step": "compress\x1b]0;"}))
    bar.handle(Event("file.failed", path="logs/\x1b[31m[bold]x.log", bytes=10))
    [task] = bar.progress.tasks
    assert "\x1b" not in task.description and "\x1b" not in task.fields["item"]
    assert task.fields["item"] == "failed: logs/?[31m[bold]x.log"  # markup is not applied
    assert "failed: logs/?[31m[bold]x.log" in rendered(bar)


class GoneTerminal(io.StringIO):
    """A terminal whose writes fail once it is ``gone`` (a closed ssh session, say)."""

    def __init__(self, gone: bool = False):
        super().__init__()
        self.gone = gone

    def isatty(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if self.gone:
            raise OSError(5, "Input/output error")
        return super().write(text)


def test_a_terminal_that_goes_away_costs_a_warning_not_the_result(monkeypatch):
    monkeypatch.setenv("TERM", "xterm-256color")
    terminal = GoneTerminal()
    with progress_display(quiet=False, stream=terminal) as shown:
        shown.events.emit("files.planned", bytes=10, files=1, step="upload")
        assert BAR in terminal.getvalue()
        terminal.gone = True
        shown.events.emit("file.uploaded", path="builds/7-build.log", bytes=10)
    payload = shown.report({"warnings": []})
    assert shown.events.error_count == 2  # the last draw, and the clean-up
    assert payload["warnings"] == ["the progress display failed: OSError: "
                                   "[Errno 5] Input/output error (2 failures in all)"]


def test_no_bar_when_the_terminal_is_gone_from_the_start(monkeypatch, capsys):
    monkeypatch.setenv("TERM", "xterm-256color")
    with progress_display(quiet=False, stream=GoneTerminal(gone=True)) as shown:
        assert shown.events is None
        shown.say("uploading to file:///store")
    assert capsys.readouterr().err == "… uploading to file:///store\n"


def test_a_dumb_terminal_gets_lines(monkeypatch, capsys):
    monkeypatch.setenv("TERM", "dumb")
    terminal = GoneTerminal()
    with progress_display(quiet=False, stream=terminal) as shown:
        assert shown.events is None
        shown.say("freeing local disk")
    assert terminal.getvalue() == "" and capsys.readouterr().err == "… freeing local disk\n"


# --- the real command, on a terminal and on a pipe --------------------------------------

def on_pty(argv: list[str], *, cwd: Path, env: dict, stdin=subprocess.DEVNULL):
    """Run ``argv`` with stderr on a pseudo-terminal (120 columns) and stdout to a file;
    returns the exit code, stdout and everything the terminal received."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    out_path = cwd / ".pty-stdout"
    with open(out_path, "wb") as out:
        process = subprocess.Popen(argv, stdin=stdin, stdout=out, stderr=slave, cwd=cwd,
                                   env={**env, "TERM": "xterm-256color"})
    os.close(slave)
    received = b""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if not ready:
            if process.poll() is not None:
                break  # exited, and nothing more to read
            continue
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: every end of the terminal is closed
            break
        if not chunk:
            break
        received += chunk
    os.close(master)
    code = process.wait(timeout=10)
    stdout = out_path.read_text()
    out_path.unlink()
    return code, stdout, received.decode("utf-8", errors="replace")


@pytest.fixture
def big_issue(workspace):
    """Issue 42 with a few MB of logs: two of them compressed."""
    logs = workspace / "logs"
    write_sample_logs(logs, 42, big=3_000_000)
    trace = logs / "debug/42-trace.log"
    trace.parent.mkdir()
    trace.write_bytes(log_text(2_000_000, 5))
    return workspace


def one_json_object(stdout: str, code: int, stderr: str) -> dict:
    document = check_output(Result(code, stdout, stderr))
    assert stdout.strip().startswith("{") and stdout.strip().endswith("}")
    assert json.loads(stdout) == document  # nothing but the one object
    return document


def test_archive_on_a_terminal_draws_a_bar_with_bytes_and_files(big_issue):
    code, stdout, terminal = on_pty([*script("log-archiver"), "archive", "42"],
                                    cwd=big_issue, env=dict(os.environ))
    assert code == 0, terminal
    document = one_json_object(stdout, code, terminal)
    assert document["status"] == "ok" and document["collected"] == 5
    assert document["compressed"]["files"] == 2
    assert BAR in terminal and BYTES_OF_TOTAL.search(terminal), terminal
    assert "compressing" in terminal and "uploading" in terminal
    assert "5/5 files" in terminal
    assert "… collecting and compressing logs of issue #42" in terminal
    assert "Logs archived for issue #42" in terminal
    assert "{" not in terminal  # the JSON went to stdout only
    assert not any(p.is_file() for p in (big_issue / "logs/sessions").iterdir())


def test_archive_on_a_pipe_prints_lines_and_no_escape_codes(big_issue):
    done = subprocess.run([*script("log-archiver"), "archive", "42"], cwd=big_issue,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    document = one_json_object(done.stdout, done.returncode, done.stderr)
    assert document["status"] == "ok" and document["collected"] == 5
    assert BAR not in done.stderr and "\x1b" not in done.stderr
    assert not BYTES_OF_TOTAL.search(done.stderr) and "files" not in done.stderr
    assert done.stderr.startswith("… collecting and compressing logs of issue #42\n"
                                  "… uploading to file://")
    assert "Logs archived for issue #42" in done.stderr
    assert "\x1b" not in done.stdout


def test_quiet_on_a_terminal_prints_nothing(big_issue):
    code, stdout, terminal = on_pty([*script("log-archiver"), "archive", "42", "--quiet"],
                                    cwd=big_issue, env=dict(os.environ))
    assert code == 0
    assert one_json_object(stdout, code, terminal)["status"] == "ok"
    assert terminal == ""


def test_rich_is_not_imported_when_stderr_is_a_pipe(big_issue):
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "log_archiver",
                           "archive", "42"], cwd=big_issue, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    modules = [line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()
               if line.startswith("import time:")]
    assert "log_archiver.cli.progress" in modules  # the measurement saw our imports
    assert not [m for m in modules if m == "rich" or m.startswith("rich.")]


def prepared_plan(workspace: Path, issue: int, folder: Path) -> Path:
    prepared = subprocess.run([*script("prepare-upload"), str(issue)], cwd=workspace,
                              capture_output=True, text=True, timeout=120)
    assert prepared.returncode == 0, prepared.stderr
    plan = folder / f"plan-{issue}.json"
    plan.write_text(prepared.stdout)
    return plan


def test_file_manager_upload_draws_a_bar_on_a_terminal_only(big_issue, tmp_path):
    write_sample_logs(big_issue / "logs", 43, big=3_000_000, seed=3)
    code, stdout, terminal = on_pty(
        [*script("file-manager"), "upload", str(prepared_plan(big_issue, 42, tmp_path))],
        cwd=big_issue, env=dict(os.environ))
    assert code == 0, terminal
    document = one_json_object(stdout, code, terminal)
    assert document["status"] == "ok" and len(document["verified"]) == 5
    assert BAR in terminal and "uploading" in terminal and "5/5 files" in terminal
    assert BYTES_OF_TOTAL.search(terminal) or re.search(r"\d+(\.\d+)? kB/", terminal)
    piped = subprocess.run(
        [*script("file-manager"), "upload", str(prepared_plan(big_issue, 43, tmp_path))],
        cwd=big_issue, capture_output=True, text=True, timeout=120)
    assert piped.returncode == 0, piped.stderr
    document = one_json_object(piped.stdout, piped.returncode, piped.stderr)
    assert document["status"] == "ok" and len(document["verified"]) == 4
    assert piped.stderr == ""  # no bar, no escape codes: file-manager has no lines to say

"""The command line's boundary: every way out prints one JSON object valid against its
schema, human text reaches stderr (warnings included), counts say what this run did, and
the names a user types are the names the tool answers with."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import Result, check_output
from fakegithub import FakeGitHub
from log_archiver.model.copies import compressed_copy_path
from log_archiver.util.samples import write_sample_logs

ISSUE = "5"


def one_object(result: Result) -> dict:
    """stdout is exactly one JSON object (json.loads refuses a second one after it)."""
    document = json.loads(result.stdout)
    assert isinstance(document, dict)
    return check_output(result)


def raiser(error: BaseException):
    def raise_it(*args, **kwargs):
        raise error

    return raise_it


@pytest.fixture
def archived_inputs(workspace, run_cli, tmp_path):
    """Issue 5's logs, prepared (so its index entry exists); a plan file and a metadata file."""
    write_sample_logs(workspace / "logs", int(ISSUE))
    plan = run_cli("prepare-upload", ISSUE)
    assert plan.exit_code == 0, plan.stdout
    (tmp_path / "plan.json").write_text(plan.stdout)
    (tmp_path / "metadata.json").write_text(json.dumps(plan.json["files"]))
    for name in ("base", "ours", "theirs"):
        (tmp_path / f"{name}.json").write_text(
            (workspace / "logs/.archive-index.json").read_text())
    return tmp_path


# (command line, the library function it calls that is made to fail)
FAMILIES = {
    # workflow steps
    "archive": (["archive", ISSUE], "log_archiver.archive.pipeline.prepare"),
    "archive --reindex-only": (["archive", ISSUE, "--reindex-only"],
                               "log_archiver.archive.reindex.issue_objects"),
    "collect-logs": (["collect-logs", ISSUE], "log_archiver.archive.collect.collect_logs"),
    "compress-logs": (["compress-logs", "logs/builds/5-build.log"],
                      "log_archiver.archive.prepare.compress"),
    "prepare-upload": (["prepare-upload", ISSUE], "log_archiver.archive.prepare.prepare"),
    "file-manager": (["file-manager", "upload", "{tmp}/plan.json"],
                     "log_archiver.archive.upload.upload_records"),
    # recovery commands
    "update-index": (["update-index", ISSUE, "{tmp}/metadata.json"],
                     "log_archiver.archive.repair.update_index"),
    "update-file-status": (["update-file-status", ISSUE, "builds/5-build.log", "failed"],
                           "log_archiver.archive.repair.update_file_status"),
    "mark-partial-archive": (["mark-partial-archive", ISSUE, "why"],
                             "log_archiver.archive.repair.mark_partial"),
    "retry-failed-uploads": (["retry-failed-uploads", ISSUE, "--execute"],
                             "log_archiver.archive.upload.upload_records"),
    "cleanup-local": (["cleanup-local", ISSUE], "log_archiver.archive.cleanup.cleanup_local"),
    "cleanup-local --orphans": (["cleanup-local", "--orphans"],
                                "log_archiver.archive.leftovers.remove_leftovers"),
    # admin commands
    "init": (["init"], "log_archiver.integrations.gitsetup.setup_repository"),
    "validate-index": (["validate-index"], "log_archiver.index.rules.validate_index_file"),
    "commit": (["commit", ISSUE], "log_archiver.integrations.git.commit_archive"),
    "merge-index": (["merge-index", "{tmp}/base.json", "{tmp}/ours.json", "{tmp}/theirs.json"],
                    "log_archiver.index.merge.merge_index_files"),
}
ERRORS = [TypeError("unsupported operand type(s) for +: 'int' and 'NoneType'"),
          PermissionError(13, "Permission denied", "logs/builds/5-build.log")]


@pytest.mark.parametrize("error", ERRORS, ids=lambda e: type(e).__name__)
@pytest.mark.parametrize("family", FAMILIES, ids=list(FAMILIES))
def test_an_unexpected_exception_is_an_internal_error_in_json(archived_inputs, run_cli,
                                                               monkeypatch, family, error):
    args, target = FAMILIES[family]
    args = [arg.format(tmp=archived_inputs) for arg in args]
    monkeypatch.setattr(target, raiser(error))
    result = run_cli(*args)
    assert result.exit_code == 1, (result.stdout, result.stderr)
    doc = one_object(result)
    assert doc["command"] == args[0] and doc["status"] == "error"
    [reported] = doc["errors"]
    assert reported["type"] == "internal" and reported["retryable"] is False
    assert type(error).__name__ in reported["message"] and str(error) in reported["message"]
    assert args[0] in reported["hint"] and "again" in reported["hint"]
    assert f"error: {reported['message']}" in result.stderr
    assert "Traceback" not in result.stderr


def test_quiet_silences_an_internal_error_but_not_its_json(archived_inputs, run_cli,
                                                           monkeypatch):
    monkeypatch.setattr("log_archiver.archive.collect.collect_logs",
                        raiser(TypeError("boom")))
    result = run_cli("collect-logs", ISSUE, "--quiet")
    assert result.exit_code == 1 and result.stderr == ""
    assert one_object(result)["errors"][0]["type"] == "internal"


def test_a_summary_that_cannot_be_rendered_still_leaves_the_json(archived_inputs, run_cli,
                                                                 monkeypatch):
    monkeypatch.setattr("log_archiver.cli.render.archive_summary",
                        raiser(KeyError("entry")))
    result = run_cli("archive", ISSUE)
    assert result.exit_code == 0, result.stdout
    assert one_object(result)["status"] == "ok"
    assert "no summary: KeyError" in result.stderr


WRAPPED = """
import sys
import log_archiver.archive.collect as collect

def fail(*args, **kwargs):
    raise {error}

collect.{function} = fail
from log_archiver.cli import {main}
sys.argv[0] = {script!r}
{main}()
"""


def run_wrapped(workspace, main: str, script: str, function: str, error: str, *args,
                **popen) -> subprocess.Popen | Result:
    code = WRAPPED.format(error=error, function=function, main=main, script=script)
    command = [sys.executable, "-c", code, *args]
    if popen:
        return subprocess.Popen(command, cwd=workspace, text=True, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, **popen)
    done = subprocess.run(command, cwd=workspace, capture_output=True, text=True, timeout=120)
    return Result(done.returncode, done.stdout, done.stderr)


def test_a_console_script_prints_the_internal_error_too(workspace):
    write_sample_logs(workspace / "logs", 5)
    result = run_wrapped(workspace, "collect_logs_main", "collect-logs", "collect_logs",
                         "PermissionError(13, 'Permission denied', 'logs/sessions')", ISSUE)
    assert result.exit_code == 1, result.stderr
    doc = one_object(result)
    assert doc["command"] == "collect-logs"
    assert "PermissionError" in doc["errors"][0]["message"]
    assert "Permission denied" in doc["errors"][0]["message"]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("family", ["collect-logs", "merge-index"])
def test_keyboard_interrupt_exits_130_with_json(archived_inputs, run_cli, monkeypatch, family):
    args, target = FAMILIES[family]
    args = [arg.format(tmp=archived_inputs) for arg in args]
    monkeypatch.setattr(target, raiser(KeyboardInterrupt()))
    result = run_cli(*args)
    assert result.exit_code == 130, (result.stdout, result.stderr)
    doc = one_object(result)
    [reported] = doc["errors"]
    assert doc["status"] == "error" and reported["type"] == "interrupted"
    assert "interrupted" in reported["message"] and reported["retryable"] is True


def test_a_real_sigint_exits_130_with_json(workspace):
    write_sample_logs(workspace / "logs", 5)
    process = run_wrapped(workspace, "archive_main", "archive-issue-logs", "collect",
                          "(__import__('time').sleep(60), None)[1]", ISSUE,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})
    # the wrapper's collect sleeps; archive reaches it before anything else
    try:
        deadline = time.monotonic() + 60
        line = ""
        while "collecting" not in line and time.monotonic() < deadline:
            line = process.stderr.readline()
            assert line or process.poll() is None, "the archive ended before collecting"
        time.sleep(0.3)
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130, stderr
    doc = one_object(Result(process.returncode, stdout, stderr))
    assert doc["command"] == "archive" and doc["errors"][0]["type"] == "interrupted"
    assert "Traceback" not in stderr


# --- status rules that agree across commands -------------------------------------------

def block_compression(workspace, issue: int) -> str:
    """Make the big log of ``issue`` impossible to compress: a folder where its copy goes."""
    big = workspace / "logs" / "sessions" / f"session-{issue}-2025-01-15.md"
    assert big.stat().st_size > 1 << 20
    compressed_copy_path(big, "gzip").mkdir()
    return big.relative_to(workspace / "logs").as_posix()


def test_prepare_upload_is_partial_when_a_log_cannot_be_compressed(workspace, run_cli):
    write_sample_logs(workspace / "logs", 123)
    blocked = block_compression(workspace, 123)
    result = run_cli("prepare-upload", "123")
    assert result.exit_code == 3, result.stdout
    doc = one_object(result)
    assert doc["status"] == "partial" and doc["failed_files"] == [blocked]
    [error] = doc["errors"]
    assert error["file"].endswith(blocked) and error["type"] == "local_file"
    assert len(doc["files"]) == 3 and blocked not in {f["local_path"] for f in doc["files"]}
    entry = json.loads((workspace / "logs/.archive-index.json").read_text())["archives"][0]
    assert entry["partial_archive"] and blocked in entry["partial_reason"]
    assert f"error: {error['message']}" in result.stderr
    # archive says the same of the same log
    archived = run_cli("archive", "123")
    assert archived.exit_code == 3 and archived.json["failed_files"] == [blocked]


def test_compress_logs_is_partial_when_a_file_cannot_be_compressed(workspace, run_cli):
    write_sample_logs(workspace / "logs", 123)
    blocked = block_compression(workspace, 123)
    result = run_cli("compress-logs", f"logs/{blocked}", "logs/builds/123-build.log")
    assert result.exit_code == 3, result.stdout
    doc = one_object(result)
    assert doc["status"] == "partial"
    assert [Path(f["source"]).name for f in doc["files"]] == ["123-build.log"]
    assert doc["errors"][0]["file"].endswith(blocked)


# --- warnings reach stderr ---------------------------------------------------------------

@pytest.fixture
def github(monkeypatch):
    with FakeGitHub("octo/proj", token="test-token") as fake:
        monkeypatch.setenv("GITHUB_API_URL", fake.url)
        monkeypatch.setenv("GITHUB_TOKEN", "test-token")
        monkeypatch.setenv("GITHUB_REPOSITORY", "octo/proj")
        monkeypatch.setenv("LOG_ARCHIVER_RETRY_DELAY_SCALE", "0")
        yield fake


def test_a_comment_that_failed_on_a_rerun_is_a_warning_not_nothing_to_do(workspace, run_cli,
                                                                         github):
    github.add_issue(9, "Flaky deploy", state="closed")
    write_sample_logs(workspace / "logs", 9)
    first = run_cli("archive", "9")
    assert first.exit_code == 0 and first.json["comment"]["posted"], first.stdout
    github.fail("GET", r"/issues/9/comments$", 403, message="denied access")
    again = run_cli("archive", "9")
    assert again.exit_code == 0 and again.json["status"] == "noop", again.stdout
    [warning] = again.json["warnings"]
    assert warning.startswith("comment not posted")
    assert f"warning: {warning}" in again.stderr
    assert "nothing to do" not in again.stderr and "✓" not in again.stderr
    assert "1 warning" in again.stderr


def test_a_comment_that_failed_while_archiving_is_a_warning_on_stderr(workspace, run_cli,
                                                                      github):
    github.add_issue(9, "Flaky deploy", state="closed")
    github.fail("GET", r"/issues/9/comments$", 403, message="denied access")
    write_sample_logs(workspace / "logs", 9)
    result = run_cli("archive", "9")
    assert result.exit_code == 0 and result.json["status"] == "ok", result.stdout
    [warning] = result.json["warnings"]
    assert f"warning: {warning}" in result.stderr and "denied access" in result.stderr
    assert "✓" not in result.stderr
    assert "GitHub comment: not posted" in result.stderr


def test_prepare_upload_warnings_reach_stderr(workspace, run_cli):
    write_sample_logs(workspace / "logs", 5)
    result = run_cli("prepare-upload", "5")
    [warning] = result.json["warnings"]  # no GitHub repository known: a normal state
    assert f"note: {warning}" in result.stderr and "warning:" not in result.stderr
    assert run_cli("prepare-upload", "5", "--quiet").stderr == ""


# --- counts that are true ------------------------------------------------------------------

def summary_counts(stderr: str) -> dict[str, int]:
    counts = {}
    for line in stderr.splitlines():
        for label in ("Collected", "Uploaded", "Already stored", "Failed"):
            if line.startswith(f"  {label}: "):
                counts[label] = int(line.split(": ", 1)[1].split()[0])
    return counts


def test_retry_failed_uploads_reports_the_state_after_uploading(workspace, run_cli):
    write_sample_logs(workspace / "logs", 5)
    assert run_cli("prepare-upload", "5").exit_code == 0
    listed = run_cli("retry-failed-uploads", "5").json
    assert {f["upload_status"] for f in listed["files"]} == {"pending"}
    done = run_cli("retry-failed-uploads", "5", "--execute")
    assert done.exit_code == 0, done.stdout
    assert len(done.json["files"]) == 4
    assert {f["upload_status"] for f in done.json["files"]} == {"verified"}
    assert all(f["last_error"] is None for f in done.json["files"])


def test_a_forced_rerun_counts_only_what_it_uploaded(workspace, run_cli):
    logs = write_sample_logs(workspace / "logs", 123)
    first = run_cli("archive", "123")
    assert summary_counts(first.stderr) == {"Collected": 4, "Uploaded": 4,
                                            "Already stored": 0, "Failed": 0}
    logs = write_sample_logs(workspace / "logs", 123)  # the same bytes back on disk
    build = next(p for p in logs if p.name == "123-build.log")
    build.write_bytes(build.read_bytes() + b"one more line\n")
    forced = run_cli("archive", "123", "--force")
    assert forced.exit_code == 0, forced.stdout
    # the new version went to a key of its own; the stored version is kept, not replaced
    assert forced.json["upload"]["verified"] == ["builds/123-build.log"]
    index = json.loads((workspace / "logs/.archive-index.json").read_text())
    [kept] = index["archives"][0]["kept_objects"]
    assert kept["local_path"] == "builds/123-build.log"
    assert summary_counts(forced.stderr) == {"Collected": 4, "Uploaded": 1,
                                             "Already stored": 3, "Failed": 0}


def test_a_partial_archive_and_its_retry_count_what_each_run_did(workspace, run_cli):
    write_sample_logs(workspace / "logs", 123)
    blocked = block_compression(workspace, 123)
    partial = run_cli("archive", "123")
    assert partial.exit_code == 3, partial.stdout
    assert summary_counts(partial.stderr) == {"Collected": 4, "Uploaded": 3,
                                              "Already stored": 0, "Failed": 1}
    compressed_copy_path(workspace / "logs" / blocked, "gzip").rmdir()
    retried = run_cli("archive", "123", "--retry")
    assert retried.exit_code == 0, retried.stdout
    assert retried.json["already_stored"] and retried.json["upload"]["verified"] == [blocked]
    assert summary_counts(retried.stderr) == {"Collected": 4, "Uploaded": 1,
                                              "Already stored": 3, "Failed": 0}


# --- what a new user types ------------------------------------------------------------

def test_an_unknown_command_lists_the_real_ones(workspace, run_cli):
    from log_archiver.cli import cli

    result = run_cli("serach", "flaky")  # click would guess "search"
    assert result.exit_code == 2
    [error] = one_object(result)["errors"]
    assert "'serach'" in error["message"] and "Did you mean" not in error["message"]
    assert all(name in error["message"] for name in cli.list_commands(None))
    assert len(cli.list_commands(None)) > 20
    sub = run_cli("file-manager", "uplod", "plan.json")
    assert sub.exit_code == 2 and "upload" in sub.json["errors"][0]["message"]
    assert "Did you mean" not in sub.json["errors"][0]["message"]


@pytest.mark.parametrize("value", ["007", "#007", "0123"])
def test_a_leading_zero_is_refused_with_the_number_to_write(workspace, run_cli, value):
    result = run_cli("collect-logs", value)
    assert result.exit_code == 2
    message = result.json["errors"][0]["message"]
    written = str(int(value.lstrip("#")))
    assert repr(value) in message and f"write it as {written}" in message


def test_a_hash_before_the_number_is_the_same_issue(workspace, run_cli):
    write_sample_logs(workspace / "logs", 7)
    plain, hashed = run_cli("collect-logs", "7"), run_cli("collect-logs", "#7")
    assert plain.exit_code == hashed.exit_code == 0
    assert plain.json["files"] == hashed.json["files"] and len(plain.json["files"]) == 4


@pytest.mark.parametrize("number", [-5, True, 5.9, "007", [5]])
def test_a_plan_with_a_bad_issue_number_is_refused(archived_inputs, run_cli, number):
    plan = json.loads((archived_inputs / "plan.json").read_text())
    (archived_inputs / "bad.json").write_text(json.dumps({**plan, "issue_number": number}))
    result = run_cli("file-manager", "upload", archived_inputs / "bad.json")
    assert result.exit_code == 2, result.stdout
    [error] = one_object(result)["errors"]
    assert error["type"] == "usage"
    assert str(number) in error["message"] or json.dumps(number) in error["message"]


def test_a_local_run_without_github_is_no_reason_for_a_warning_sign(workspace, run_cli):
    write_sample_logs(workspace / "logs", 6)
    result = run_cli("archive", "6")
    assert result.exit_code == 0
    assert any(w.startswith("GitHub steps skipped") for w in result.json["warnings"])
    first = result.stderr.splitlines()[0] if "…" not in result.stderr else next(
        line for line in result.stderr.splitlines() if "Logs archived" in line)
    assert first.startswith("✓ Logs archived for issue #6") and "warning" not in first
    assert "note: GitHub steps skipped" in result.stderr


def test_a_stderr_nobody_reads_never_fails_the_work(workspace):
    """An agent that closed the pipe it gave for stderr still gets its archive and JSON."""
    write_sample_logs(workspace / "logs", 9)
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader went away before the first line
    try:
        done = subprocess.run([str(Path(sys.executable).with_name("log-archiver")), "archive",
                               "9", "--no-commit"], cwd=workspace, stdout=subprocess.PIPE,
                              stderr=write_end, text=True, timeout=120)
    finally:
        os.close(write_end)
    assert done.returncode == 0, done.stdout
    document = json.loads(done.stdout)
    assert document["status"] == "ok" and document["entry"]["total_logs"] == 4


def test_a_file_name_cannot_send_escape_codes_to_the_terminal(workspace, run_cli):
    copy = workspace / "logs/builds/.9-\x1b[2Jx\x07.log.la.gz"
    copy.parent.mkdir(parents=True)
    copy.write_bytes(b"not ours to judge")
    old = time.time() - 8 * 86_400
    os.utime(copy, (old, old))  # old enough for the leftovers sweep to look at it
    result = run_cli("cleanup-local", "--orphans", "--dry-run")
    assert result.exit_code == 0, result.stdout
    assert any(copy.name in kept["path"] for kept in result.json["kept"])  # JSON: as it is
    assert ".9-?[2Jx?.log.la.gz" in result.stderr  # the summary names it ...
    assert "\x1b" not in result.stderr and "\x07" not in result.stderr  # ... harmlessly

"""Two batches in one repository: the second stops with a clear error naming the lock and
never touches the first one's checkpoint; a lock whose holder was killed is taken over."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import check_output, run_script, script
from fakegithub import FakeGitHub
from github_fixtures import REPOSITORY, TOKEN, closed_issues_project

INDEX = "logs/.archive-index.json"
CHECKPOINT = "logs/.archive-index.json.batch"
LOCK = "logs/.archive-index.json.batch.lock"
ISSUES = [31, 32, 33, 34]

HOLDER = """
import sys, time
from log_archiver.queue.checkpoint import Checkpoint
checkpoint = Checkpoint(sys.argv[1], "issues 1 reason=manual force=False retry=False")
checkpoint.load()
checkpoint.planned = [1]
checkpoint.save()
print("locked", flush=True)
time.sleep(600)
"""


@pytest.fixture
def project(workspace, isolated_git, github, monkeypatch):
    return closed_issues_project(workspace, github, monkeypatch, ISSUES)


def environment(github: FakeGitHub) -> dict:
    return {"LOG_ARCHIVER_RETRY_DELAY_SCALE": "0", "GITHUB_TOKEN": TOKEN,
            "GITHUB_REPOSITORY": REPOSITORY, "GITHUB_API_URL": github.url}


def wait_for(condition, what: str, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if condition():
            return
        if process is not None:
            assert process.poll() is None, f"ended before {what}: {process.communicate()}"
        time.sleep(0.005)
    pytest.fail(f"never {what}")


def assert_batch_locked(result, project: Path) -> dict:
    assert result.exit_code == 1, result.stdout + result.stderr
    doc = check_output(result)
    assert doc["status"] == "error"
    (error,) = doc["errors"]
    assert error["type"] == "batch_locked" and error["retryable"] is True
    assert str(project / LOCK) in error["message"]
    assert str(project / CHECKPOINT) in error["message"]
    assert "wait for that batch to end" in error["hint"]
    return error


def test_a_second_all_closed_batch_refuses_while_the_first_runs(project, github):
    github.delay = 0.15  # slow enough that the first batch is still running
    first = subprocess.Popen([*script("log-archiver"), "archive", "--all-closed", "-q"],
                             cwd=project, env=dict(os.environ), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: (project / CHECKPOINT).exists(), "wrote its checkpoint", first)
        second = run_script("log-archiver", "archive", "--all-closed", cwd=project)
        assert first.poll() is None  # refused while the first still ran
        error = assert_batch_locked(second, project)
        assert f"pid {first.pid}," in error["message"]
        assert "all-closed" in error["message"]
        out, err = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert first.returncode == 0, out + err
    doc = json.loads(out)
    assert [r["status"] for r in doc["issues"]] == ["ok"] * len(ISSUES)
    entries = json.loads((project / INDEX).read_text())["archives"]
    assert sorted(e["issue_number"] for e in entries) == ISSUES
    assert all(not e["partial_archive"] for e in entries)
    assert not (project / CHECKPOINT).exists() and not (project / LOCK).exists()


def test_a_held_lock_leaves_the_checkpoint_alone_and_a_killed_holder_is_taken_over(
        project, github, run_cli):
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(project / CHECKPOINT)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        before = (project / CHECKPOINT).read_bytes()
        for args in (("archive", "--all-closed"), ("archive", "31", "32")):
            error = assert_batch_locked(run_cli(*args), project)
            assert f"pid {holder.pid}," in error["message"]
        assert (project / CHECKPOINT).read_bytes() == before
        assert github.requests == []  # stopped before asking GitHub anything
        assert not (project / INDEX).exists()
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    result = run_cli("archive", "--all-closed")  # the kernel dropped the dead holder's lock
    assert result.exit_code == 0, result.stdout + result.stderr
    assert any("ignored" in w and "another batch" in w for w in result.json["warnings"])
    assert [r["status"] for r in result.json["issues"]] == ["ok"] * len(ISSUES)
    assert not (project / CHECKPOINT).exists() and not (project / LOCK).exists()


def test_a_symlinked_lock_is_refused_and_not_followed(project, github, run_cli, tmp_path):
    elsewhere = tmp_path / "precious.txt"
    elsewhere.write_text("keep me\n")
    (project / LOCK).symlink_to(elsewhere)
    result = run_cli("archive", "--all-closed")
    assert result.exit_code == 1, result.stdout
    (error,) = result.json["errors"]
    assert error["type"] == "local_file" and "is a symlink" in error["message"]
    assert str(project / LOCK) in error["message"] and "remove" in error["hint"]
    assert elsewhere.read_text() == "keep me\n"
    assert github.requests == [] and not (project / CHECKPOINT).exists()


def test_init_ignores_the_batch_lock(project, run_cli):
    assert run_cli("init").exit_code == 0
    ignored = subprocess.run(["git", "check-ignore", "-q", LOCK], cwd=project)
    assert ignored.returncode == 0

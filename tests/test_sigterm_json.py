"""SIGTERM (a CI job cancelled, a container stopped, `kill`) stops every command as Ctrl-C
does: one JSON object with an ``interrupted`` error, exit 130, the cleanup done, and a
rerun finishes the work. Each test runs the installed command in a process of its own
and sends it a real SIGTERM once it is known to be under way."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import Result, check_output, run_script, script
from github_fixtures import closed_issues_project
from log_archiver.cli.commands import COMMANDS

INDEX = "logs/.archive-index.json"
CHECKPOINT = "logs/.archive-index.json.batch"
LOCK = "logs/.archive-index.json.batch.lock"
ISSUES = [41, 42, 43, 44]


def wait_for(condition, what: str, process: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        assert process.poll() is None, f"ended before {what}: {process.communicate()}"
        time.sleep(0.005)
    pytest.fail(f"never {what}")


def start(args: list[str], cwd: Path, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([*script("log-archiver"), *args], cwd=cwd,
                            env=dict(os.environ) if env is None else env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def terminate(process: subprocess.Popen) -> Result:
    """SIGTERM ``process``; what it printed, once it ended (killed if it hangs)."""
    try:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    return Result(process.returncode, out, err)


def assert_interrupted(result: Result, command: str) -> dict:
    """Exit 130 and stdout exactly one JSON object, valid, saying SIGTERM stopped it."""
    assert result.exit_code == 130, (result.exit_code, result.stdout, result.stderr)
    doc = check_output(result)  # json.loads: one object and nothing else on stdout
    assert doc["command"] == command and doc["status"] == "error"
    [error] = doc["errors"]
    assert error["type"] == "interrupted" and error["retryable"] is True
    assert "SIGTERM" in error["message"] and "run the same" in error["hint"]
    assert "Traceback" not in result.stderr
    return doc


@pytest.fixture
def project(workspace, isolated_git, github, monkeypatch):
    return closed_issues_project(workspace, github, monkeypatch, ISSUES)


def archived(project: Path) -> list[int]:
    try:
        entries = json.loads((project / INDEX).read_text())["archives"]
    except (FileNotFoundError, ValueError):  # not yet, or being replaced
        return []
    return sorted(entry["issue_number"] for entry in entries)


def test_sigterm_stops_a_batch_with_its_json_and_a_rerun_finishes_it(project, github):
    github.delay = 0.1  # slow enough to be caught between two issues
    batch = start(["archive", "--all-closed"], project)
    # under way: its checkpoint is written and one issue is in the index
    wait_for(lambda: (project / CHECKPOINT).exists() and archived(project), "archived one",
             batch)
    stopped = terminate(batch)
    assert_interrupted(stopped, "archive")
    assert "interrupted (SIGTERM)" in stopped.stderr  # the human line says it too
    assert len(archived(project)) < len(ISSUES), "the batch was over before SIGTERM"
    # the cleanup ran: the lock was given back and removed (a SIGKILL leaves the file)
    assert (project / CHECKPOINT).exists() and not (project / LOCK).exists()

    github.delay = 0
    rerun = run_script("log-archiver", "archive", "--all-closed", cwd=project)
    assert rerun.exit_code == 0, rerun.stdout + rerun.stderr
    assert not any("another batch" in w for w in rerun.json.get("warnings", []))
    assert archived(project) == ISSUES
    entries = json.loads((project / INDEX).read_text())["archives"]
    assert all(not entry["partial_archive"] for entry in entries)
    assert not (project / CHECKPOINT).exists() and not (project / LOCK).exists()


def test_sigterm_stops_a_single_archive_and_a_rerun_finishes_it(project, github):
    github.delay = 0.3
    one = start(["archive", "41", "-q"], project)
    wait_for(lambda: github.requests, "asked GitHub", one)
    stopped = terminate(one)
    assert_interrupted(stopped, "archive")
    assert stopped.stderr.strip() == "", "-q: nothing for people on stderr"
    github.delay = 0
    rerun = run_script("log-archiver", "archive", "41", cwd=project)
    assert rerun.exit_code == 0, rerun.stdout + rerun.stderr
    assert archived(project) == [41]


@pytest.fixture
def silent_redis():
    """A TCP port that takes connections and never answers: a Redis client waits there."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        server.settimeout(60)
        yield server


@pytest.mark.parametrize(("args", "command"), [
    (["enqueue", "5"], "enqueue"), (["enqueue", "5", "--reason", "manual", "-q"], "enqueue"),
    (["queue", "status"], "queue"),
])
def test_sigterm_while_the_queue_is_reached_prints_the_json(workspace, silent_redis, args,
                                                            command):
    """What waits on the broker: a webhook's enqueue (both ways of reading its words),
    the queue commands."""
    port = silent_redis.getsockname()[1]
    env = {**os.environ, "LOG_ARCHIVER_QUEUE_URL": f"redis://127.0.0.1:{port}/0"}
    process = start(args, workspace, env)
    try:
        connection, _ = silent_redis.accept()
    except TimeoutError:
        process.kill()
        pytest.fail(f"never connected: {process.communicate()}")
    with connection:
        connection.settimeout(60)
        assert connection.recv(1), "connected and said nothing"  # it now waits for us
        stopped = terminate(process)
    assert_interrupted(stopped, command)


# The signal comes as a module is imported (an import hook, nothing of ours replaced).
SIGTERM_ON_IMPORT = """
import os, signal, sys
from log_archiver.cli import main

class SigtermOnImport:
    def find_spec(self, fullname, path=None, target=None):
        if fullname == sys.argv[1]:
            os.kill(os.getpid(), signal.SIGTERM)
        return None

sys.meta_path.insert(0, SigtermOnImport())
main(sys.argv[2:])
"""


def sigterm_on_import(cwd: Path, module: str, *words: str) -> Result:
    done = subprocess.run([sys.executable, "-c", SIGTERM_ON_IMPORT, module, *words],
                          cwd=cwd, capture_output=True, text=True, timeout=120)
    return Result(done.returncode, done.stdout, done.stderr)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_stops_on_sigterm_with_its_json(workspace, name):
    """As its own module loads, before any of its code runs: the handler is in place."""
    module = f"log_archiver.cli.{COMMANDS[name].partition(':')[0]}"
    assert_interrupted(sigterm_on_import(workspace, module, name), name)


def test_a_worker_stopped_before_it_takes_jobs_prints_the_json(workspace):
    """Before its own graceful stop is in place (the settings read, huey loaded, the
    queue opened: seconds on a busy SQLite file), SIGTERM is an interruption too."""
    assert_interrupted(sigterm_on_import(workspace, "huey", "worker", "--once"), "worker")


def test_a_git_command_under_way_is_let_finish_before_the_command_stops(tmp_path):
    """A git killed mid-write leaves a .lock that stops every later git command."""
    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    hooks = repo / "hooks"
    hooks.mkdir()
    started, finished = tmp_path / "hook-started", tmp_path / "hook-finished"
    (hooks / "pre-commit").write_text(
        f"#!/bin/sh\ntouch '{started}'\nsleep 1\ntouch '{finished}'\n")
    (hooks / "pre-commit").chmod(0o755)
    child = subprocess.Popen([sys.executable, "-c", f"""
from log_archiver.cli.output import sigterm_interrupts
from log_archiver.integrations.gitplumbing import run_git
with sigterm_interrupts():
    try:
        run_git({str(repo)!r}, ["-c", "core.hooksPath=hooks", "-c", "user.name=t",
                               "-c", "user.email=t@t", "commit", "-q", "--allow-empty",
                               "-m", "under way"])
    except KeyboardInterrupt:
        print("interrupted")
"""], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(started.exists, "started git's hook", child)
    child.send_signal(signal.SIGTERM)
    stdout, stderr = child.communicate(timeout=60)
    assert stdout.strip() == "interrupted", stderr
    assert finished.exists()  # git was not killed half way
    log = subprocess.run(["git", "-C", str(repo), "log", "--format=%s"],
                         capture_output=True, text=True, check=True).stdout
    assert log.strip() == "under way"
    assert not list((repo / ".git").rglob("*.lock"))

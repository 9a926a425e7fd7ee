"""The worker as a real process: killed with SIGKILL mid-job, stopped with SIGTERM within
and past its shutdown timeout; a store that is down opens the circuit breaker."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from conftest import script
from log_archiver.util.samples import write_sample_logs
from log_archiver.util.schemas import violations

PAUSE = "LOG_ARCHIVER_TEST_JOB_PAUSE"


def _cli(workspace, *args, env=None) -> dict:
    done = subprocess.run([*script("log-archiver"), *args], cwd=workspace, env=env,
                          capture_output=True, text=True, timeout=120)
    document = json.loads(done.stdout)
    assert violations(f"output/{document['command']}.json", document) == []
    document["_exit"] = done.returncode
    document["_stderr"] = done.stderr
    return document


def _worker(workspace, *args, pause: str | None = None) -> subprocess.Popen:
    env = dict(os.environ)
    if pause:
        env[PAUSE] = pause
    return subprocess.Popen([*script("log-archiver"), "worker", *args], cwd=workspace, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_state(workspace, state: str, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = _cli(workspace, "queue", "status")
        if status["counts"][state]:
            return status
        time.sleep(0.1)
    raise AssertionError(f"no job became {state} in {timeout} s: {status}")


def _finished(process: subprocess.Popen, timeout: float) -> tuple[dict, float, str]:
    started = time.monotonic()
    out, err = process.communicate(timeout=timeout)
    document = json.loads(out)
    assert violations("output/worker.json", document) == []
    return document, time.monotonic() - started, err


def _wait_for_plan(workspace, issue: int, timeout: float = 60.0) -> dict:
    """The issue's entry once its plan (every log) is in the index."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            entry = _index(workspace).get(issue)
        except (OSError, ValueError):  # not written yet
            entry = None
        if entry is not None and len(entry["logs"]) == 4:
            return entry
        time.sleep(0.05)
    raise AssertionError(f"issue #{issue} was not planned in {timeout} s")


def _index(workspace) -> dict:
    data = json.loads((workspace / "logs" / ".archive-index.json").read_text())
    return {entry["issue_number"]: entry for entry in data["archives"]}


@pytest.fixture
def two_issues(workspace):
    for n, issue in enumerate((41, 42)):
        write_sample_logs(workspace / "logs", issue, big=200_000, small=5_000, seed=n)
    return workspace


def test_a_worker_killed_mid_job_leaves_it_for_the_next_worker(two_issues):
    workspace = two_issues
    job = _cli(workspace, "enqueue", "41")["jobs"][0]["id"]
    worker = _worker(workspace, pause="uploading:60")
    try:
        running = _wait_for_state(workspace, "running")
        assert running["jobs"][0]["id"] == job
        planned = _wait_for_plan(workspace, 41)  # then the pause: nothing is uploaded
        assert planned["upload_complete"] is False
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait(30)
    after_kill = _cli(workspace, "queue", "status")
    assert after_kill["counts"]["running"] == 1 and after_kill["stale_running"] == [job]

    again = _cli(workspace, "worker", "--once")
    assert again["_exit"] == 0, again
    assert again["recovered"] == [job]
    assert [(j["job"], j["outcome"], j["status"]) for j in again["jobs"]] == [
        (job, "done", "ok")]
    entry = _index(workspace)[41]
    assert entry["upload_complete"] and not entry["partial_archive"]
    assert {log["upload_status"] for log in entry["logs"]} == {"cleaned"}
    final = _cli(workspace, "queue", "status")
    assert final["counts"] == {"pending": 0, "running": 0, "failed": 0, "done": 1}
    assert violations("output/queue.json",
                      {k: v for k, v in final.items() if not k.startswith("_")}) == []


def test_sigterm_lets_the_running_job_finish_and_takes_no_new_one(two_issues):
    workspace = two_issues
    first, second = (j["id"] for j in _cli(workspace, "enqueue", "41", "42")["jobs"])
    worker = _worker(workspace, "--shutdown-timeout", "30", pause="uploading:2")
    _wait_for_state(workspace, "running")
    worker.send_signal(signal.SIGTERM)
    document, seconds, err = _finished(worker, 60)
    assert worker.returncode == 0, err
    assert seconds < 30
    assert document["stopped_by"] == "signal"
    assert [(j["job"], j["outcome"]) for j in document["jobs"]] == [(first, "done")]
    status = _cli(workspace, "queue", "status")
    states = {j["id"]: j["state"] for j in status["jobs"]}
    assert states == {first: "done", second: "pending"}
    assert _index(workspace)[41]["upload_complete"]


def test_a_job_cut_off_by_the_shutdown_timeout_goes_back_to_the_queue(two_issues):
    workspace = two_issues
    job = _cli(workspace, "enqueue", "41")["jobs"][0]["id"]
    worker = _worker(workspace, "--shutdown-timeout", "1", pause="uploading:60")
    _wait_for_state(workspace, "running")
    worker.send_signal(signal.SIGINT)
    document, seconds, err = _finished(worker, 30)
    assert seconds < 15
    assert worker.returncode == 3, err
    assert [(j["job"], j["outcome"]) for j in document["jobs"]] == [(job, "cut_off")]
    pending = _cli(workspace, "queue", "status")
    assert pending["counts"]["pending"] == 1 and pending["waiting_messages"] == 1
    assert "cut off" in pending["jobs"][0]["note"]

    again = _cli(workspace, "worker", "--once")
    assert again["_exit"] == 0, again
    assert [(j["job"], j["outcome"]) for j in again["jobs"]] == [(job, "done")]
    assert _index(workspace)[41]["upload_complete"]


def test_a_store_that_is_down_opens_the_breaker_and_retry_completes_the_jobs(
        s3_workspace, run_cli, monkeypatch):
    workspace = s3_workspace.root
    monkeypatch.setenv("LOG_ARCHIVER_RETRY_DELAY_SCALE", "0")
    issues = list(range(60, 67))
    for n, issue in enumerate(issues):
        write_sample_logs(workspace / "logs", issue, big=20_000, small=2_000, seed=n)
    queued = run_cli("enqueue", *map(str, issues))
    assert queued.exit_code == 0
    s3_workspace.proxy.fail_matching(".*", "internal")  # the store answers 500 to everything

    down = run_cli("worker", "--once")
    assert down.exit_code == 3, down.stdout
    failed = [j for j in down.json["jobs"] if j["outcome"] == "failed"]
    assert sorted(j["issue"] for j in failed) == issues  # every job failed, none lost
    assert down.json["breaker_open"] is True
    by_breaker = [j for j in failed if j["error"]["type"] == "store_unavailable"]
    assert len(by_breaker) >= len(issues) - 2  # after 5 store failures, no more tries
    assert all("queue retry --all-failed" in j["error"]["hint"] for j in failed)
    assert "until" in by_breaker[0]["error"]["message"]
    tried = s3_workspace.proxy.count(r"^PUT ")
    status = run_cli("queue", "status").json
    assert status["counts"] == {"pending": 0, "running": 0, "failed": 7, "done": 0}

    s3_workspace.proxy.clear_rules()  # the store is back
    retried = run_cli("queue", "retry", "--all-failed")
    assert retried.exit_code == 0 and len(retried.json["jobs"]) == 7
    up = run_cli("worker", "--once")
    assert up.exit_code == 0, up.stdout
    assert sorted(j["issue"] for j in up.json["jobs"] if j["outcome"] == "done") == issues
    assert s3_workspace.proxy.count(r"^PUT ") > tried
    entries = _index(workspace)
    assert all(entries[issue]["upload_complete"] for issue in issues)
    assert run_cli("queue", "status").json["counts"]["done"] == 7

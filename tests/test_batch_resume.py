"""A batch killed at any point and run again: every issue archived once, none twice, the
index valid and committed, GitHub not asked again. A store that is down: the breaker
opens after the configured failures and the rest are not attempted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import check_output, run_script, script
from fakegithub import FakeGitHub
from github_fixtures import REPOSITORY, TOKEN
from gitutil import first_commit, git, init_repo
from log_archiver.queue.batch import CLEAN_EVERY
from log_archiver.util.samples import write_sample_logs

INDEX = "logs/.archive-index.json"
CHECKPOINT = "logs/.archive-index.json.batch"
ISSUES = list(range(21, 21 + 2 * CLEAN_EVERY + 2))  # cleaned up in three steps


@pytest.fixture
def project(workspace, isolated_git):
    init_repo(workspace)
    first_commit(workspace)
    return workspace


def environment(github: FakeGitHub | None, **extra) -> dict:
    env = dict(os.environ, LOG_ARCHIVER_RETRY_DELAY_SCALE="0", GITHUB_TOKEN=TOKEN,
               GITHUB_REPOSITORY=REPOSITORY, **extra)
    if github is not None:
        env["GITHUB_API_URL"] = github.url
    return env


def read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def kill_when(project: Path, github: FakeGitHub, ready) -> subprocess.Popen:
    """Start `archive --all-closed`, SIGKILL it once ``ready(checkpoint, index)`` holds."""
    process = subprocess.Popen([*script("log-archiver"), "archive", "--all-closed", "-q"],
                               cwd=project, env=environment(github), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        checkpoint = read_json(project / CHECKPOINT)
        index = read_json(project / INDEX)
        if checkpoint is not None and ready(checkpoint, index):
            process.send_signal(signal.SIGKILL)
            process.communicate(timeout=30)
            return process
        assert process.poll() is None, "the batch ended before the point it was to be killed " \
                                       f"at: {process.communicate()}"
        time.sleep(0.002)
    process.kill()
    pytest.fail("the kill point was never reached")


def after_done(count):
    return lambda checkpoint, index: len(checkpoint["done"]) >= count


def mid_issue(checkpoint, index):
    """An issue has an index entry (prepared, uploading or cleaning) but is not done."""
    if index is None or len(checkpoint["done"]) < 2:
        return False
    return any(str(e["issue_number"]) not in checkpoint["done"] for e in index["archives"])


def at_start(checkpoint, index):
    return not checkpoint["done"]


@pytest.mark.parametrize("ready", [at_start, after_done(1), mid_issue,
                                   after_done(CLEAN_EVERY + 1)],
                         ids=["at-start", "after-a-step-done", "mid-issue",
                              "after-two-steps-done"])
def test_a_killed_batch_resumes_and_archives_each_issue_once(project, github, ready):
    for number in ISSUES:
        github.add_issue(number, f"Issue {number}", state="closed")
        write_sample_logs(project / "logs", number, big=400_000, small=3_000, seed=number)
    github.add_issue(40, "Open one")
    write_sample_logs(project / "logs", 40, big=10_000, small=1_000)
    github.delay = 0.02  # each issue takes a few answers' time: room to kill it half way

    kill_when(project, github, ready)
    first = read_json(project / CHECKPOINT)
    assert first is not None and first["planned"] == ISSUES
    assert git(project, "rev-list", "--count", "HEAD").strip() == "1"  # nothing committed
    finished = {int(n) for n, status in first["done"].items() if status == "ok"}
    asked_before = len(github.requests)

    github.delay = 0
    again = run_script("log-archiver", "archive", "--all-closed", cwd=project,
                       env=environment(github))
    assert again.exit_code == 0, again.stderr
    doc = again.json
    assert doc["status"] == "ok" and doc["closed_check"]["from_checkpoint"] is True
    rerun = github.requests[asked_before:]
    assert not [r for r in rerun if r.path.endswith("/issues")]  # no page asked again
    assert not [r for r in rerun if r.path.endswith(tuple(f"/issues/{n}/comments"
                                                          for n in finished))]
    results = {r["issue_number"]: r for r in doc["issues"]}
    assert set(results) == set(ISSUES)
    assert {n for n, r in results.items() if r.get("resumed")} == finished
    assert [s["issue_number"] for s in doc["skipped_issues"]] == [40]

    index = json.loads((project / INDEX).read_text())
    numbers = [e["issue_number"] for e in index["archives"]]
    assert sorted(numbers) == ISSUES  # each once; the open one not at all
    for entry in index["archives"]:
        assert entry["total_logs"] == 4 and not entry["partial_archive"]
        assert {log["upload_status"] for log in entry["logs"]} == {"cleaned"}
        assert not entry.get("kept_objects")  # nothing was stored twice under other keys
        assert len(github.comments[entry["issue_number"]]) == 1  # commented once
    keys = [log["remote_path"] for e in index["archives"] for log in e["logs"]]
    assert len(keys) == len(set(keys)) == 4 * len(ISSUES)
    validated = run_script("log-archiver", "validate-index", cwd=project,
                           env=environment(None))
    assert validated.exit_code == 0, validated.stdout
    assert json.loads(git(project, "show", f"HEAD:{INDEX}")) == index  # committed
    assert git(project, "status", "--porcelain", "--", INDEX).strip() == ""
    message = git(project, "log", "-1", "--format=%B")
    assert message.startswith(f"Archive logs for {len(ISSUES)} issues (")
    assert not (project / CHECKPOINT).exists()
    assert (project / "logs/builds/40-build.log").exists()


def test_a_store_that_is_down_opens_the_breaker_and_the_rest_are_not_attempted(
        project, github, closed_port):
    (project / ".log-archiver.json").write_text(json.dumps({
        "storage": "s3://archive-bucket/logs",
        "s3": {"endpoint_url": f"http://127.0.0.1:{closed_port}", "region": "us-east-1"},
        "queue": {"breaker_failures": 2, "breaker_cooldown_seconds": 600}}))
    issues = [3, 5, 7, 9, 11]
    for number in issues:
        write_sample_logs(project / "logs", number, big=50_000, small=2_000, seed=number)
    env = environment(github, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test")
    env.pop("LOG_ARCHIVER_STORAGE")
    started = time.time()
    done = subprocess.run([*script("log-archiver"), "archive", *map(str, issues)], cwd=project,
                          env=env, capture_output=True, text=True, timeout=300)
    from conftest import Result

    result = Result(done.returncode, done.stdout, done.stderr)
    doc = check_output(result)
    assert result.exit_code == 3, result.stderr
    assert doc["status"] == "partial"
    statuses = [r["status"] for r in doc["issues"]]
    assert statuses == ["partial", "partial", "not_attempted", "not_attempted", "not_attempted"]
    for failed in doc["issues"][:2]:
        assert {f["type"] for f in failed["upload"]["failed"]} == {"storage_transient"}
    assert doc["breaker"]["open"] is True and doc["breaker"]["failures"] == 2
    assert doc["breaker"]["last_error"]["type"] == "storage_transient"
    from log_archiver.util.clock import parse_iso

    retry_at = parse_iso(doc["retry_after"]).timestamp()
    assert started + 590 <= retry_at <= time.time() + 601
    assert doc["retry_after"] in doc["hint"]
    index = json.loads((project / INDEX).read_text())
    assert sorted(e["issue_number"] for e in index["archives"]) == [3, 5]  # the rest untouched
    for number in (7, 9, 11):
        assert (project / f"logs/builds/{number}-build.log").exists()
    assert not github.comments.get(7)
    assert f"Store failing: stopped trying it; try again after {doc['retry_after']}" \
        in result.stderr
    assert not (project / CHECKPOINT).exists()

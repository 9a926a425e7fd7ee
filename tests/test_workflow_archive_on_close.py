"""examples/github-actions/archive-on-close.yml: it parses, asks only for what it needs, and
its own shell steps work in a checkout as the Action has it (GITHUB_* set, the local fake
GitHub behind GITHUB_API_URL), including a push that another run beat, against a real bare
remote."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO
from fakegithub import FakeGitHub
from gitutil import git
from log_archiver.util.samples import write_sample_logs

WORKFLOW = REPO / "examples" / "github-actions" / "archive-on-close.yml"
REPOSITORY = "octo/proj"
TOKEN = "ghs_test_token"
INDEX = "logs/.archive-index.json"


def load() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def steps() -> list[dict]:
    return load()["jobs"]["archive"]["steps"]


def test_the_workflow_asks_for_exactly_what_it_needs():
    doc = load()
    trigger = doc.get("on", doc.get(True))  # YAML 1.1 reads a bare `on` as true
    assert trigger == {"issues": {"types": ["closed"]}}
    assert doc["permissions"] == {"issues": "write", "contents": "write"}
    job = doc["jobs"]["archive"]
    assert "permissions" not in job
    text = WORKFLOW.read_text()
    assert set(re.findall(r"secrets\.([A-Za-z_][A-Za-z0-9_]*)", text)) == {"GITHUB_TOKEN"}
    # no concurrency group (it would cancel pending runs and drop their archives)
    assert "concurrency" not in doc and "concurrency" not in job
    runs = [step["run"] for step in steps() if "run" in step]
    assert any(r.strip() == "log-archiver archive ${{ github.event.issue.number }} "
                            "--reason issue_closed" for r in runs)
    uses = [step["uses"].split("@")[0] for step in steps() if "uses" in step]
    assert uses == ["actions/checkout", "actions/setup-python"]


def step_script(step: dict, event: dict) -> str:
    """A step's shell text with the expressions GitHub would substitute."""
    text = step["run"].replace("${{ github.event.issue.number }}",
                               str(event["issue"]["number"]))
    text = text.replace("${{ secrets.GITHUB_TOKEN }}", TOKEN)
    assert "${{" not in text, f"an expression the test does not know: {text}"
    return text


def run_step(step: dict, event: dict, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    step_env = dict(env)
    for name, value in (step.get("env") or {}).items():
        step_env[name] = str(value).replace("${{ secrets.GITHUB_TOKEN }}", TOKEN)
    # GitHub runs a step's `run` as `bash -e {0}`
    return subprocess.run(["bash", "-e", "-c", step_script(step, event)], cwd=cwd,
                          env=step_env, capture_output=True, text=True, timeout=300)


@pytest.fixture
def github():
    with FakeGitHub(REPOSITORY, token=TOKEN) as fake:
        yield fake


def clone(remote: Path, where: Path) -> Path:
    subprocess.run(["git", "clone", "-q", str(remote), str(where)], check=True)
    return where


def test_the_steps_archive_commit_and_push_past_a_run_that_pushed_first(
        workspace, isolated_git, github, tmp_path):
    remote = tmp_path / "origin.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True)
    bin_dir = str(Path(sys.executable).parent)
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("GITHUB_", "LOG_ARCHIVER_LOGS_DIR"))}
    env["PATH"] = bin_dir + os.pathsep + env["PATH"]
    env["LOG_ARCHIVER_RETRY_DELAY_SCALE"] = "0"

    # the repository: committed logs of two issues, a committed config and git setup
    seed = clone(remote, tmp_path / "seed")
    for issue in (41, 42):
        write_sample_logs(seed / "logs", issue, big=200_000, small=2_000, seed=issue)
    (seed / ".log-archiver.json").write_text(json.dumps({"logs_dir": "logs"}) + "\n")
    subprocess.run(["log-archiver", "init", "-q"], cwd=seed, env=env, check=True,
                   capture_output=True)
    git(seed, "add", "-A")
    git(seed, "commit", "-q", "-m", "logs of #41 and #42")
    git(seed, "push", "-q", "origin", "HEAD:main")

    # actions/checkout: a clone of the default branch
    checkout = clone(remote, tmp_path / "runner" / "proj")
    github.add_issue(42, "Closed issue", state="closed")
    event = {"action": "closed", "issue": {"number": 42, "state": "closed"},
             "repository": {"full_name": REPOSITORY}}
    event_path = tmp_path / "event.json"
    event_path.write_text(json.dumps(event))
    action_env = dict(env, GITHUB_REPOSITORY=REPOSITORY, GITHUB_EVENT_PATH=str(event_path),
                      GITHUB_EVENT_NAME="issues", GITHUB_API_URL=github.url,
                      GITHUB_REF_NAME="main", GITHUB_REF="refs/heads/main",
                      GITHUB_ACTIONS="true", CI="true")

    todo = [step for step in steps() if "run" in step]
    install, *rest = todo
    assert install["run"].startswith("python -m pip install")  # (no network here: skipped)
    *archive_steps, push = rest
    for step in archive_steps:
        done = run_step(step, event, checkout, action_env)
        assert done.returncode == 0, (step["name"], done.stdout, done.stderr)
        if "log-archiver archive" in step["run"]:
            result = json.loads(done.stdout)
            assert result["status"] == "ok" and result["issue_number"] == 42
            assert result["comment"]["action"] == "created"
    assert len(github.comments[42]) == 1

    # meanwhile another run archived #41 and pushed first
    other = clone(remote, tmp_path / "other")
    subprocess.run(["log-archiver", "init", "-q"], cwd=other, env=env, check=True,
                   capture_output=True)
    archived = subprocess.run(["log-archiver", "archive", "41", "-q"], cwd=other, env=env,
                              capture_output=True, text=True)
    assert archived.returncode == 0, archived.stdout
    git(other, "push", "-q", "origin", "HEAD:main")

    pushed = run_step(push, event, checkout, action_env)
    assert pushed.returncode == 0, (pushed.stdout, pushed.stderr)
    assert "push rejected (attempt 1)" in pushed.stdout

    final = clone(remote, tmp_path / "final")
    index = json.loads((final / INDEX).read_text())
    assert sorted(e["issue_number"] for e in index["archives"]) == [41, 42]
    assert [e["archive_reason"] for e in index["archives"]] == ["issue_closed", "manual"]
    assert not list((final / "logs").rglob("4[12]-*"))  # archived logs left git
    assert not list((final / "logs/sessions").glob("session-4[12]-*"))
    subjects = git(final, "log", "--format=%s").splitlines()
    assert subjects[:2] == ["Archive logs for issue #42", "Archive logs for issue #41"]
    validated = subprocess.run(["log-archiver", "validate-index", str(final / INDEX)],
                               cwd=final, env=env, capture_output=True, text=True)
    assert validated.returncode == 0, validated.stdout

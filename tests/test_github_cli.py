"""End to end: the installed `log-archiver` script against a local stand-in for the GitHub
API (through GITHUB_API_URL, plain http on a free port), in a real git repository."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from conftest import run_script
from fakegithub import FakeGitHub
from github_fixtures import REPOSITORY, TOKEN
from gitutil import audit_file, first_commit, git, init_repo
from log_archiver.integrations.comment import marker
from log_archiver.util.samples import log_text, write_sample_logs

INDEX = "logs/.archive-index.json"
SESSION = "sessions/session-{issue}-2025-02-01.md"
SESSION_TEXT = ("# Session\n\nStarted: 2025-02-01T09:00:00Z\n\nfixed the flaky deploy\n\n"
                "Ended: 2025-02-01T11:30:00Z\n")


@pytest.fixture
def project(workspace, isolated_git):
    """The workspace as a git repository with one commit and some work in progress."""
    init_repo(workspace)
    first_commit(workspace)
    (workspace / "README.md").write_text("project\nstaged change\n")
    git(workspace, "add", "README.md")
    (workspace / "notes.txt").write_text("untracked work\n")
    return workspace


def logs_of(project: Path, issue: int) -> dict[str, bytes]:
    write_sample_logs(project / "logs", issue, big=1_200_000, small=4_000)
    session = project / "logs" / SESSION.format(issue=issue)
    session.write_text(SESSION_TEXT)
    return tree(project / "logs")


def tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def archive(project: Path, github: FakeGitHub | None, *args: str,
            **env_changes: str | None) -> dict:
    """Run the installed script; returns its JSON output (validated) with the exit code."""
    env = dict(os.environ, LOG_ARCHIVER_RETRY_DELAY_SCALE="0", GITHUB_TOKEN=TOKEN,
               GITHUB_REPOSITORY=REPOSITORY)
    if github is not None:
        env["GITHUB_API_URL"] = github.url
    for name, value in env_changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    done = run_script("log-archiver", "archive", *args, cwd=project, env=env)
    return {**done.json, "exit_code": done.exit_code, "stderr": done.stderr}


def index_entry(project: Path, issue: int) -> dict:
    doc = json.loads((project / INDEX).read_text())
    [entry] = [e for e in doc["archives"] if e["issue_number"] == issue]
    return entry


def user_work(project: Path) -> list[str]:
    """git status without the archive's own files."""
    return [line for line in git(project, "status", "--porcelain").splitlines()
            if "logs/" not in line]


def test_closed_issue_is_archived_commented_once_and_committed(project, github):
    github.add_issue(42, "Flaky deploy", state="closed")
    logs_of(project, 42)
    first = archive(project, github, "42", "--reason", "issue_closed")

    assert first["exit_code"] == 0, first["stderr"]
    assert first["status"] == "ok" and first["warnings"] == []
    assert first["trigger"]["checked"] is True
    [posted] = github.comments[42]
    assert posted["body"].startswith(marker(42)) and posted["body"] == first["comment"]["body"]
    assert first["comment"]["posted"] is True and first["comment"]["action"] == "created"
    assert first["comment"]["url"] == f"https://github.com/{REPOSITORY}/issues/42" \
                                      f"#issuecomment-{posted['id']}"
    assert f"({len(SESSION_TEXT)} B, 2h 30m)" in posted["body"]  # size and session length
    assert [c.headers["authorization"] for c in github.calls("POST")] == [f"token {TOKEN}"]

    entry = index_entry(project, 42)
    assert entry["issue_title"] == "Flaky deploy"
    assert entry["issue_url"] == f"https://github.com/{REPOSITORY}/issues/42"
    assert entry["archive_reason"] == "issue_closed" and entry["total_logs"] == 5
    assert first["commit"]["status"] == "ok"
    audit = audit_file(project)
    assert git(project, "show", "--name-only", "--format=", "HEAD").split() == [audit, INDEX]
    message = git(project, "log", "-1", "--format=%B")
    assert message.startswith("Archive logs for issue #42\n\n- Archived 5 logs to local storage\n")
    assert "Archive reason: issue_closed\nIssue: #42" in message
    assert user_work(project) == ["M  README.md", "?? notes.txt"]  # staged stays staged

    (project / "logs/debug").mkdir()
    (project / "logs/debug/42-trace.log").write_bytes(log_text(3_000, 7))
    again = archive(project, github, "42", "--force")

    assert again["exit_code"] == 0, again["stderr"]
    assert again["comment"]["action"] == "updated"
    [edited] = github.comments[42]  # the same comment, edited: not a second one
    assert edited["id"] == posted["id"] and "42-trace.log" in edited["body"]
    assert len(github.calls("POST")) == 1 and len(github.calls("PATCH")) == 1
    assert index_entry(project, 42)["total_logs"] == 6
    assert git(project, "rev-list", "--count", "HEAD").strip() == "3"
    assert user_work(project) == ["M  README.md", "?? notes.txt"]


def test_open_issue_fails_the_trigger_before_anything_is_touched(project, github):
    github.add_issue(7, "Still open")
    before = logs_of(project, 7)
    head = git(project, "rev-parse", "HEAD")

    result = archive(project, github, "7", "--reason", "issue_closed")

    assert result["exit_code"] == 1 and result["status"] == "error"
    [error] = result["errors"]
    assert error["type"] == "trigger_not_met" and "'open', not closed" in error["message"]
    assert "`--reason manual` or `--force`" in error["hint"]
    assert tree(project / "logs") == before  # byte for byte, and no index
    assert not (project / INDEX).exists() and not (project.parent / "store").exists()
    assert git(project, "rev-parse", "HEAD") == head
    assert github.calls("POST") == [] and github.calls("PATCH") == []


def test_pr_merged_found_through_the_timeline_and_a_named_pr_that_is_not(project, github):
    github.add_issue(11, "Needs a fix")
    github.add_pull(12, merged=True)
    github.add_pull(13, merged=False)
    github.reference(11, 12)
    logs_of(project, 11)

    refused = archive(project, github, "11", "--reason", "pr_merged", "--pr", "13")
    assert refused["exit_code"] == 1
    assert "pull request #13 of octo/proj is not merged" in refused["errors"][0]["message"]
    assert not (project / INDEX).exists()

    found = archive(project, github, "11", "--reason", "pr_merged")
    assert found["exit_code"] == 0, found["stderr"]
    assert found["trigger"] == {"reason": "pr_merged", "checked": True, "pr": 12}
    assert len(github.calls("GET", r"/issues/11/timeline")) == 1
    assert index_entry(project, 11)["archive_reason"] == "pr_merged"


def test_server_errors_are_retried_and_the_archive_goes_through(project, github):
    github.add_issue(8, "Retried", state="closed")
    github.fail("GET", r"/issues/8$", 500, times=2)
    github.fail("POST", r"/issues/8/comments$", 502, times=1)  # lost before it was made
    logs_of(project, 8)

    result = archive(project, github, "8", "--reason", "issue_closed")

    assert result["exit_code"] == 0, result["stderr"]
    assert result["status"] == "ok" and result["comment"]["action"] == "created"
    assert len(github.calls("GET", r"/issues/8$")) == 3  # two failures, then the answer
    assert len(github.calls("POST")) == 2 and len(github.comments[8]) == 1
    assert index_entry(project, 8)["issue_title"] == "Retried"


@pytest.mark.parametrize(("status", "headers", "attempts", "said"), [
    (403, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1700000000"}, 4, "rate limit"),
    (429, {"Retry-After": "60"}, 4, "rate limit"),
    (403, {}, 1, "denied access"),
])
def test_refused_comment_is_a_warning_and_the_archive_stands(project, github, status, headers,
                                                            attempts, said):
    github.add_issue(9, "Busy", state="closed")
    github.fail("GET", r"/issues/9/comments$", status, headers=headers)
    originals = logs_of(project, 9)

    result = archive(project, github, "9", "--reason", "issue_closed")

    assert result["exit_code"] == 0, result["stderr"]
    assert result["status"] == "ok"
    assert result["comment"]["posted"] is False and result["comment"]["action"] == "failed"
    assert result["comment"]["body"].startswith(marker(9))
    [warning] = result["warnings"]
    assert warning.startswith("comment not posted") and said in warning
    assert len(github.calls("GET", r"/issues/9/comments$")) == attempts
    entry = index_entry(project, 9)  # the data is stored, indexed and committed all the same
    assert entry["upload_complete"] and {log["upload_status"] for log in entry["logs"]} == {
        "cleaned"}
    assert len(entry["logs"]) == len(originals) and result["commit"]["status"] == "ok"


@pytest.mark.parametrize("token_variable", [None, "GH_TOKEN"])
def test_without_github_token_the_comment_is_rendered_not_posted(project, github,
                                                                 token_variable):
    github.add_issue(5, "Read only", state="closed")
    logs_of(project, 5)
    extra = {token_variable: TOKEN} if token_variable else {}
    result = archive(project, github, "5", "--reason", "issue_closed", GITHUB_TOKEN=None,
                     **extra)

    assert result["exit_code"] == 0, result["stderr"]
    assert index_entry(project, 5)["issue_title"] == "Read only"
    if token_variable is None:
        assert result["comment"]["posted"] is False and result["comment"]["action"] == "skipped"
        assert "GITHUB_TOKEN" in result["comment"]["reason"]
        assert "📦" in result["comment"]["body"] and github.calls("POST") == []
    else:
        assert result["comment"]["action"] == "created"
        assert github.calls("POST")[0].headers["authorization"] == f"token {TOKEN}"


@pytest.mark.parametrize("origin", ["git@github.com:octo/proj.git",
                                    "https://github.com/octo/proj.git",
                                    "ssh://git@github.com/octo/proj"])
def test_repository_from_the_origin_remote(project, github, origin):
    git(project, "remote", "add", "origin", origin)
    github.add_issue(3, "From origin", state="closed")
    logs_of(project, 3)  # an issue without logs is archived only with --allow-empty
    result = archive(project, github, "3", "--reason", "issue_closed", GITHUB_REPOSITORY=None)
    assert result["exit_code"] == 0, result["stderr"]
    assert result["comment"]["action"] == "created"
    assert index_entry(project, 3)["issue_title"] == "From origin"


def test_no_repository_known_skips_github_and_a_checked_reason_fails(project):
    logs_of(project, 4)
    refused = archive(project, None, "4", "--reason", "issue_closed", GITHUB_REPOSITORY=None)
    assert refused["exit_code"] == 1 and refused["errors"][0]["type"] == "trigger_not_met"
    assert "GITHUB_REPOSITORY" in refused["errors"][0]["hint"]
    assert "`--reason manual`" in refused["errors"][0]["hint"]
    assert not (project / INDEX).exists()

    manual = archive(project, None, "4", GITHUB_REPOSITORY=None)
    assert manual["exit_code"] == 0 and manual["status"] == "ok"
    assert any(w.startswith("GitHub steps skipped") for w in manual["warnings"])
    assert manual["comment"]["posted"] is False
    assert index_entry(project, 4)["issue_title"] is None


def test_a_malformed_repository_is_the_error_a_checked_reason_reports(project):
    logs_of(project, 6)
    refused = archive(project, None, "6", "--reason", "issue_closed",
                      GITHUB_REPOSITORY="not/a/repo")
    assert refused["exit_code"] == 1 and refused["errors"][0]["type"] == "config"
    assert "not/a/repo" in refused["errors"][0]["message"]
    assert not (project / INDEX).exists()


def test_a_rerun_posts_the_comment_an_earlier_run_could_not(project, github):
    github.add_issue(12, "Flaky API", state="closed")
    github.fail("GET", r"/issues/12/comments$", 403, times=1, message="denied access")
    logs_of(project, 12)
    first = archive(project, github, "12", "--reason", "issue_closed")
    assert first["exit_code"] == 0 and first["comment"]["posted"] is False

    dry = archive(project, github, "12", "--dry-run")  # GitHub answers again
    assert dry["status"] == "noop" and "comment" not in dry
    assert github.calls("POST", r"/issues/12/comments$") == []
    second = archive(project, github, "12")
    assert second["exit_code"] == 0 and second["status"] == "ok", second["stderr"]
    assert second["comment"]["action"] == "created"
    assert "comment created now" in second["message"]
    assert len(github.calls("POST", r"/issues/12/comments$")) == 1

    third = archive(project, github, "12")
    assert third["status"] == "noop" and third["comment"]["action"] == "unchanged"
    assert len(github.calls("POST", r"/issues/12/comments$")) == 1


def test_a_rerun_commits_an_index_left_uncommitted(project, github):
    github.add_issue(13, "Later commit", state="closed")
    logs_of(project, 13)
    first = archive(project, github, "13", "--no-commit")
    assert first["exit_code"] == 0 and first["commit"]["status"] == "noop"
    head = git(project, "rev-parse", "HEAD")
    dry = archive(project, github, "13", "--dry-run")
    assert dry["status"] == "noop" and "commit" not in dry
    assert git(project, "rev-parse", "HEAD") == head
    second = archive(project, github, "13")
    assert second["status"] == "ok" and second["commit"]["status"] == "ok", second["stderr"]
    assert git(project, "rev-parse", "HEAD") != head
    audit = audit_file(project)
    assert git(project, "show", "--name-only", "--format=", "HEAD").split() == [audit, INDEX]
    third = archive(project, github, "13")
    assert third["status"] == "noop" and third["commit"]["status"] == "noop"


def test_a_rerun_records_the_title_and_reason_it_learns(project, github):
    logs_of(project, 21)
    first = archive(project, None, "21", GITHUB_REPOSITORY=None)
    assert first["exit_code"] == 0 and index_entry(project, 21)["issue_title"] is None
    github.add_issue(21, "Learned later", state="closed")
    forced = archive(project, github, "21", "--force", "--reason", "issue_closed")
    assert forced["exit_code"] == 0, forced["stderr"]
    entry = index_entry(project, 21)
    assert entry["issue_title"] == "Learned later" and entry["archive_reason"] == "issue_closed"
    assert entry["issue_url"].endswith("/issues/21")
    assert forced["commit"]["status"] == "ok"


def test_prepare_upload_checks_the_trigger_like_archive(project, github):
    github.add_issue(14, "Step by step")
    github.add_pull(15, merged=False)
    github.add_pull(16, merged=True)
    logs_of(project, 14)
    env = dict(os.environ, LOG_ARCHIVER_RETRY_DELAY_SCALE="0", GITHUB_TOKEN=TOKEN,
               GITHUB_REPOSITORY=REPOSITORY, GITHUB_API_URL=github.url)
    refused = run_script("prepare-upload", "14", "--reason", "issue_closed", cwd=project,
                         env=env)
    assert refused.exit_code == 1 and refused.json["errors"][0]["type"] == "trigger_not_met"
    assert not (project / INDEX).exists()
    unmerged = run_script("prepare-upload", "14", "--reason", "pr_merged", "--pr", "15",
                          cwd=project, env=env)
    assert unmerged.exit_code == 1 and "#15" in unmerged.json["errors"][0]["message"]
    merged = run_script("prepare-upload", "14", "--reason", "pr_merged", "--pr", "16",
                        cwd=project, env=env)
    assert merged.exit_code == 0, merged.stdout
    entry = index_entry(project, 14)
    assert entry["archive_reason"] == "pr_merged" and entry["issue_title"] == "Step by step"


PLANTED = "ghp_plantedSecret0123456789"


def test_credentials_in_the_api_url_are_never_printed_or_stored(project, github, closed_port):
    github.add_issue(17, "Secret URL", state="closed")
    logs_of(project, 17)
    port = closed_port
    down = archive(project, None, "17", GITHUB_TOKEN=None,
                   GITHUB_API_URL=f"http://x-access-token:{PLANTED}@127.0.0.1:{port}/api/v3")
    assert down["exit_code"] == 0, down["stderr"]
    said = " ".join(down["warnings"])
    assert f"http://127.0.0.1:{port}/api/v3" in said  # the host is named, its secret not

    with_fake = github.url.replace("http://", f"http://x-access-token:{PLANTED}@")
    up = archive(project, None, "17", "--force", "--reason", "issue_closed",
                 GITHUB_API_URL=with_fake)
    assert up["exit_code"] == 0 and up["comment"]["action"] == "created", up["stderr"]
    assert [c.headers["authorization"] for c in github.calls("POST")] == [f"token {TOKEN}"]

    bad = archive(project, None, "17", GITHUB_API_URL=f"ftp://u:{PLANTED}@h.example/x")
    assert bad["exit_code"] == 0 and any("ftp://h.example/x" in w for w in bad["warnings"])
    for run in (down, up, bad):
        assert PLANTED not in json.dumps(run)
    assert PLANTED not in (project / INDEX).read_text()
    assert PLANTED not in git(project, "log", "-p", "--all")

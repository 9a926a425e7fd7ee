"""archive ISSUE ISSUE... and archive --all-closed: a result per issue, one commit, GitHub
asked once per page of closed issues, a corrupt checkpoint never trusted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from github_fixtures import REPOSITORY, TOKEN
from gitutil import first_commit, git, init_repo
from log_archiver.util.samples import write_sample_logs

INDEX = "logs/.archive-index.json"
CHECKPOINT = "logs/.archive-index.json.batch"


@pytest.fixture
def project(workspace, isolated_git, github, monkeypatch):
    init_repo(workspace)
    first_commit(workspace)
    (workspace / "README.md").write_text("project\nstaged change\n")
    git(workspace, "add", "README.md")
    monkeypatch.setenv("LOG_ARCHIVER_RETRY_DELAY_SCALE", "0")
    monkeypatch.setenv("GITHUB_REPOSITORY", REPOSITORY)
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.setenv("GITHUB_API_URL", github.url)
    return workspace


def logs(project: Path, *issues: int) -> None:
    for issue in issues:
        write_sample_logs(project / "logs", issue, big=300_000, small=3_000, seed=issue)


def index(project: Path) -> dict:
    return {e["issue_number"]: e for e in json.loads((project / INDEX).read_text())["archives"]}


def committed_index(project: Path) -> dict:
    return json.loads(git(project, "show", f"HEAD:{INDEX}"))


def test_several_issues_one_commit_and_a_result_each(project, github, run_cli):
    for number in (3, 5):
        github.add_issue(number, f"Issue {number}", state="closed")
    github.add_issue(7, "Still open")
    logs(project, 3, 5, 7)
    result = run_cli("archive", "3", "5", "#7", "--reason", "issue_closed")

    assert result.exit_code == 3, result.stderr
    doc = result.json
    assert doc["status"] == "partial" and "issue_number" not in doc
    by_issue = {r["issue_number"]: r for r in doc["issues"]}
    assert [r["issue_number"] for r in doc["issues"]] == [3, 5, 7]
    assert by_issue[3]["status"] == by_issue[5]["status"] == "ok"
    assert by_issue[7]["status"] == "error"
    assert by_issue[7]["errors"][0]["type"] == "trigger_not_met"
    assert doc["summary"] == {"planned": 3, "ok": 2, "noop": 0, "partial": 0, "error": 1,
                              "not_attempted": 0, "skipped": 0, "resumed": 0}
    assert set(index(project)) == {3, 5}
    assert (project / "logs/builds/7-build.log").exists()  # the failed one is untouched
    # one commit for the batch, holding the index alone and naming both issues
    assert git(project, "rev-list", "--count", "HEAD").strip() == "2"
    assert git(project, "show", "--name-only", "--format=", "HEAD").split() == [INDEX]
    message = git(project, "log", "-1", "--format=%B")
    assert message.startswith("Archive logs for 2 issues (#3, #5)\n")
    assert "Issues: #3, #5" in message and "#7" not in message
    assert set(committed_index(project)["archives"][i]["issue_number"] for i in (0, 1)) == {3, 5}
    assert git(project, "status", "--porcelain", "README.md").startswith("M ")  # still staged
    assert [len(github.comments[n]) for n in (3, 5, 7)] == [1, 1, 0]
    assert not (project / CHECKPOINT).exists()


def test_one_issue_keeps_the_single_issue_output(project, github, run_cli):
    github.add_issue(3, "Three")
    logs(project, 3)
    result = run_cli("archive", "3")
    assert result.exit_code == 0, result.stderr
    doc = result.json
    assert doc["issue_number"] == 3 and doc["status"] == "ok"
    assert not {"issues", "summary", "breaker", "skipped_issues"} & set(doc)
    assert doc["comment"]["action"] == "created" and "body" in doc["comment"]
    assert git(project, "log", "-1", "--format=%s").strip() == "Archive logs for issue #3"


@pytest.mark.parametrize("args, message", [
    (["--all-closed", "3"], "--all-closed takes no ISSUE"),
    (["3", "4", "--since", "2025-01-01"], "--since and --limit go with --all-closed"),
    (["3", "4", "--pr", "9", "--reason", "pr_merged"], "--pr 9 names the pull request"),
    (["3", "4", "--reindex-only"], "--reindex-only takes one ISSUE"),
    (["--all-closed", "--reason", "manual"], "reason issue_closed, not manual"),
    (["3", "abc"], "'abc' is not a positive whole number"),
    ([], "Missing argument"),
])
def test_bad_batch_arguments_are_usage_errors(project, run_cli, args, message):
    logs(project, 3, 4)
    result = run_cli("archive", *args)
    assert result.exit_code == 2
    assert result.json["errors"][0]["type"] == "usage"
    assert message in result.json["errors"][0]["message"]
    assert not (project / INDEX).exists()


def test_all_closed_asks_github_one_request_per_page(project, github, run_cli, monkeypatch):
    monkeypatch.setenv("LOG_ARCHIVER_THRESHOLD_BYTES", "100000")  # copies are made
    for number in range(1, 151):  # 150 closed issues: two pages of 100
        github.add_issue(number, f"Issue {number}", state="closed",
                         closed_at=f"2025-03-{1 + number % 28:02d}T10:00:00Z")
    github.add_issue(200, "A pull request", state="closed", pull_request=True)
    github.add_issue(201, "Open")
    logs(project, 12, 140, 200, 201, 999)  # 999 is on no GitHub page at all
    before = {p: p.read_bytes() for p in (project / "logs").rglob("*")  # the skipped ones'
              if p.is_file() and set(p.name.split("-")[:2]) & {"200", "201", "999"}}
    result = run_cli("archive", "--all-closed")

    assert result.exit_code == 0, result.stderr
    doc = result.json
    assert [r["issue_number"] for r in doc["issues"]] == [12, 140]
    assert all(r["status"] == "ok" for r in doc["issues"])
    assert {s["issue_number"]: s["reason"] for s in doc["skipped_issues"]} == {
        200: "a pull request, not an issue",
        201: "not closed on GitHub (still open, or no such issue)",
        999: "not closed on GitHub (still open, or no such issue)"}
    listing = github.calls("GET", r"/issues$")
    assert len(listing) == 2 == doc["closed_check"]["pages"]
    assert all("state=closed" in r.query and "per_page=100" in r.query for r in listing)
    assert not github.calls("GET", r"/issues/\d+$")  # never one request per issue
    assert {e["archive_reason"] for e in index(project).values()} == {"issue_closed"}
    assert index(project)[12]["issue_title"] == "Issue 12"
    assert doc["closed_check"] == {"since": None, "limit": None, "candidates": 5, "closed": 2,
                                   "pages": 2, "from_checkpoint": False}
    assert (project / "logs/builds/201-build.log").exists()
    # compressed ahead while GitHub was asked, the skipped issues leave no copy behind
    assert before and all(p.read_bytes() == data for p, data in before.items())
    left = [p.name for p in (project / "logs").rglob("*") if p.is_file()
            and p.name.startswith(".") and ".la." in p.name]
    assert left == []


def test_all_closed_since_and_limit(project, github, run_cli):
    github.add_issue(4, "Old", state="closed", closed_at="2024-06-01T00:00:00Z")
    for number in (5, 6, 8):
        github.add_issue(number, f"New {number}", state="closed",
                         closed_at="2025-02-01T00:00:00Z")
    logs(project, 4, 5, 6, 8)
    result = run_cli("archive", "--all-closed", "--since", "2025-01-01", "--limit", "2")

    assert result.exit_code == 0, result.stderr
    doc = result.json
    assert [r["issue_number"] for r in doc["issues"]] == [5, 6]
    skipped = {s["issue_number"]: s["reason"] for s in doc["skipped_issues"]}
    assert set(skipped) == {4, 8} and skipped[8] == "past --limit 2"
    [listing] = github.calls("GET", r"/issues$")
    assert "since=2025-01-01T00%3A00%3A00" in listing.query
    assert doc["closed_check"]["since"] == "2025-01-01T00:00:00Z"


def test_all_closed_without_a_github_repository_is_an_error(project, run_cli, monkeypatch):
    monkeypatch.delenv("GITHUB_REPOSITORY")
    logs(project, 3)
    result = run_cli("archive", "--all-closed")
    assert result.exit_code == 1
    assert result.json["errors"][0]["type"] == "trigger_not_met"
    assert not (project / INDEX).exists()


@pytest.mark.parametrize("content", [
    b"{not json", b"[]", b'{"kind": "log-archiver batch checkpoint"}',
    json.dumps({"kind": "log-archiver batch checkpoint", "version": 1,
                "key": "issues 3,5 reason=manual force=False retry=False",
                "started_at": "2025-01-01T00:00:00Z", "planned": [3, 5], "skipped": [],
                "github": {}, "done": {"3": "ok", "5": "ok", "77": "ok"}}).encode(),
])
def test_a_corrupt_checkpoint_is_ignored_with_a_warning(project, github, run_cli, content):
    logs(project, 3, 5)
    (project / CHECKPOINT).write_bytes(content)
    result = run_cli("archive", "3", "5")
    assert result.exit_code == 0, result.stderr
    assert any("batch checkpoint" in w and "ignored" in w for w in result.json["warnings"])
    assert [r["status"] for r in result.json["issues"]] == ["ok", "ok"]
    assert not (project / CHECKPOINT).exists()


def test_a_checkpoint_is_believed_only_where_the_index_agrees(project, github, run_cli):
    """A checkpoint that says every issue is done, for an index that never heard of them:
    the issues are archived anyway."""
    logs(project, 3, 5)
    github.add_issue(3, "Three", state="open")  # what GitHub says...
    (project / CHECKPOINT).write_text(json.dumps({
        "kind": "log-archiver batch checkpoint", "version": 1,
        "key": "issues 3,5 reason=issue_closed force=False retry=False",
        "started_at": "2025-01-01T00:00:00Z", "planned": [3, 5], "skipped": [],
        "github": {"3": {"title": "Three", "url": None, "state": "closed", "closed": True,
                         "is_pull_request": False}},  # ...is not what the checkpoint says
        "done": {"3": "ok", "5": "ok"}}))
    github.add_issue(5, "Five", state="closed")
    result = run_cli("archive", "3", "5", "--reason", "issue_closed")
    assert result.exit_code == 0, result.stderr
    assert [r["status"] for r in result.json["issues"]] == ["ok", "ok"]
    assert not any(r.get("resumed") for r in result.json["issues"])
    assert set(index(project)) == {3, 5}
    # what the batch had learned is not asked again; what it had not is
    assert not github.calls("GET", r"/issues/3$") and github.calls("GET", r"/issues/5$")


def test_a_symlinked_checkpoint_is_not_followed(project, github, run_cli, tmp_path):
    logs(project, 3, 5)
    elsewhere = tmp_path / "secret.json"
    elsewhere.write_text("{}")
    (project / CHECKPOINT).symlink_to(elsewhere)
    result = run_cli("archive", "3", "5")
    assert result.exit_code == 0, result.stderr
    assert any("ignored" in w for w in result.json["warnings"])
    assert elsewhere.read_text() == "{}"


def test_batch_events_for_the_progress_display(project, github):
    from log_archiver.config import load_config
    from log_archiver.queue.batch import archive_issues
    from log_archiver.repository import Repository

    logs(project, 3, 5)
    repo = Repository(config=load_config())
    seen = []
    repo.events.subscribe(lambda e: seen.append((e.name, e.issue, e.bytes, e.fields))
                          if e.name in ("issues.planned", "issue.done") else None)
    payload = archive_issues(repo, [3, 5, 9])
    assert payload["status"] == "ok"
    sizes = {n: e["total_size_bytes"] for n, e in index(project).items()}
    assert seen == [("issues.planned", None, 0, {"issues": 3}),
                    ("issue.done", 3, sizes[3], {"status": "ok"}),
                    ("issue.done", 5, sizes[5], {"status": "ok"}),
                    ("issue.done", 9, 0, {"status": "noop"})]


def test_dry_run_batch_changes_nothing(project, github, run_cli):
    logs(project, 3, 5)
    before = sorted(p.relative_to(project).as_posix() for p in (project / "logs").rglob("*"))
    result = run_cli("archive", "3", "5", "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert [r["status"] for r in result.json["issues"]] == ["ok", "ok"]
    assert [r["collected"] for r in result.json["issues"]] == [4, 4]
    after = sorted(p.relative_to(project).as_posix() for p in (project / "logs").rglob("*"))
    assert before == after and not github.calls("POST")
    assert git(project, "rev-list", "--count", "HEAD").strip() == "1"


def test_a_page_github_fails_is_retried_and_a_refusal_stops_before_anything(
        project, github, run_cli):
    github.add_issue(3, "Three", state="closed")
    logs(project, 3)
    github.fail("GET", r"/issues$", 502, times=1)
    result = run_cli("archive", "--all-closed")
    assert result.exit_code == 0, result.stderr
    assert result.json["closed_check"]["pages"] == 1
    assert len(github.calls("GET", r"/issues$")) == 2  # the 502, then the page

    logs(project, 5)
    github.fail("GET", r"/issues$", 403, message="Resource not accessible by integration")
    refused = run_cli("archive", "--all-closed")
    assert refused.exit_code == 1
    assert refused.json["errors"][0]["type"] == "github"
    assert "Resource not accessible" in refused.json["errors"][0]["message"]
    assert 5 not in index(project) and not (project / CHECKPOINT).exists()


def test_an_issue_named_twice_is_archived_once(project, github, run_cli):
    for number in (3, 5):
        github.add_issue(number, f"Issue {number}", state="closed")
    logs(project, 3, 5)
    result = run_cli("archive", "3", "5", "3", "--reason", "issue_closed")
    assert result.exit_code == 0, result.stderr
    assert [r["issue_number"] for r in result.json["issues"]] == [3, 5]
    assert [e["total_logs"] for e in index(project).values()] == [4, 4]


def test_the_batch_frees_the_disk_in_steps_and_each_issue_ends_cleaned(project, github,
                                                                      run_cli):
    from log_archiver.queue.batch import CLEAN_EVERY

    numbers = list(range(100, 100 + CLEAN_EVERY + 3))  # two cleanup steps at least
    for number in numbers:
        github.add_issue(number, f"Issue {number}", state="closed")
        write_sample_logs(project / "logs", number, big=20_000, small=1_000, seed=number)
    result = run_cli("archive", *map(str, numbers), "--reason", "issue_closed")
    assert result.exit_code == 0, result.stderr
    doc = result.json
    assert [r["issue_number"] for r in doc["issues"]] == numbers
    assert {r["status"] for r in doc["issues"]} == {"ok"}
    assert all(r["freed_bytes"] > 0 for r in doc["issues"])
    entries = index(project)
    assert sorted(entries) == numbers
    assert {log["upload_status"] for e in entries.values() for log in e["logs"]} == {"cleaned"}
    assert not [p for p in (project / "logs").rglob("*") if p.is_file()
                and not any(part.startswith(".") for part in p.relative_to(project).parts)]
    assert committed_index(project) == json.loads((project / INDEX).read_text())


def test_a_cleanup_step_that_cannot_clean_one_issue_still_frees_the_others(project):
    """One issue's entry left the index between its archive and the step: that issue
    keeps every file and gets the error; the other is freed and recorded cleaned."""
    from log_archiver.archive.cleanup import CleanupReport, cleanup_issues
    from log_archiver.archive.pipeline import archive
    from log_archiver.config import load_config
    from log_archiver.errors import NotArchivedError
    from log_archiver.repository import Repository

    logs(project, 3, 5)
    repo = Repository(config=load_config().with_overrides(commit=False))
    for number in (3, 5):
        result = archive(repo, number, commit=False, clean=False)
        assert result["cleanup_due"].partial is False
    doc = json.loads((project / INDEX).read_text())  # (as a restored index would have it)
    doc["archives"] = [e for e in doc["archives"] if e["issue_number"] != 5]
    (project / INDEX).write_text(json.dumps(doc))
    def files_of_5():
        return sorted(p for p in (project / "logs").rglob("*") if p.is_file()
                      and p.name.startswith(("5-", "session-5-")))

    kept = files_of_5()
    assert len(kept) == 4

    outcomes = cleanup_issues(repo, {3: False, 5: False})
    assert isinstance(outcomes[5], NotArchivedError)
    assert isinstance(outcomes[3], CleanupReport) and len(outcomes[3].deleted) == 4
    entries = index(project)
    assert sorted(entries) == [3]
    assert {log["upload_status"] for log in entries[3]["logs"]} == {"cleaned"}
    assert kept == files_of_5()


def test_a_cleanup_step_whose_index_write_fails_cleans_each_issue_on_its_own(project):
    """The step's one transaction fails at its write, after its files went: nothing of it
    is recorded, each issue is then cleaned up alone (its stored copies verified again),
    and the reports still name every file the step deleted."""
    from log_archiver.archive.cleanup import CleanupReport, cleanup_issues
    from log_archiver.archive.pipeline import archive
    from log_archiver.config import load_config
    from log_archiver.errors import LocalFileError
    from log_archiver.repository import Repository

    logs(project, 3, 5)
    repo = Repository(config=load_config().with_overrides(commit=False))
    for number in (3, 5):
        archive(repo, number, commit=False, clean=False)
    failures = []

    def fail_once():
        if not failures:
            failures.append("written")
            raise LocalFileError("the disk is full", "free some space")

    repo.index.before_write.append(fail_once)
    outcomes = cleanup_issues(repo, {3: False, 5: False})
    assert failures == ["written"]
    entries = index(project)
    for number in (3, 5):
        assert isinstance(outcomes[number], CleanupReport)
        assert len(outcomes[number].deleted) == 4 and outcomes[number].freed_bytes > 0
        assert {log["upload_status"] for log in entries[number]["logs"]} == {"cleaned"}
    assert not [p for p in (project / "logs").rglob("*") if p.is_file()
                and not any(part.startswith(".") for part in p.relative_to(project).parts)]

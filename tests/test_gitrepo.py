"""Committing the archive index alone, in real git repositories."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gitutil import audit_file, git, init_repo, run_git
from log_archiver.errors import GitError, GitLockedError
from log_archiver.integrations.git import commit_index, commit_message
from log_archiver.util.retry import RetryPolicy

INDEX = "logs/.archive-index.json"


pytestmark = pytest.mark.usefixtures("isolated_git")


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def new_repo(root: Path, *, commit: bool = True) -> Path:
    init_repo(root)
    if commit:
        write(root / "a.txt", "a\n")
        write(root / "b.txt", "b\n")
        write(root / "gone.txt", "gone\n")
        write(root / INDEX, '{"v": 1}\n')
        git(root, "add", ".")
        git(root, "commit", "-q", "-m", "start")
    return root


def snapshot(root: Path) -> dict:
    files = {p.relative_to(root).as_posix(): p.read_bytes()
             for p in root.rglob("*") if p.is_file() and ".git" not in p.parts}
    return {"staged": git(root, "diff", "--cached", "--", ".", f":!{INDEX}"),
            "unstaged": git(root, "diff", "--", ".", f":!{INDEX}"),
            "status": [line for line in git(root, "status", "--porcelain").splitlines()
                       if INDEX not in line],
            "files": files}


def test_commits_only_the_index_and_keeps_staged_and_unstaged_work(tmp_path):
    root = new_repo(tmp_path / "repo")
    start = git(root, "rev-parse", "HEAD").strip()
    write(root / "a.txt", "a\nstaged line\n")
    git(root, "add", "a.txt")
    write(root / "a.txt", "a\nstaged line\nunstaged line\n")  # MM: both kinds on one file
    write(root / "b.txt", "b changed, not staged\n")
    write(root / "c.txt", "new and staged\n")
    git(root, "add", "c.txt")
    git(root, "rm", "-q", "gone.txt")
    write(root / "untracked.txt", "left alone\n")
    write(root / INDEX, '{"v": 2}\n')
    before = snapshot(root)
    assert before["status"] == ["MM a.txt", " M b.txt", "A  c.txt", "D  gone.txt",
                                "?? untracked.txt"]

    result = commit_index(root / INDEX, commit_message(12, 3, 173600, "issue_closed"))

    assert result["status"] == "ok" and result["branch"] == "main"
    assert not result["detached"] and not result["root_commit"] and "note" not in result
    assert git(root, "rev-parse", "HEAD").strip() == result["commit"]
    assert git(root, "rev-parse", "HEAD^").strip() == start
    assert git(root, "show", "--name-only", "--format=", "HEAD").split() == [INDEX]
    assert git(root, "show", f"HEAD:{INDEX}") == '{"v": 2}\n'
    assert git(root, "log", "-1", "--format=%B").startswith("Archive logs for issue #12\n")
    assert snapshot(root) == before  # every other change exactly as it was
    assert INDEX not in git(root, "status", "--porcelain")  # index clean, not "reverted"
    assert commit_index(root / INDEX, "again")["status"] == "noop"


def test_repository_without_commits_gets_a_root_commit_with_just_the_index(tmp_path):
    root = new_repo(tmp_path / "repo", commit=False)
    write(root / "x.txt", "staged before any commit\n")
    git(root, "add", "x.txt")
    write(root / INDEX, "{}\n")
    result = commit_index(root / INDEX, "Archive logs for issue #1\n")
    assert result["status"] == "ok" and result["root_commit"] and result["branch"] == "main"
    assert git(root, "ls-tree", "-r", "--name-only", "HEAD").split() == [INDEX]
    assert git(root, "rev-list", "--count", "HEAD").strip() == "1"
    assert git(root, "status", "--porcelain").splitlines() == ["A  x.txt"]


def test_detached_head_commits_there_and_says_so(tmp_path):
    root = new_repo(tmp_path / "repo")
    main = git(root, "rev-parse", "main").strip()
    git(root, "checkout", "-q", "--detach")
    write(root / INDEX, '{"v": 3}\n')
    result = commit_index(root / INDEX, "Archive logs for issue #3\n")
    assert result["status"] == "ok" and result["detached"] and result["branch"] is None
    assert "detached" in result["note"] and result["commit"][:12] in result["note"]
    assert git(root, "rev-parse", "HEAD").strip() == result["commit"]
    assert git(root, "rev-parse", "main").strip() == main  # no branch moved


class Sleeps(list):
    def __call__(self, seconds):
        self.append(seconds)


def test_held_index_lock_is_retried_briefly_then_reported(tmp_path):
    root = new_repo(tmp_path / "repo")
    head = git(root, "rev-parse", "HEAD").strip()
    lock = write(root / ".git" / "index.lock", "")
    write(root / INDEX, '{"v": 4}\n')
    sleeps = Sleeps()
    policy = RetryPolicy(network_delays=(0.1, 0.25, 0.5), max_retries=3, sleep=sleeps)
    with pytest.raises(GitLockedError) as caught:
        commit_index(root / INDEX, "msg", policy=policy)
    assert str(lock) in caught.value.message and str(lock) in caught.value.hint
    assert caught.value.retryable and sleeps == [0.1, 0.25, 0.5]
    assert lock.exists()  # another process's lock is never removed
    assert git(root, "rev-parse", "HEAD").strip() == head


def test_default_lock_wait_is_a_few_seconds(tmp_path):
    from log_archiver.integrations.git import LOCK_POLICY

    assert 1.0 <= sum(LOCK_POLICY.network_delays[:LOCK_POLICY.max_retries]) <= 10.0


def test_lock_released_during_the_wait_lets_the_commit_through(tmp_path):
    root = new_repo(tmp_path / "repo")
    lock = write(root / ".git" / "index.lock", "")
    write(root / INDEX, '{"v": 5}\n')
    sleeps = Sleeps()

    def sleep(seconds):
        sleeps.append(seconds)
        if len(sleeps) == 2:
            lock.unlink()

    result = commit_index(root / INDEX, "msg", policy=RetryPolicy(sleep=sleep))
    assert result["status"] == "ok" and result["retries"] == 2
    assert not lock.exists()
    assert git(root, "show", f"HEAD:{INDEX}") == '{"v": 5}\n'


def test_not_a_repository_is_a_noop(tmp_path):
    index = write(tmp_path / "plain" / INDEX, "{}\n")
    result = commit_index(index, "msg")
    assert result["status"] == "noop" and "not inside a git repository" in result["reason"]


def test_unchanged_index_and_missing_file_are_noops(tmp_path):
    root = new_repo(tmp_path / "repo")
    head = git(root, "rev-parse", "HEAD").strip()
    result = commit_index(root / INDEX, "msg")
    assert result["status"] == "noop" and "unchanged" in result["reason"]
    assert result["commit"] == head
    other = commit_index(root / "logs" / "missing.json", "msg")
    assert other["status"] == "noop" and "does not exist" in other["reason"]
    assert git(root, "rev-parse", "HEAD").strip() == head


def test_ignored_index_is_committed_with_a_note(tmp_path):
    root = new_repo(tmp_path / "repo")
    write(root / ".gitignore", "logs/\n")
    new = write(root / "logs" / "other" / ".archive-index.json", "{}\n")
    result = commit_index(new, "msg")
    assert result["status"] == "ok" and ".gitignore" in result["note"]
    assert "logs/other/.archive-index.json" in git(root, "ls-tree", "-r", "--name-only", "HEAD")


def test_merge_in_progress_is_refused(tmp_path):
    root = new_repo(tmp_path / "repo")
    write(root / ".git" / "MERGE_HEAD", git(root, "rev-parse", "HEAD"))
    write(root / INDEX, '{"v": 6}\n')
    with pytest.raises(GitError, match="a merge is in progress") as caught:
        commit_index(root / INDEX, "msg")
    assert "log-archiver commit" in caught.value.hint


def test_unknown_identity_says_how_to_set_it(tmp_path, monkeypatch):
    root = new_repo(tmp_path / "repo")
    for role in ("AUTHOR", "COMMITTER"):
        monkeypatch.delenv(f"GIT_{role}_NAME")
        monkeypatch.delenv(f"GIT_{role}_EMAIL")
    git(root, "config", "user.useConfigOnly", "true")
    write(root / INDEX, '{"v": 7}\n')
    with pytest.raises(GitError) as caught:
        commit_index(root / INDEX, "msg")
    assert "git config user.name" in caught.value.hint
    assert not (root / ".git" / "index.lock").exists()  # our lock is released on failure


def test_commit_message_follows_the_spec():
    text = commit_message(123, 3, 173600, "issue_closed")
    assert text.splitlines() == [
        "Archive logs for issue #123", "", "- Archived 3 logs to cloud storage",
        "- Updated archive index", "- Freed 173.6 KB locally", "",
        "Archive reason: issue_closed", "Issue: #123"]
    single = commit_message(5, 1, 0, "manual", cloud=False)
    assert "- Archived 1 log to local storage\n" in single
    assert "- Freed nothing locally yet" in single
    partial = commit_message(7, 4, 0, "manual", stored=3)
    assert "- Archived 3 of 4 logs to cloud storage (partial: 1 still to upload)" in partial


WORKER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from filelock import FileLock
    from log_archiver.integrations.git import commit_index

    index, n = Path(sys.argv[1]), int(sys.argv[2])
    with FileLock(str(index) + ".lock"):
        index.write_text('{"writer": %d}\\n' % n)
        result = commit_index(index, f"Archive logs for issue #{n}\\n")
    assert result["status"] == "ok", result
""")


def test_eight_processes_commit_under_the_callers_lock_with_git_noise(tmp_path):
    root = new_repo(tmp_path / "repo")
    start = git(root, "rev-parse", "HEAD").strip()
    write(root / "wip.txt", "staged work\n")
    git(root, "add", "wip.txt")
    noise = subprocess.Popen(  # another git process taking index.lock now and then
        ["sh", "-c", f"while true; do git -C {root} status --porcelain >/dev/null 2>&1; done"])
    try:
        workers = [subprocess.Popen([sys.executable, "-c", WORKER, str(root / INDEX), str(n)],
                                    stderr=subprocess.PIPE, text=True) for n in range(8)]
        failures = [w.stderr.read() for w in workers if w.wait() != 0]
    finally:
        noise.kill()
        noise.wait()
    assert failures == []
    commits = git(root, "rev-list", f"{start}..HEAD").split()
    assert len(commits) == 8
    for sha in commits:
        assert git(root, "show", "--name-only", "--format=", sha).split() == [INDEX]
    written = {git(root, "show", f"{sha}:{INDEX}") for sha in commits}
    assert written == {f'{{"writer": {n}}}\n' for n in range(8)}
    assert git(root, "show", f"HEAD:{INDEX}") == (root / INDEX).read_text()
    status = git(root, "status", "--porcelain").splitlines()
    assert status == ["A  wip.txt", f"?? {INDEX}.lock"]  # the callers' lock file, untracked


def test_commit_gpgsign_is_honoured(tmp_path):
    root = new_repo(tmp_path / "repo")
    head = git(root, "rev-parse", "HEAD").strip()
    git(root, "config", "commit.gpgsign", "true")
    git(root, "config", "gpg.program", "false")  # signing is attempted, and fails
    write(root / INDEX, '{"v": 8}\n')
    with pytest.raises(GitError, match="commit-tree") as caught:
        commit_index(root / INDEX, "msg")
    assert "gpg" in caught.value.message.lower() and "commit.gpgSign" in caught.value.hint
    assert git(root, "rev-parse", "HEAD").strip() == head
    assert not (root / ".git" / "index.lock").exists()


# --- the commit step through the CLI ----------------------------------------------------

def status(root: Path) -> list[str]:
    return git(root, "status", "--porcelain", "--untracked-files=all").splitlines()


@pytest.fixture
def archived_repo(workspace, monkeypatch):
    """The workspace as a repository with staged work, and the logs of issue 31."""
    monkeypatch.setenv("LOG_ARCHIVER_RETRY_DELAY_SCALE", "0")
    new_repo(workspace, commit=False)
    write(workspace / "a.txt", "a\n")
    git(workspace, "add", "a.txt")
    git(workspace, "commit", "-q", "-m", "start")
    write(workspace / "a.txt", "a\nstaged\n")
    git(workspace, "add", "a.txt")
    write(workspace / "logs" / "builds" / "31-build.log", "2025-01-15T09:00:00Z built\n")
    return workspace


def test_archive_no_commit_leaves_the_index_uncommitted(archived_repo, run_cli):
    head = git(archived_repo, "rev-parse", "HEAD")
    result = run_cli("archive", "31", "--no-commit")
    assert result.exit_code == 0, result.stdout
    assert result.json["commit"] == {"status": "noop", "reason": "committing was turned off"}
    assert git(archived_repo, "rev-parse", "HEAD") == head
    audit = audit_file(archived_repo)
    assert status(archived_repo) == ["M  a.txt", f"?? {audit}", f"?? {INDEX}", f"?? {INDEX}.lock",
                                     f"?? {INDEX}.valid"]

    committed = run_cli("commit", "31")  # the step on its own, later
    assert committed.exit_code == 0, committed.stdout
    assert committed.json["commit"]["status"] == "ok"
    assert git(archived_repo, "show", "--name-only", "--format=", "HEAD").split() == [audit,
                                                                                       INDEX]
    message = git(archived_repo, "log", "-1", "--format=%B")
    assert message.startswith("Archive logs for issue #31\n\n- Archived 1 log to local storage\n")
    assert "- Freed 27 B locally" in message and "Archive reason: manual" in message
    assert status(archived_repo) == ["M  a.txt", f"?? {INDEX}.lock", f"?? {INDEX}.valid"]
    assert run_cli("commit", "31").json["status"] == "noop"


def test_held_git_lock_during_archive_is_a_warning_then_the_commit_step_finishes(
        archived_repo, run_cli):
    lock = write(archived_repo / ".git" / "index.lock", "")
    head = git(archived_repo, "rev-parse", "HEAD")
    result = run_cli("archive", "31")
    assert result.exit_code == 0 and result.json["status"] == "ok"
    commit = result.json["commit"]
    assert commit["status"] == "error" and commit["type"] == "git_locked"
    assert str(lock) in commit["message"]
    assert any(w.startswith("index not committed") and str(lock) in w
               for w in result.json["warnings"])
    assert git(archived_repo, "rev-parse", "HEAD") == head and lock.exists()

    refused = run_cli("commit", "31")
    assert refused.exit_code == 1 and refused.json["errors"][0]["type"] == "git_locked"
    assert "log-archiver commit" in refused.json["errors"][0]["hint"]
    lock.unlink()  # the other git process is done
    done = run_cli("commit", "31")
    assert done.exit_code == 0 and done.json["commit"]["branch"] == "main"
    assert status(archived_repo) == ["M  a.txt", f"?? {INDEX}.lock", f"?? {INDEX}.valid"]


def test_commit_of_an_issue_never_archived_says_so(archived_repo, run_cli):
    result = run_cli("commit", "32")
    assert result.exit_code == 1 and result.json["errors"][0]["type"] == "not_archived"
    assert "32" in result.json["errors"][0]["message"]


# --- a commit step killed at any point, then run again -----------------------------------

def start_paused_commit(root: Path, tmp_path: Path, subcommand: str, nth: int):
    """`log-archiver commit 31` in its own process group, stopped before the ``nth`` run of
    git ``subcommand``; returns the process once it is there."""
    import os
    import shutil
    import time

    from conftest import script
    from gitutil import pausing_git

    control = tmp_path / f"pause-{subcommand}-{nth}"
    control.mkdir()
    wrapper = pausing_git(tmp_path / "fake-bin")
    env = dict(os.environ, PATH=f"{wrapper}{os.pathsep}{os.environ['PATH']}",
               PAUSE_GIT_AT=subcommand, PAUSE_GIT_NTH=str(nth), PAUSE_GIT_DIR=str(control),
               REAL_GIT=shutil.which("git"))
    process = subprocess.Popen([*script("log-archiver"), "commit", "31", "--quiet"], cwd=root,
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               start_new_session=True)
    deadline = time.monotonic() + 60
    while not (control / "paused").exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the commit never reached the pause"
        time.sleep(0.05)
    return process


def kill(process) -> None:
    import os
    import signal

    os.killpg(process.pid, signal.SIGKILL)
    process.communicate()
    assert process.returncode == -signal.SIGKILL


@pytest.mark.parametrize(("subcommand", "nth", "head_moved"), [
    ("hash-object", 1, False),   # before anything
    ("read-tree", 1, False),     # the blob is written
    ("commit-tree", 1, False),   # the tree is written
    ("update-ref", 1, False),    # the commit exists, HEAD not moved yet
    ("update-index", 2, True),   # HEAD moved, the user's git index not updated yet
])
def test_commit_killed_at_any_point_is_finished_by_a_rerun(archived_repo, run_cli, tmp_path,
                                                          subcommand, nth, head_moved):
    assert run_cli("archive", "31", "--no-commit").exit_code == 0
    start = git(archived_repo, "rev-parse", "HEAD").strip()
    process = start_paused_commit(archived_repo, tmp_path, subcommand, nth)
    kill(process)
    moved = run_git(archived_repo, "show", f"HEAD:{INDEX}", check=False).returncode == 0
    assert moved == head_moved  # the kill landed where it was meant to
    if head_moved:  # HEAD has the index; the user's git index still has none staged
        assert INDEX in git(archived_repo, "diff", "--cached", "--name-only").split()

    rerun = run_cli("commit", "31")

    assert rerun.exit_code == 0, rerun.stdout
    assert git(archived_repo, "diff", "--cached", "--name-only", "--", INDEX) == ""
    assert git(archived_repo, "show", f"HEAD:{INDEX}") == (archived_repo / INDEX).read_text()
    assert git(archived_repo, "rev-list", "--count", f"{start}..HEAD").strip() == "1"
    assert status(archived_repo) == ["M  a.txt", f"?? {INDEX}.lock", f"?? {INDEX}.valid"]
    assert list((archived_repo / ".git").glob("log-archiver-*")) == []
    again = run_cli("commit", "31")
    assert again.exit_code == 0 and again.json["status"] == "noop"


def test_a_git_index_that_disagrees_with_head_is_repaired_alone(archived_repo, run_cli):
    """HEAD holds the archive index, the user's git index an older blob (a commit step
    killed before it updated the git index, by an older version or another tool)."""
    assert run_cli("archive", "31").json["commit"]["status"] == "ok"
    committed = (archived_repo / INDEX).read_text()
    old = subprocess.run(["git", "-C", str(archived_repo), "hash-object", "-w", "--stdin"],
                         input='{"old": true}\n', capture_output=True, text=True,
                         check=True).stdout.strip()
    git(archived_repo, "update-index", "--cacheinfo", f"100644,{old},{INDEX}")
    write(archived_repo / "b.txt", "new staged work\n")
    git(archived_repo, "add", "b.txt")
    head = git(archived_repo, "rev-parse", "HEAD")
    assert INDEX in git(archived_repo, "diff", "--cached", "--name-only").split()

    result = run_cli("commit", "31")

    assert result.exit_code == 0 and result.json["status"] == "ok", result.stdout
    assert result.json["commit"]["index_repaired"] is True
    assert result.json["commit"]["committed"] is False
    assert git(archived_repo, "rev-parse", "HEAD") == head  # no new commit was needed
    assert git(archived_repo, "diff", "--cached", "--name-only").split() == ["a.txt", "b.txt"]
    assert git(archived_repo, "show", f":{INDEX}") == committed
    rerun = run_cli("archive", "31")  # the archive's own rerun repairs it too
    assert rerun.json["status"] == "noop"


def test_a_rerun_whose_commit_fails_is_partial_not_noop(archived_repo, run_cli):
    first = run_cli("archive", "31", "--no-commit")
    assert first.exit_code == 0 and first.json["status"] == "ok"
    lock = write(archived_repo / ".git" / "index.lock", "")
    head = git(archived_repo, "rev-parse", "HEAD")

    rerun = run_cli("archive", "31")

    assert rerun.exit_code == 3 and rerun.json["status"] == "partial", rerun.stdout
    assert rerun.json["commit"]["type"] == "git_locked"
    [warning] = [w for w in rerun.json["warnings"] if w.startswith("index not committed")]
    assert str(lock) in warning and "`log-archiver commit 31`" in warning
    assert "`log-archiver commit 31`" in rerun.json["hint"]
    assert git(archived_repo, "rev-parse", "HEAD") == head
    lock.unlink()
    done = run_cli("archive", "31")
    assert done.exit_code == 0 and done.json["status"] == "ok"
    assert "index committed" in done.json["message"]


# --- logs that git tracks ----------------------------------------------------------------

@pytest.fixture
def tracked_logs(workspace, monkeypatch, run_cli):
    """A repository after `log-archiver init` whose logs of issue 31 (and 32) are committed,
    with other work staged."""
    monkeypatch.setenv("LOG_ARCHIVER_RETRY_DELAY_SCALE", "0")
    new_repo(workspace, commit=False)
    assert run_cli("init", "--quiet").exit_code == 0
    from log_archiver.util.samples import log_text

    for name in ("builds/31-build.log", "sessions/session-31-2025-01-15.md",
                 "debug/31-trace.log", "builds/32-build.log"):
        path = workspace / "logs" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(log_text(2_000_000 if "trace" in name else 3_000, len(name)))
    write(workspace / "a.txt", "a\n")
    git(workspace, "add", ".")
    git(workspace, "commit", "-q", "-m", "logs are committed here")
    write(workspace / "a.txt", "a\nstaged\n")
    git(workspace, "add", "a.txt")
    write(workspace / "untracked.txt", "mine\n")
    return workspace


def test_archived_logs_leave_git_in_the_same_commit_as_the_index(tracked_logs, run_cli,
                                                                tmp_path):
    result = run_cli("archive", "31")

    assert result.exit_code == 0 and result.json["status"] == "ok", result.stdout
    commit = result.json["commit"]
    assert commit["status"] == "ok" and sorted(commit["untracked"]) == [
        "logs/builds/31-build.log", "logs/debug/31-trace.log",
        "logs/sessions/session-31-2025-01-15.md"]
    audit = audit_file(tracked_logs)
    assert git(tracked_logs, "ls-files", "logs/").split() == [audit, "logs/.archive-index.json",
                                                             "logs/builds/32-build.log"]
    changed = git(tracked_logs, "show", "--name-status", "--format=", "HEAD").splitlines()
    assert sorted(changed) == [f"A\t{audit}", f"A\t{INDEX}", "D\tlogs/builds/31-build.log",
                               "D\tlogs/debug/31-trace.log",
                               "D\tlogs/sessions/session-31-2025-01-15.md"]
    assert "- Removed 3 archived logs from git" in git(tracked_logs, "log", "-1", "--format=%B")
    # the archive's own files are ignored; other work is as it was
    assert status(tracked_logs) == ["M  a.txt", "?? untracked.txt"]

    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(tracked_logs), str(clone))
    assert sorted(p.relative_to(clone).as_posix() for p in (clone / "logs").rglob("*")
                  if p.is_file()) == [audit, "logs/.archive-index.json",
                                      "logs/builds/32-build.log"]


def test_a_rerun_untracks_logs_an_earlier_archive_left_as_deletions(tracked_logs, run_cli):
    first = run_cli("archive", "31", "--no-commit")
    assert first.exit_code == 0
    assert " D logs/builds/31-build.log" in status(tracked_logs)
    rerun = run_cli("archive", "31")
    assert rerun.exit_code == 0 and rerun.json["status"] == "ok", rerun.stdout
    assert len(rerun.json["commit"]["untracked"]) == 3
    assert status(tracked_logs) == ["M  a.txt", "?? untracked.txt"]


def test_untracking_can_be_turned_off_in_the_config(tracked_logs, run_cli):
    config_path = tracked_logs / ".log-archiver.json"
    config = json.loads(config_path.read_text())
    config["git"]["untrack_cleaned_logs"] = False
    config_path.write_text(json.dumps(config))
    result = run_cli("archive", "31")
    assert result.exit_code == 0 and result.json["commit"]["untracked"] == []
    assert "logs/builds/31-build.log" in git(tracked_logs, "ls-files", "logs/").split()
    assert " D logs/builds/31-build.log" in status(tracked_logs)
    audit = audit_file(tracked_logs)
    assert git(tracked_logs, "show", "--name-only", "--format=", "HEAD").split() == [audit,
                                                                                      INDEX]


def test_a_hostile_local_path_never_untracks_anything_else(tracked_logs, run_cli):
    from log_archiver.index.file import ArchiveIndex
    from log_archiver.integrations.git import commit_archive

    assert run_cli("archive", "32", "--no-commit").exit_code == 0
    (tracked_logs / "a.txt").unlink()  # tracked, missing, and named by a forged record
    index = ArchiveIndex(tracked_logs / INDEX)
    with index.transaction() as txn:
        txn.edit(32)["logs"][0]["local_path"] = "../a.txt"
    result = commit_archive(index, 32, repo_root=tracked_logs)
    assert result["status"] == "ok" and result["untracked"] == []
    assert "a.txt" in git(tracked_logs, "ls-files").split()
    audit = audit_file(tracked_logs)
    assert git(tracked_logs, "show", "--name-only", "--format=", "HEAD").split() == [audit,
                                                                                      INDEX]


def test_killed_after_head_moved_the_untracked_logs_leave_the_git_index_too(
        tracked_logs, run_cli, tmp_path):
    assert run_cli("archive", "31", "--no-commit").exit_code == 0
    kill(start_paused_commit(tracked_logs, tmp_path, "update-index", 2))
    assert "logs/builds/31-build.log" not in git(tracked_logs, "ls-tree", "-r", "--name-only",
                                                  "HEAD").split()
    assert "logs/builds/31-build.log" in git(tracked_logs, "ls-files").split()  # left behind

    rerun = run_cli("commit", "31")

    assert rerun.exit_code == 0 and rerun.json["commit"]["index_repaired"], rerun.stdout
    audit = audit_file(tracked_logs)
    assert git(tracked_logs, "ls-files", "logs/").split() == [audit, INDEX,
                                                              "logs/builds/32-build.log"]
    assert status(tracked_logs) == ["M  a.txt", "?? untracked.txt"]

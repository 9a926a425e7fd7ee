"""`log-archiver init`: the config, and in a git repository the index merge driver, with
real `git merge` runs between branches that archived."""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path

import pytest

from conftest import run_script
from gitutil import first_commit, git, init_repo, run_git
from log_archiver.index.file import validate_document
from log_archiver.index.merge import DRIVER_COMMAND, DRIVER_NAME, driver_command
from log_archiver.util.samples import log_text

INDEX = "logs/.archive-index.json"
BIN = str(Path(sys.executable).parent)


def files_of(root: Path, *names: str) -> dict[str, bytes | None]:
    return {name: (root / name).read_bytes() if (root / name).exists() else None
            for name in names}


def test_init_in_a_git_repository_installs_the_merge_driver_once(workspace, isolated_git,
                                                                  run_cli):
    init_repo(workspace)
    (workspace / ".gitignore").write_text("*.pyc")  # no newline at the end
    (workspace / ".gitattributes").write_text("*.png binary\n")

    first = run_cli("init")

    assert first.exit_code == 0, first.stdout
    doc = first.json
    driver = doc["merge_driver"]
    assert doc["status"] == "ok" and driver["installed"] and driver["changed"]
    assert driver["index"] == INDEX
    assert (workspace / ".gitattributes").read_text() == (
        f"*.png binary\n/{INDEX} merge={DRIVER_NAME}\n"
        "/logs/.archive-audit/*.jsonl merge=union\n")
    assert git(workspace, "check-attr", "merge", "--", INDEX).strip() == (
        f"{INDEX}: merge: {DRIVER_NAME}")
    configured = git(workspace, "config", "--local", "--get-all", f"merge.{DRIVER_NAME}.driver")
    assert configured.splitlines() == [driver["driver"]]
    ignore = (workspace / ".gitignore").read_text()
    assert ignore.startswith("*.pyc\n# log-archiver")
    for name in (".lock", ".backup", ".valid", ".batch", ".la-1234-abcd.tmp"):
        assert run_git(workspace, "check-ignore", "-q", INDEX + name, check=False).returncode == 0
    assert run_git(workspace, "check-ignore", "-q", INDEX, check=False).returncode == 1
    assert (workspace / ".log-archiver.json").is_file()

    kept = files_of(workspace, ".gitignore", ".gitattributes", ".log-archiver.json",
                    ".git/config")
    again = run_cli("init")

    assert again.exit_code == 0 and again.json["status"] == "noop"
    assert again.json["merge_driver"]["changed"] is False
    assert files_of(workspace, *kept) == kept  # nothing added twice, nothing rewritten


def test_init_outside_git_writes_the_config_and_says_the_driver_is_not_installed(workspace,
                                                                                  run_cli):
    result = run_cli("init")
    assert result.exit_code == 0 and result.json["status"] == "ok"
    assert (workspace / ".log-archiver.json").is_file()
    driver = result.json["merge_driver"]
    assert driver == {"installed": False, "reason": driver["reason"]}
    assert "not a git work tree" in driver["reason"] and "git init" in driver["reason"]
    assert "merge driver not installed" in result.stderr
    assert not (workspace / ".gitattributes").exists() and not (workspace / ".gitignore").exists()


def test_driver_command_is_the_plain_name_when_it_is_on_path(monkeypatch):
    monkeypatch.setenv("PATH", BIN + os.pathsep + os.environ.get("PATH", ""))
    assert driver_command() == DRIVER_COMMAND
    monkeypatch.setenv("PATH", "/nonexistent")
    command = driver_command()
    assert shlex.split(command)[0] == str(Path(BIN) / "log-archiver")
    assert command.endswith(" merge-index %O %A %B")


# --- branches that archived, merged by git through the installed driver -----------------

@pytest.fixture
def repo(workspace, isolated_git, monkeypatch):
    """A repository after `log-archiver init` (run as a user with the tools on PATH)."""
    init_repo(workspace)
    monkeypatch.setenv("PATH", BIN + os.pathsep + os.environ.get("PATH", ""))
    result = run_script("log-archiver", "init", cwd=workspace)
    assert result.exit_code == 0, result.stdout
    assert result.json["merge_driver"]["driver"] == DRIVER_COMMAND
    git(workspace, "add", ".gitattributes", ".gitignore", ".log-archiver.json")
    git(workspace, "commit", "-q", "-m", "log-archiver init")
    return workspace


def archive_on_branch(root: Path, branch: str, logs: dict[str, bytes], issue: int,
                      store: Path) -> None:
    git(root, "checkout", "-q", "-b", branch, "main")
    for name, data in logs.items():
        path = root / "logs" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    env = dict(os.environ, LOG_ARCHIVER_STORAGE=f"file://{store}")
    result = run_script("log-archiver", "archive", str(issue), cwd=root, env=env)
    assert result.exit_code == 0, result.stdout
    assert result.json["commit"]["status"] == "ok"


def test_branches_that_archived_different_issues_merge_cleanly(repo, tmp_path):
    store = tmp_path / "store"
    archive_on_branch(repo, "a", {"builds/1-build.log": log_text(3000, 1)}, 1, store)
    archive_on_branch(repo, "b", {"builds/2-build.log": log_text(3000, 2),
                                  "debug/2-trace.log": log_text(2000, 3)}, 2, store)
    git(repo, "checkout", "-q", "a")

    merged = run_git(repo, "merge", "--no-edit", "b", check=False)

    assert merged.returncode == 0, merged.stdout + merged.stderr
    doc = json.loads((repo / INDEX).read_text())
    validate_document(doc)
    assert [e["issue_number"] for e in doc["archives"]] == [2, 1]
    assert [e["total_logs"] for e in doc["archives"]] == [2, 1]
    assert git(repo, "status", "--porcelain", "--untracked-files=no") == ""
    assert git(repo, "show", f"HEAD:{INDEX}") == (repo / INDEX).read_text()
    check = run_script("log-archiver", "validate-index", cwd=repo)
    assert check.exit_code == 0 and check.json["status"] == "ok"


def test_the_same_file_with_different_checksums_is_left_as_a_conflict(repo, tmp_path):
    archive_on_branch(repo, "a", {"builds/5-build.log": log_text(3000, 1)}, 5,
                      tmp_path / "store-a")
    archive_on_branch(repo, "b", {"builds/5-build.log": log_text(3000, 2)}, 5,
                      tmp_path / "store-b")
    git(repo, "checkout", "-q", "a")
    ours = (repo / INDEX).read_bytes()

    merged = run_git(repo, "merge", "--no-edit", "b", check=False)

    assert merged.returncode != 0
    assert "log-archiver merge conflict: issue #5, builds/5-build.log" in merged.stderr
    assert INDEX in git(repo, "ls-files", "-u")  # git marks it unmerged for a person
    assert (repo / INDEX).read_bytes() == ours  # no silent pick of either side's file


def test_a_fresh_clone_gets_the_git_config_from_init(repo, tmp_path):
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(repo), str(clone))
    assert run_git(clone, "config", "--get", f"merge.{DRIVER_NAME}.driver",
                   check=False).returncode == 1  # git config is not versioned
    tracked = files_of(clone, ".gitattributes", ".gitignore", ".log-archiver.json")

    result = run_script("log-archiver", "init", cwd=clone)

    assert result.exit_code == 0 and result.json["status"] == "ok"
    driver = result.json["merge_driver"]
    assert driver["git_config_changed"] and not driver["gitattributes_changed"]
    assert not driver["gitignore_changed"]
    assert files_of(clone, *tracked) == tracked
    assert git(clone, "config", "--get", f"merge.{DRIVER_NAME}.driver").strip() == DRIVER_COMMAND


def test_init_ignores_the_tools_own_files_beside_the_logs(workspace, isolated_git, run_cli):
    init_repo(workspace)
    assert run_cli("init").exit_code == 0

    def ignored(name: str) -> bool:
        done = run_git(workspace, "check-ignore", "-q", "--no-index", name, check=False)
        return done.returncode == 0

    for name in ("logs/builds/.31-build.log.la.gz", "logs/sessions/.session-31-x.md.la.zst",
                 "logs/builds/31-build.log.gz.la-4242-ab12cd34.tmp",
                 "logs/.reindex.la-4242-ab12cd34.tmp", "logs/debug/.31-trace.log.4242.part"):
        assert ignored(name), name
    for name in ("logs/builds/31-build.log", "logs/sessions/session-31-x.md", INDEX,
                 "src/data.gz", "logs/notes.gz",
                 "logs/builds/31-build.log.gz"):  # a log someone compressed: a log
        assert not ignored(name), name


def test_init_writes_nothing_of_this_machine_into_the_config(workspace, isolated_git,
                                                             run_cli, monkeypatch):
    home = Path(os.environ["HOME"])
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.delenv("LOG_ARCHIVER_STORAGE")
    init_repo(workspace)
    result = run_cli("init")
    assert result.exit_code == 0, result.stdout
    text = (workspace / ".log-archiver.json").read_text()
    for part in {str(home), home.name, str(home.parent)}:
        assert part not in text, part
    assert "storage" not in json.loads(text) and "storage" not in result.json["config"]
    from log_archiver.config import load_config

    config = load_config(workspace, environ={})  # the default store comes at run time
    assert config.storage == f"file://{home / 'data' / 'log-archiver' / 'store'}"

    named = run_cli("init", "--force", "--storage", "s3://bucket/logs")
    assert named.exit_code == 0
    assert json.loads((workspace / ".log-archiver.json").read_text())["storage"] == (
        "s3://bucket/logs")


def test_in_a_linked_worktree_the_default_queue_is_in_the_tree_and_git_ignored(
        tmp_path, isolated_git, monkeypatch, run_cli):
    main = init_repo(tmp_path / "main")
    first_commit(main)
    tree = tmp_path / "tree"
    git(main, "worktree", "add", "-q", "-b", "side", str(tree))
    assert (tree / ".git").is_file()  # so the queue cannot live in .git here
    (tree / "logs").mkdir()
    monkeypatch.chdir(tree)
    for name in list(os.environ):
        if name.startswith("LOG_ARCHIVER_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("LOG_ARCHIVER_STORAGE", f"file://{tmp_path / 'store'}")
    result = run_cli("init")
    assert result.exit_code == 0, result.stdout
    assert "/logs/.log-archiver-queue.sqlite3" in result.json["merge_driver"]["ignored"]
    queued = run_cli("enqueue", "12", "--reason", "manual")
    assert queued.exit_code == 0, queued.stdout
    assert queued.json["queue_url"] == f"sqlite:///{tree / 'logs/.log-archiver-queue.sqlite3'}"
    assert (tree / "logs/.log-archiver-queue.sqlite3").is_file()
    assert git(tree, "status", "--porcelain", "--untracked-files=all").split("\n")[:-1] == [
        "?? .gitattributes", "?? .gitignore", "?? .log-archiver.json"]
    for name in ("logs/.log-archiver-queue.sqlite3-wal", "logs/.log-archiver-queue.sqlite3-shm",
                 "logs/.log-archiver-queue.sqlite3-journal"):
        assert run_git(tree, "check-ignore", "-q", "--no-index", name, check=False
                       ).returncode == 0, name
    assert run_git(tree, "check-ignore", "-q", "--no-index", "logs/builds/12-build.log",
                   check=False).returncode == 1
    again = run_cli("init")
    assert again.json["merge_driver"]["gitignore_changed"] is False


def test_init_ignores_a_configured_queue_file_in_the_tree_and_none_outside(
        workspace, isolated_git, run_cli, tmp_path):
    init_repo(workspace)
    config = workspace / ".log-archiver.json"
    config.write_text(json.dumps({"logs_dir": "logs", "queue": {"url": "sqlite:///var/q.db"}}))
    result = run_cli("init")
    assert result.exit_code == 0, result.stdout
    ignored = result.json["merge_driver"]["ignored"]
    assert "/var/q.db" in ignored and "/var/q.db-*" in ignored
    assert "/logs/.log-archiver-queue.sqlite3" in ignored  # another worktree's default
    assert run_git(workspace, "check-ignore", "-q", "--no-index", "var/q.db-wal",
                   check=False).returncode == 0
    config.write_text(json.dumps({"logs_dir": "logs", "queue": {
        "url": f"sqlite:///{tmp_path / 'elsewhere' / 'q.db'}"}}))
    result = run_cli("init")  # the config is kept: its queue.url counts
    assert result.exit_code == 0, result.stdout
    assert not any("elsewhere" in line for line in result.json["merge_driver"]["ignored"])
    assert "elsewhere" not in (workspace / ".gitignore").read_text()

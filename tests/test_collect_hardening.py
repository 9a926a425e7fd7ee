"""Collect every real log, never overwrite one, confine every path read from the index.

1. a person's own ``NAME.gz`` is a log: archived as it is, never overwritten or deleted
   unstored (the tool's compressed copies have names of their own);
2. a path from the index (or update-index's metadata) outside the logs dir is refused
   before anything is read or deleted, and a compressed copy is deleted only when its own
   bytes are the stored ones;
21. no logs: nothing recorded, posted or committed (unless --allow-empty);
24. freed_bytes counts the logs' own bytes;
27. every file naming the issue that is left alone is in skipped[] with the reason.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from pathlib import Path

import pytest

from fakegithub import FakeGitHub
from gitutil import first_commit, git, init_repo
from log_archiver.model.records import recompute_entry
from log_archiver.util.samples import log_text

INDEX = "logs/.archive-index.json"
BIG = 1_500_000  # over the 1 MiB threshold: compressed


def store_of(workspace: Path) -> Path:
    return workspace.parent / "store"


def read_index(workspace: Path) -> dict:
    return json.loads((workspace / INDEX).read_text())


def entry_of(workspace: Path, issue: int) -> dict:
    [entry] = [e for e in read_index(workspace)["archives"] if e["issue_number"] == issue]
    return entry


def write_index(workspace: Path, doc: dict) -> None:
    (workspace / INDEX).write_text(json.dumps(doc, indent=2) + "\n")


def edit_log(workspace: Path, issue: int, local_path: str, **fields) -> None:
    doc = read_index(workspace)
    for entry in doc["archives"]:
        for log in entry["logs"]:
            if entry["issue_number"] == issue and log["local_path"] == local_path:
                log.update(fields)
                recompute_entry(entry)  # a careful forgery: only the path is wrong
    write_index(workspace, doc)


def put(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# -- 1. a log's own .gz ---------------------------------------------------------------


def test_a_users_own_gz_beside_a_big_log_is_archived_as_it_is(workspace, run_cli):
    logs = workspace / "logs"
    build = put(logs / "builds/123-build.log", log_text(BIG, 1))
    mine = gzip.compress(b"an older build log, compressed by hand\n" * 100)
    put(logs / "builds/123-build.log.gz", mine)

    result = run_cli("archive", "123", "--no-commit")
    assert result.exit_code == 0, result.stdout
    assert result.json["collected"] == 2 and result.json["skipped"] == []
    logs_by_path = {log["local_path"]: log for log in entry_of(workspace, 123)["logs"]}
    assert set(logs_by_path) == {"builds/123-build.log", "builds/123-build.log.gz"}
    ours, theirs = logs_by_path["builds/123-build.log"], logs_by_path["builds/123-build.log.gz"]
    assert ours["compressed"] and ours["stored_path"] == "builds/.123-build.log.la.gz"
    assert ours["remote_path"].endswith("/123-build.log.gz") or \
        theirs["remote_path"].endswith("/123-build.log.gz")
    assert ours["remote_path"] != theirs["remote_path"]
    # the user's file is stored byte for byte, as it is
    assert not theirs["compressed"] and theirs["checksum"] == sha(mine)
    assert (store_of(workspace) / theirs["remote_path"]).read_bytes() == mine
    assert gzip.decompress((store_of(workspace) / ours["remote_path"]).read_bytes()) == \
        log_text(BIG, 1)
    assert not build.exists() and not (logs / "builds/123-build.log.gz").exists()
    assert not (logs / "builds/.123-build.log.la.gz").exists()


def test_a_gz_beside_a_small_log_is_collected_too(workspace, run_cli):
    logs = workspace / "logs"
    put(logs / "builds/5-build.log", b"small build log\n")
    put(logs / "builds/5-build.log.gz", gzip.compress(b"yesterday's build\n"))
    collected = run_cli("collect-logs", "5")
    assert collected.exit_code == 0
    assert [log["local_path"] for log in collected.json["logs"]] == [
        "builds/5-build.log", "builds/5-build.log.gz"]


def test_a_gz_log_appearing_after_the_archive_is_stored_before_it_is_deleted(workspace,
                                                                              run_cli):
    logs = workspace / "logs"
    put(logs / "builds/123-build.log", log_text(BIG, 2))
    assert run_cli("archive", "123", "--no-commit").exit_code == 0
    late = gzip.compress(b"found later on another machine\n" * 50)
    put(logs / "builds/123-build.log.gz", late)

    again = run_cli("archive", "123", "--no-commit")
    assert again.exit_code == 0, again.stdout
    assert again.json["new_logs"] == ["builds/123-build.log.gz"]
    record = next(log for log in entry_of(workspace, 123)["logs"]
                  if log["local_path"] == "builds/123-build.log.gz")
    assert record["upload_status"] == "cleaned" and record["checksum"] == sha(late)
    assert (store_of(workspace) / record["remote_path"]).read_bytes() == late


def legacy_layout(workspace: Path, issue: int, local_path: str) -> Path:
    """Turn the pending compressed copy of ``local_path`` into what an older release left:
    ``NAME.gz`` beside the log, named so in the index."""
    logs = workspace / "logs"
    folder, name = local_path.rsplit("/", 1)
    hidden = logs / folder / f".{name}.la.gz"
    legacy = logs / f"{local_path}.gz"
    hidden.rename(legacy)
    edit_log(workspace, issue, local_path, stored_path=f"{local_path}.gz")
    return legacy


def upload_legacy(workspace: Path, run_cli, issue: int, local_path: str) -> Path:
    """Prepare ``local_path``, turn it into an older release's layout, upload it."""
    plan = run_cli("prepare-upload", str(issue))
    legacy = legacy_layout(workspace, issue, local_path)
    name = local_path.rsplit("/", 1)[1]
    plan_file = workspace.parent / "plan.json"
    plan_file.write_text(plan.stdout.replace(f".{name}.la.gz", f"{name}.gz"))
    assert run_cli("file-manager", "upload", str(plan_file)).exit_code == 0
    return legacy


def test_an_index_with_the_old_copy_names_still_cleans_up(workspace, run_cli):
    logs = workspace / "logs"
    original = put(logs / "builds/31-build.log", log_text(BIG, 3))
    legacy = upload_legacy(workspace, run_cli, 31, "builds/31-build.log")
    collected = run_cli("collect-logs", "31")  # our old copy is no log of its own
    assert [log["local_path"] for log in collected.json["logs"]] == ["builds/31-build.log"]

    cleaned = run_cli("cleanup-local", "31")
    assert cleaned.exit_code == 0, cleaned.stdout
    assert set(cleaned.json["deleted"]) == {"builds/31-build.log", "builds/31-build.log.gz"}
    assert not original.exists() and not legacy.exists()
    assert [log["upload_status"] for log in entry_of(workspace, 31)["logs"]] == ["cleaned"]


def test_a_pending_log_with_an_old_copy_is_prepared_again_and_leaves_no_copy(workspace,
                                                                            run_cli):
    logs = workspace / "logs"
    original = put(logs / "builds/34-build.log", log_text(BIG, 9))
    assert run_cli("prepare-upload", "34").exit_code == 0
    legacy = legacy_layout(workspace, 34, "builds/34-build.log")
    done = run_cli("archive", "34", "--no-commit")
    assert done.exit_code == 0, done.stdout
    assert [log["local_path"] for log in entry_of(workspace, 34)["logs"]] == [
        "builds/34-build.log"]
    assert not original.exists() and not legacy.exists()
    assert not [p for p in logs.rglob("*34-build*")]


def test_an_index_with_the_old_copy_names_reindexes_to_the_copy_left(workspace, run_cli):
    logs = workspace / "logs"
    original = put(logs / "builds/32-build.log", log_text(BIG, 4))
    legacy = upload_legacy(workspace, run_cli, 32, "builds/32-build.log")
    original.unlink()  # only our old copy is left on disk

    rebuilt = run_cli("archive", "32", "--reindex-only")
    assert rebuilt.exit_code == 0, rebuilt.stdout
    [log] = entry_of(workspace, 32)["logs"]
    assert log["local_path"] == "builds/32-build.log"
    assert log["stored_path"] == "builds/32-build.log.gz" and log["upload_status"] == "verified"
    cleaned = run_cli("cleanup-local", "32")
    assert cleaned.exit_code == 0 and cleaned.json["deleted"] == ["builds/32-build.log.gz"]
    assert not legacy.exists()


def test_a_gz_at_an_old_copy_name_holding_other_bytes_is_a_log(workspace, run_cli):
    """An index from an older release names builds/33-build.log.gz as its copy; the file
    there now is a person's: it is archived as a log, never deleted unstored."""
    logs = workspace / "logs"
    put(logs / "builds/33-build.log", log_text(BIG, 5))
    assert run_cli("prepare-upload", "33").exit_code == 0
    legacy = legacy_layout(workspace, 33, "builds/33-build.log")
    assert run_cli("archive", "33", "--no-commit").exit_code == 0
    assert not legacy.exists()
    mine = gzip.compress(b"a person's own file\n" * 10)
    put(legacy, mine)

    again = run_cli("archive", "33", "--no-commit")
    assert again.exit_code == 0, again.stdout
    assert again.json["new_logs"] == ["builds/33-build.log.gz"]
    record = next(log for log in entry_of(workspace, 33)["logs"]
                  if log["local_path"] == "builds/33-build.log.gz")
    assert (store_of(workspace) / record["remote_path"]).read_bytes() == mine


def test_orphaned_copies_of_ours_are_known_by_their_new_name(workspace, run_cli):
    logs = workspace / "logs"
    data = log_text(50_000, 6)
    put(logs / "builds/40-build.log", data)
    copy = put(logs / "builds/.40-build.log.la.gz", gzip.compress(data))
    lonely = put(logs / "builds/.41-build.log.la.gz", gzip.compress(b"only copy left"))
    week = 8 * 86_400
    for path in (copy, lonely):
        os.utime(path, (path.stat().st_mtime - week,) * 2)
    result = run_cli("cleanup-local", "--orphans")
    assert result.exit_code == 0, result.stdout
    assert [o["path"] for o in result.json["orphans"]] == ["builds/.40-build.log.la.gz"]
    assert not copy.exists() and lonely.exists()


# -- 2. paths from the index ----------------------------------------------------------


@pytest.fixture
def uploaded_big_log(workspace, run_cli, tmp_path):
    """Issue 50's big log, uploaded and verified, not cleaned; and a file outside."""
    put(workspace / "logs/builds/50-build.log", log_text(BIG, 7))
    plan = run_cli("prepare-upload", "50")
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(plan.stdout)
    assert run_cli("file-manager", "upload", str(plan_file)).exit_code == 0
    victim = put(tmp_path / "outside" / "victim.txt", b"precious, stored nowhere\n")
    return victim


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink"])
def test_cleanup_refuses_an_entry_whose_path_leads_out(workspace, run_cli, uploaded_big_log,
                                                        kind):
    victim = uploaded_big_log
    logs = workspace / "logs"
    if kind == "dotdot":
        bad = os.path.relpath(victim, logs)
    elif kind == "absolute":
        bad = str(victim)
    else:
        os.symlink(victim, logs / "builds/50-link.gz")
        bad = "builds/50-link.gz"
    edit_log(workspace, 50, "builds/50-build.log", stored_path=bad)
    before = read_index(workspace)

    result = run_cli("cleanup-local", "50")
    assert result.exit_code == 1, result.stdout
    [error] = result.json["errors"]
    assert error["type"] == "index_corrupt"
    assert repr(bad) in error["message"] and "issue 50" in error["message"]
    assert "builds/50-build.log" in error["message"] and "update-index 50" in error["hint"]
    assert victim.read_bytes() == b"precious, stored nowhere\n"
    assert (logs / "builds/50-build.log").exists()
    assert read_index(workspace) == before
    listed = run_cli("retry-failed-uploads", "50")
    assert listed.exit_code == 1 and repr(bad) in listed.json["errors"][0]["message"]


def test_upload_never_reads_a_file_outside_the_logs_dir(workspace, run_cli, tmp_path):
    secret = put(tmp_path / "secret.txt", b"not for the store\n")
    put(workspace / "logs/builds/51-build.log", b"a small log\n")
    plan = run_cli("prepare-upload", "51")
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(plan.stdout)
    edit_log(workspace, 51, "builds/51-build.log", stored_path="../../secret.txt",
             checksum=sha(secret.read_bytes()), size_bytes=secret.stat().st_size)
    result = run_cli("file-manager", "upload", str(plan_file))
    assert result.exit_code == 1, result.stdout
    assert "'../../secret.txt'" in result.json["errors"][0]["message"]
    stored = [p for p in store_of(workspace).rglob("*") if p.is_file()] \
        if store_of(workspace).exists() else []
    assert not [p for p in stored if p.read_bytes() == secret.read_bytes()]


@pytest.mark.parametrize("field, value", [("local_path", "../../etc/passwd"),
                                          ("stored_path", "/etc/passwd"),
                                          ("local_path", "builds/../../x.log")])
def test_update_index_refuses_paths_outside_the_logs_dir(workspace, run_cli, tmp_path, field,
                                                         value):
    record = {"type": "build", "local_path": "builds/52-build.log",
              "stored_path": "builds/52-build.log", "remote_path":
              "archive/logs/2025/01/52/52-build.log", "size_bytes": 3,
              "original_size_bytes": 3, "compressed": False, "checksum": sha(b"abc"),
              "created": "2025-01-01T00:00:00Z", "upload_status": "pending"}
    record[field] = value
    metadata = tmp_path / "meta.json"
    metadata.write_text(json.dumps([record]))
    result = run_cli("update-index", "52", str(metadata))
    assert result.exit_code == 2, result.stdout
    assert repr(value) in result.json["errors"][0]["message"]
    assert not (workspace / INDEX).exists()


def test_a_compressed_copy_is_deleted_only_if_it_holds_the_stored_bytes(workspace, run_cli,
                                                                        uploaded_big_log):
    copy = workspace / "logs/builds/.50-build.log.la.gz"
    copy.write_bytes(b"something else now\n")
    result = run_cli("cleanup-local", "50")
    assert result.exit_code == 0, result.stdout
    assert copy.read_bytes() == b"something else now\n"
    assert (workspace / "logs/builds/50-build.log").exists()  # the log is kept with it
    [kept] = result.json["kept"]
    assert kept["local_path"] == "builds/50-build.log" and "bytes" in kept["reason"]


# -- 21. no logs ----------------------------------------------------------------------


@pytest.fixture
def project(workspace, isolated_git):
    init_repo(workspace)
    first_commit(workspace)
    return workspace


def test_no_logs_records_posts_and_commits_nothing(project, run_cli, monkeypatch):
    with FakeGitHub("octo/proj", token="t") as github:
        github.add_issue(12345, "Someone else's issue", state="closed")
        monkeypatch.setenv("GITHUB_TOKEN", "t")
        monkeypatch.setenv("GITHUB_REPOSITORY", "octo/proj")
        monkeypatch.setenv("GITHUB_API_URL", github.url)
        result = run_cli("archive", "12345")
        assert result.exit_code == 0, result.stdout
        assert result.json["status"] == "noop" and result.json["collected"] == 0
        assert "No logs of issue #12345 found" in result.json["message"]
        assert "✓ Logs archived" not in result.stderr and "No logs" in result.stderr
        assert not (project / INDEX).exists()
        assert github.requests == [] and github.comments.get(12345, []) == []
        assert git(project, "rev-list", "--count", "HEAD").strip() == "1"

        plan = run_cli("prepare-upload", "12345")
        assert plan.exit_code == 0 and plan.json["status"] == "noop"
        assert not (project / INDEX).exists()

        asked = run_cli("archive", "12345", "--allow-empty")
        assert asked.exit_code == 0, asked.stdout
        assert entry_of(project, 12345)["logs"] == []


# -- 24. freed bytes ------------------------------------------------------------------


def test_freed_space_is_the_logs_own_bytes(project, run_cli):
    put(project / "logs/builds/60-build.log", log_text(BIG, 8))
    result = run_cli("archive", "60")
    assert result.exit_code == 0, result.stdout
    cleanup = result.json["cleanup"]
    assert cleanup["freed_bytes"] == BIG
    assert 0 < cleanup["copies_freed_bytes"] < BIG
    assert "Local cleaned: 1.5 MB freed" in result.stderr
    message = git(project, "log", "-1", "--format=%B")
    assert "- Freed 1.5 MB locally" in message


# -- 27. what collect leaves alone ------------------------------------------------------


def test_every_file_naming_the_issue_is_collected_or_skipped_with_a_reason(workspace,
                                                                           run_cli):
    logs = workspace / "logs"
    for name in ("7-misc.log", "builds/7.log", "builds/7_nightly.log",
                 "sessions/old/session-7-2025-01-02.md", "builds/7-run/output.txt",
                 "builds/build-7.log", "debug/.7-notes.log", "other/7-deploy.log",
                 "deployments/run-7/out.txt", "other/deep/7-x.log",
                 "builds/8-build.log", "builds/17-build.log", "builds/70.log",
                 "sessions/old/session-8-x.md", "builds/.7-build.log.la.gz"):
        put(logs / name, b"x\n")
    os.mkfifo(logs / "debug/7-pipe.log")

    result = run_cli("collect-logs", "7")
    assert result.exit_code == 0, result.stdout
    assert [log["local_path"] for log in result.json["logs"]] == ["builds/7.log",
                                                                 "builds/7_nightly.log"]
    reasons = {s["path"]: s["reason"] for s in result.json["skipped"]}
    assert set(reasons) == {"7-misc.log", "sessions/old/session-7-2025-01-02.md",
                            "builds/7-run/output.txt", "builds/build-7.log",
                            "debug/.7-notes.log", "other/7-deploy.log", "debug/7-pipe.log",
                            "deployments/run-7/out.txt"}
    assert "not in a log type folder" in reasons["7-misc.log"]
    assert "not in a log type folder" in reasons["other/7-deploy.log"]
    assert "subfolder of sessions/" in reasons["sessions/old/session-7-2025-01-02.md"]
    assert "subfolder of builds/" in reasons["builds/7-run/output.txt"]
    assert "rename it" in reasons["builds/build-7.log"]
    assert "hidden" in reasons["debug/.7-notes.log"]
    assert "FIFO" in reasons["debug/7-pipe.log"]

    archived = run_cli("archive", "7", "--no-commit")  # a FIFO is never opened
    assert archived.exit_code == 0, archived.stdout
    assert set(archived.json["cleanup"]["deleted"]) == {"builds/7.log", "builds/7_nightly.log"}
    assert (logs / "debug/7-pipe.log").exists() and (logs / "7-misc.log").exists()


def test_prepare_looks_at_each_log_once(workspace, run_cli, monkeypatch):
    """collect's one stat per log (from the folder scan) is all prepare needs."""
    logs = workspace / "logs"
    paths = [put(logs / "builds/70-big.log", log_text(BIG, 10)),
             put(logs / "builds/70-small.log", b"small\n"),
             put(logs / "deployments/70-deploy.log", b"deployed\n")]
    looked: list[str] = []
    real_stat = os.stat

    def counting_stat(path, *args, **kwargs):
        if any(str(path) == str(p) for p in paths):
            looked.append(str(path))
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", counting_stat)
    result = run_cli("prepare-upload", "70")
    assert result.exit_code == 0, result.stdout
    assert len(result.json["files"]) == 3
    assert looked == []  # no second stat by path: sizes come from the scan

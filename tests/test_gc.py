"""gc on the file store: the dry run equals the run, tombstones, what is never touched, a gc
killed at chosen points and run again, the index valid throughout."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from conftest import script
from lifecycle_scene import OLD, age, archive, build, index_of, keys_of, set_retention
from log_archiver.storage.local import LocalStore


def store_keys(workspace) -> set[str]:
    root = workspace.parent / "store"
    return {info.key for info in LocalStore(root).list("archive/logs/")}


def valid(run_cli) -> None:
    result = run_cli("validate-index", "-q")
    assert result.exit_code == 0, result.json["violations"]


def test_dry_run_then_gc_deletes_exactly_what_the_dry_run_listed(workspace, run_cli):
    scene = build(run_cli, workspace)
    before = store_keys(workspace)
    dry = run_cli("gc", "--dry-run", "-q")
    assert dry.exit_code == 0 and dry.json["dry_run"]
    listed = {item["key"] for item in dry.json["deleted"]}
    assert listed == scene["due"] and len(listed) == 2
    assert store_keys(workspace) == before  # the dry run deleted nothing
    kept = {(k["issue_number"], k["reason"]) for k in dry.json["kept"]}
    assert {(11, "forever"), (12, "held"), (13, "incomplete"), (14, "incomplete"),
            (15, "not_due")} <= kept
    assert dry.json["kept_by_reason"]["held"] == 4

    run = run_cli("gc", "-q")
    assert run.exit_code == 0, run.stdout
    assert {item["key"] for item in run.json["deleted"]} == listed
    assert run.json["deleted_bytes"] == dry.json["deleted_bytes"] > 0
    assert store_keys(workspace) == before - listed
    valid(run_cli)
    entry = index_of(workspace).find(11)
    expired = [log for log in entry["logs"] if log["upload_status"] == "expired"]
    assert {log["remote_path"] for log in expired} == listed
    assert all(log["expired_rule"] == "default" and log["expired_at"] for log in expired)
    assert all("expiring" not in log for log in entry["logs"])
    assert entry["upload_complete"] and not entry["partial_archive"]
    assert entry["total_logs"] == 4  # tombstones stay in the record

    again = run_cli("gc", "-q")
    assert again.exit_code == 0 and again.json["status"] == "noop"
    assert again.json["deleted"] == [] and store_keys(workspace) == before - listed


def test_no_retention_configured_deletes_nothing_and_says_so(workspace, run_cli):
    archive(run_cli, workspace, 21)
    age(workspace, 21)
    result = run_cli("gc")
    assert result.json["status"] == "noop" and not result.json["retention"]["configured"]
    assert "nothing ever expires" in result.json["message"]
    assert "nothing ever expires" in result.stderr
    assert {k["reason"] for k in result.json["kept"]} == {"no_rule"}


def test_issue_option_limits_gc_to_one_entry(workspace, run_cli):
    set_retention(workspace, {"default": "30d"})
    for issue in (31, 32):
        archive(run_cli, workspace, issue)
    age(workspace, 31, 32)
    result = run_cli("gc", "--issue", "32", "-q")
    assert {item["issue_number"] for item in result.json["deleted"]} == {32}
    assert keys_of(workspace, 31) <= store_keys(workspace)


def test_held_partial_and_pending_survive_gc_orphans_cleanup_and_force(workspace, run_cli,
                                                                       tmp_path):
    build(run_cli, workspace)
    protected = keys_of(workspace, 12, 13) & store_keys(workspace)
    assert len(protected) == 8
    pending = index_of(workspace).find(14)
    for step in (("gc",), ("gc", "--orphans", "--older-than", "0s"),
                 ("cleanup-local", "--orphans"), ("gc",)):
        result = run_cli(*step, "-q")
        assert result.exit_code in (0, 3), result.stdout
        assert protected <= store_keys(workspace), step
    moved = run_cli("archive", "12", "--force", "--storage", f"file://{tmp_path / 'other'}")
    assert moved.exit_code == 2 and moved.json["errors"][0]["type"] == "held"
    assert "legal hold" in moved.json["errors"][0]["message"]
    assert index_of(workspace).find(12)["storage_url"] == LocalStore(
        workspace.parent / "store").url
    assert protected <= store_keys(workspace)
    after = index_of(workspace).find(14)
    assert [log["upload_status"] for log in after["logs"]] == \
        [log["upload_status"] for log in pending["logs"]] == ["pending"] * 4
    assert all(log["upload_status"] != "expired"
               for issue in (12, 13) for log in index_of(workspace).find(issue)["logs"])
    valid(run_cli)


def test_expired_log_versions_kept_by_force_expire_with_it(workspace, run_cli):
    set_retention(workspace, {"default": "30d"})
    archive(run_cli, workspace, 41)
    log = workspace / "logs" / "builds" / "41-build.log"
    log.write_text("a new version of the build log\n")
    assert run_cli("archive", "41", "--force", "-q").exit_code == 0
    entry = index_of(workspace).find(41)
    kept = [k["remote_path"] for k in entry["kept_objects"]]
    assert len(kept) == 1 and kept[0] in store_keys(workspace)
    age(workspace, 41)
    result = run_cli("gc", "-q")
    kinds = {(item["kind"], item["key"]) for item in result.json["deleted"]}
    assert ("kept_object", kept[0]) in kinds
    assert not keys_of(workspace, 41) & store_keys(workspace)
    entry = index_of(workspace).find(41)
    assert entry["kept_objects"][0]["expired_rule"] == "default"
    valid(run_cli)


def test_a_tombstone_without_its_fields_breaks_validate_index(workspace, run_cli):
    set_retention(workspace, {"default": "30d"})
    archive(run_cli, workspace, 51)
    age(workspace, 51)
    assert run_cli("gc", "-q").exit_code == 0
    valid(run_cli)
    path = workspace / "logs" / ".archive-index.json"
    doc = json.loads(path.read_text())
    del doc["archives"][0]["logs"][0]["expired_rule"]
    path.write_text(json.dumps(doc, indent=2))
    result = run_cli("validate-index", "-q")
    assert result.exit_code == 1
    assert [v["rule"] for v in result.json["violations"]] == ["expired"]


def run_gc(workspace, kill: str | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("LOG_ARCHIVER_TEST_GC_KILL", None)
    if kill:
        env["LOG_ARCHIVER_TEST_GC_KILL"] = kill
    return subprocess.run([*script("log-archiver"), "gc", "-q"], cwd=workspace, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("kill", ["marked", "deleted:1", "deleted:5", "batch:1"])
def test_gc_killed_at_any_point_then_rerun_deletes_nothing_twice(workspace, run_cli, kill):
    set_retention(workspace, {"default": "30d"})
    for issue in range(61, 81):  # 80 logs: more than one batch
        archive(run_cli, workspace, issue)
    age(workspace, *range(61, 81))
    due = {item["key"] for item in run_cli("gc", "--dry-run", "-q").json["deleted"]}
    assert len(due) == 80
    killed = run_gc(workspace, kill)
    assert killed.returncode == -9, (killed.returncode, killed.stdout, killed.stderr)
    valid(run_cli)
    present = store_keys(workspace)
    gone_before = due - present
    if kill == "marked":
        assert not gone_before
    else:
        assert gone_before
    marked = [log for entry in index_of(workspace).read()["archives"] for log in entry["logs"]
              if "expiring" in log]
    expired = {log["remote_path"] for entry in index_of(workspace).read()["archives"]
               for log in entry["logs"] if log["upload_status"] == "expired"}
    assert expired <= gone_before  # never a tombstone for an object still there
    assert {log["remote_path"] for log in marked} | expired == due

    rerun = run_gc(workspace)
    assert rerun.returncode == 0, rerun.stdout
    report = json.loads(rerun.stdout)
    deleted = {item["key"] for item in report["deleted"]}
    gone = {item["key"] for item in report["already_gone"]}
    assert deleted == due & present  # each object deleted by exactly one run
    assert gone == gone_before - expired
    assert not due & store_keys(workspace)
    valid(run_cli)
    logs = [log for entry in index_of(workspace).read()["archives"] for log in entry["logs"]]
    assert all(log["upload_status"] == "expired" and "expiring" not in log for log in logs)


def test_a_hold_placed_after_a_killed_gc_keeps_what_is_left(workspace, run_cli):
    set_retention(workspace, {"default": "30d"})
    for issue in (91, 92):
        archive(run_cli, workspace, issue)
    age(workspace, 91, 92, at=OLD)
    assert run_gc(workspace, "marked").returncode == -9
    assert run_cli("hold", "92", "--reason", "audit", "-q").exit_code == 0
    result = run_cli("gc", "-q")
    assert {item["issue_number"] for item in result.json["deleted"]} == {91}
    assert keys_of(workspace, 92) <= store_keys(workspace)
    assert all("expiring" not in log for log in index_of(workspace).find(92)["logs"])
    valid(run_cli)


@pytest.mark.parametrize("held", [False, True])
def test_cleanup_orphans_keeps_the_copies_of_a_held_entrys_logs(workspace, run_cli, held):
    import gzip
    import time

    archive(run_cli, workspace, 95)
    if held:
        assert run_cli("hold", "95", "--reason", "court order", "-q").exit_code == 0
    log = workspace / "logs" / "builds" / "95-build.log"
    log.write_bytes(b"build output\n" * 100)
    copy = log.with_name(".95-build.log.la.gz")
    copy.write_bytes(gzip.compress(log.read_bytes()))
    old = time.time() - 8 * 86_400
    os.utime(copy, (old, old))
    result = run_cli("cleanup-local", "--orphans", "-q")
    assert result.exit_code == 0, result.stdout
    assert copy.exists() == held
    if held:
        assert any("legal hold" in kept["reason"] for kept in result.json["kept"])

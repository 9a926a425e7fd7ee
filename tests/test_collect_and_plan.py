"""Collect, compress and plan through the CLI: what is skipped, where compression starts,
remote paths that survive a later month, and the statuses uploads record."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from log_archiver.util import clock as timeutil
from log_archiver.util.samples import log_text, write_sample_logs

MIB = 1 << 20


def entry_of(workspace, issue):
    doc = json.loads((workspace / "logs/.archive-index.json").read_text())
    return next(e for e in doc["archives"] if e["issue_number"] == issue)


def test_collect_skips_temp_partial_and_lock_files(workspace, run_cli):
    logs = workspace / "logs"
    write_sample_logs(logs, 8)
    leftovers = ["builds/8-build.log.la-123-abcd.tmp", "builds/.8-build.log.99.part",
                 "builds/8-build.log.part", "builds/8-build.lock", "sessions/session-8-x.md.tmp",
                 "debug/8-trace.log.lock"]
    for name in leftovers:
        (logs / name).parent.mkdir(parents=True, exist_ok=True)
        (logs / name).write_bytes(b"not a log")
    result = run_cli("collect-logs", "8")
    assert result.exit_code == 0, result.stdout
    collected = {log["local_path"] for log in result.json["logs"]}
    assert collected == {"sessions/session-8-2025-01-15.md", "sessions/session-8-2025-01-16.md",
                         "builds/8-build.log", "deployments/8-deploy.log"}
    assert not collected & set(leftovers)


@pytest.mark.parametrize("size, compressed", [(MIB, False), (MIB + 1, True)])
def test_compression_threshold_is_strictly_above_one_mib(workspace, run_cli, size, compressed):
    log = workspace / "logs/builds/9-build.log"
    log.parent.mkdir(parents=True)
    log.write_bytes(log_text(size, 3))
    assert log.stat().st_size == size
    result = run_cli("compress-logs", str(log))
    assert result.exit_code == 0, result.stdout
    [stored] = result.json["files"]
    assert stored["compressed"] is compressed and stored["original_size_bytes"] == size
    assert stored["path"].endswith(".gz") is compressed
    plan = run_cli("prepare-upload", "9")
    assert plan.exit_code == 0, plan.stdout
    [record] = plan.json["files"]
    assert record["compressed"] is compressed and record["original_size_bytes"] == size
    assert record["remote_path"].endswith("9-build.log.gz" if compressed else "9-build.log")


def at(monkeypatch, year, month):
    moment = datetime(year, month, 28, 23, 0, 0, tzinfo=UTC)
    monkeypatch.setattr(timeutil, "utc_now", lambda: moment)


def test_a_retry_next_month_keeps_the_remote_paths(workspace, run_cli, monkeypatch):
    write_sample_logs(workspace / "logs", 11)
    at(monkeypatch, 2025, 1)
    first = run_cli("prepare-upload", "11")
    assert first.exit_code == 0, first.stdout
    paths = {r["local_path"]: r["remote_path"] for r in first.json["files"]}
    assert all(p.startswith("archive/logs/2025/01/11/") for p in paths.values())
    at(monkeypatch, 2025, 2)
    again = run_cli("prepare-upload", "11")
    assert {r["local_path"]: r["remote_path"] for r in again.json["files"]} == paths
    retried = run_cli("archive", "11", "--retry")
    assert retried.exit_code == 0, retried.stdout
    entry = entry_of(workspace, 11)
    assert {log["local_path"]: log["remote_path"] for log in entry["logs"]} == paths
    store = workspace.parent / "store"
    assert all((store / key).is_file() for key in paths.values())
    assert not (store / "archive/logs/2025/02").exists()


def test_update_file_status_uploaded_records_the_cloud_url(workspace, run_cli):
    write_sample_logs(workspace / "logs", 12)
    assert run_cli("prepare-upload", "12").exit_code == 0
    [planned] = [log for log in entry_of(workspace, 12)["logs"]
                 if log["local_path"] == "builds/12-build.log"]
    url = f"file://{workspace.parent / 'store'}/{planned['remote_path']}"
    result = run_cli("update-file-status", "12", "builds/12-build.log", "uploaded", url)
    assert result.exit_code == 0, result.stdout
    assert result.json["previous_status"] == "pending"
    assert result.json["upload_status"] == "uploaded" and result.json["cloud_url"] == url
    [log] = [log for log in entry_of(workspace, 12)["logs"]
             if log["local_path"] == "builds/12-build.log"]
    assert log["upload_status"] == "uploaded" and log["cloud_url"] == url
    assert log["upload_timestamp"] and log["archived"] == log["upload_timestamp"]
    others = [log for log in entry_of(workspace, 12)["logs"]
              if log["local_path"] != "builds/12-build.log"]
    assert {log["upload_status"] for log in others} == {"pending"}


def test_update_file_status_refuses_a_cloud_url_the_store_does_not_give(workspace, run_cli):
    """A hand-set URL elsewhere would be published in the comment: it is refused."""
    write_sample_logs(workspace / "logs", 12)
    assert run_cli("prepare-upload", "12").exit_code == 0
    before = (workspace / "logs/.archive-index.json").read_bytes()
    result = run_cli("update-file-status", "12", "builds/12-build.log", "uploaded",
                     "https://elsewhere.example/x.log")
    assert result.exit_code == 2
    [error] = result.json["errors"]
    assert "https://elsewhere.example/x.log" in error["message"] and "CLOUD_URL" in error["hint"]
    assert (workspace / "logs/.archive-index.json").read_bytes() == before
    derived = run_cli("update-file-status", "12", "builds/12-build.log", "uploaded")
    assert derived.exit_code == 0
    assert derived.json["cloud_url"].startswith(f"file://{workspace.parent / 'store'}/")


def test_file_manager_upload_records_each_files_status(workspace, run_cli, tmp_path):
    write_sample_logs(workspace / "logs", 13)
    plan = run_cli("prepare-upload", "13")
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(plan.stdout)
    assert {log["upload_status"] for log in entry_of(workspace, 13)["logs"]} == {"pending"}
    result = run_cli("file-manager", "upload", str(plan_file))
    assert result.exit_code == 0, result.stdout
    logs = entry_of(workspace, 13)["logs"]
    assert len(logs) == 4
    for log in logs:
        assert log["upload_status"] == "verified" and log["upload_attempt"] == 1
        assert log["upload_timestamp"] is not None and log["archived"] is not None
        assert log["cloud_url"].startswith("file://") and log["last_error"] is None
    assert sorted(result.json["verified"]) == sorted(log["local_path"] for log in logs)


def test_a_temp_name_with_an_impossible_pid_is_not_stale_and_not_a_crash(tmp_path):
    from log_archiver.util.fsutil import remove_stale_temps_in, stale_temp

    name = "a.log.la-99999999999999999999-ab.tmp"
    (tmp_path / name).write_text("x")
    assert stale_temp(name) is False
    assert remove_stale_temps_in(tmp_path) == [] and (tmp_path / name).exists()


def test_update_file_status_refuses_a_bare_name_two_folders_share(workspace, run_cli):
    for name in ("builds/12-x.log", "debug/12-x.log"):
        path = workspace / "logs" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(name.encode())
    assert run_cli("prepare-upload", "12").exit_code == 0
    before = (workspace / "logs/.archive-index.json").read_bytes()
    refused = run_cli("update-file-status", "12", "12-x.log", "failed")
    assert refused.exit_code == 2
    assert "builds/12-x.log" in refused.json["errors"][0]["hint"]
    assert "debug/12-x.log" in refused.json["errors"][0]["hint"]
    assert (workspace / "logs/.archive-index.json").read_bytes() == before
    assert run_cli("update-file-status", "12", "debug/12-x.log", "failed").exit_code == 0

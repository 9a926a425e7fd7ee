"""The whole workflow on the local store, through the CLI."""

import gzip
import hashlib
import json
import os

import pytest

from log_archiver.util.samples import log_text, write_sample_logs


def sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def issue_logs(workspace):
    files = write_sample_logs(workspace / "logs", 123)
    others = [*write_sample_logs(workspace / "logs", 12, seed=1),
              *write_sample_logs(workspace / "logs", 1234, seed=2)]
    workspace.joinpath("other-issues.txt").write_text("\n".join(map(str, others)))
    return {f.relative_to(workspace / "logs").as_posix(): f.read_bytes() for f in files}


def store_root(workspace):
    return workspace.parent / "store"


def test_archive_stores_every_log_and_frees_disk(workspace, issue_logs, run_cli):
    result = run_cli("archive", "123")
    assert result.exit_code == 0, result.stderr
    doc = result.json
    assert doc["status"] == "ok" and doc["collected"] == 4
    index = json.loads((workspace / "logs/.archive-index.json").read_text())
    [entry] = index["archives"]
    assert entry["issue_number"] == 123 and entry["upload_complete"] and entry["total_logs"] == 4
    for log in entry["logs"]:
        assert log["upload_status"] == "cleaned"
        stored = store_root(workspace) / log["remote_path"]
        data = stored.read_bytes()
        assert f"sha256:{hashlib.sha256(data).hexdigest()}" == log["checksum"]
        original = gzip.decompress(data) if log["compressed"] else data
        assert original == issue_logs[log["local_path"]]
        assert not (workspace / "logs" / log["local_path"]).exists()
    # the store holds the archived objects and, apart from them, only its own folder
    assert set(os.listdir(store_root(workspace))) == {"archive", ".log-archiver"}
    stored = [p for p in (store_root(workspace) / "archive").rglob("*") if p.is_file()]
    assert len(stored) == 4
    # the logs of issues 12 and 1234 are untouched
    others = (workspace / "other-issues.txt").read_text().split("\n")
    assert len(others) == 8 and all(os.path.exists(p) for p in others)
    assert "Logs archived for issue #123" in result.stderr
    assert "📦" in doc["comment"]["body"] and doc["comment"]["posted"] is False
    assert doc["commit"]["status"] == "noop"  # not a git repository


def test_second_run_is_a_noop_and_changes_nothing(workspace, issue_logs, run_cli):
    assert run_cli("archive", "123").exit_code == 0
    index = (workspace / "logs/.archive-index.json").read_bytes()
    again = run_cli("archive", "123")
    assert again.exit_code == 0 and again.json["status"] == "noop"
    assert (workspace / "logs/.archive-index.json").read_bytes() == index


def test_a_rerun_archives_logs_that_appeared_later(workspace, issue_logs, run_cli, tmp_path):
    assert run_cli("archive", "123").exit_code == 0
    stored = {p: p.stat().st_mtime_ns for p in (tmp_path / "store").rglob("*") if p.is_file()}
    (workspace / "logs/debug").mkdir()
    (workspace / "logs/debug/123-trace.log").write_bytes(log_text(5000, 9))
    rerun = run_cli("archive", "123")
    assert rerun.exit_code == 0 and rerun.json["status"] == "ok", rerun.stdout
    assert rerun.json["new_logs"] == ["debug/123-trace.log"]
    assert rerun.json["upload"]["verified"] == ["debug/123-trace.log"]
    entry = json.loads((workspace / "logs/.archive-index.json").read_text())["archives"][0]
    assert entry["total_logs"] == 5 and entry["upload_complete"]
    assert not (workspace / "logs/debug/123-trace.log").exists()
    for path, mtime in stored.items():  # what was stored before is left alone
        assert path.stat().st_mtime_ns == mtime
    again = run_cli("archive", "123")
    assert again.json["status"] == "noop" and again.json["new_logs"] == []


def test_force_re_archives_everything_still_on_disk(workspace, issue_logs, run_cli):
    assert run_cli("archive", "123", "--no-commit").exit_code == 0
    (workspace / "logs/debug").mkdir()
    (workspace / "logs/debug/123-trace.log").write_bytes(log_text(5000, 9))
    forced = run_cli("archive", "123", "--force", "--reason", "retention")
    assert forced.exit_code == 0 and forced.json["status"] == "ok", forced.stdout
    assert forced.json["upload"]["verified"] == ["debug/123-trace.log"]
    entry = json.loads((workspace / "logs/.archive-index.json").read_text())["archives"][0]
    assert entry["total_logs"] == 5 and entry["archive_reason"] == "retention"
    assert {log["upload_status"] for log in entry["logs"]} == {"cleaned"}
    assert not (workspace / "logs/debug/123-trace.log").exists()


def test_a_log_that_cannot_be_compressed_keeps_the_entry_partial(workspace, run_cli):
    big = workspace / "logs/sessions/session-7-a.md"
    big.parent.mkdir(parents=True)
    big.write_bytes(log_text(2_000_000, 3))
    (workspace / "logs/sessions/.session-7-a.md.la.gz").mkdir()  # the copy cannot land
    first = run_cli("archive", "7", "--no-commit")
    assert first.exit_code == 3 and first.json["status"] == "partial", first.stdout
    assert first.json["failed_files"] == ["sessions/session-7-a.md"]
    assert ".session-7-a.md.la.gz" in first.json["errors"][0]["message"]
    entry = json.loads((workspace / "logs/.archive-index.json").read_text())["archives"][0]
    assert entry["partial_archive"] and entry["partial_reason"].startswith("not prepared: 1")
    assert big.exists()
    (workspace / "logs/sessions/.session-7-a.md.la.gz").rmdir()  # the cause is fixed
    retried = run_cli("archive", "7", "--retry", "--no-commit")
    assert retried.exit_code == 0 and retried.json["status"] == "ok", retried.stdout
    entry = json.loads((workspace / "logs/.archive-index.json").read_text())["archives"][0]
    assert not entry["partial_archive"] and entry["partial_reason"] is None
    assert entry["total_logs"] == 1 and not big.exists()


def test_pr_needs_the_pr_merged_reason(workspace, issue_logs, run_cli):
    result = run_cli("archive", "123", "--pr", "9")
    assert result.exit_code == 2 and "--reason pr_merged" in result.json["errors"][0]["message"]
    assert not (workspace / "logs/.archive-index.json").exists()


def test_no_logs_makes_an_empty_entry_when_asked(workspace, run_cli):
    result = run_cli("archive", "77", "--allow-empty")
    assert result.exit_code == 0, result.stdout
    entry = json.loads((workspace / "logs/.archive-index.json").read_text())["archives"][0]
    assert entry["issue_number"] == 77 and entry["logs"] == [] and entry["upload_complete"]
    assert result.json["message"].startswith("No logs found for issue #77")


@pytest.mark.parametrize("bad", ["abc", "0", "-1", "1.5", "../x", "12;rm", "", "99999999999"])
def test_bad_issue_numbers_are_usage_errors_and_touch_nothing(workspace, issue_logs, run_cli,
                                                              bad):
    before = sorted(p.as_posix() for p in workspace.rglob("*"))
    result = run_cli("archive", bad)
    assert result.exit_code == 2
    assert result.json["status"] == "error" and result.json["errors"][0]["type"] == "usage"
    assert repr(bad) in result.json["errors"][0]["message"]
    assert sorted(p.as_posix() for p in workspace.rglob("*")) == before
    assert not store_root(workspace).exists()


@pytest.mark.parametrize("content", [b"{not json", b'{"schema_version": 1, "archives": 3}'])
def test_corrupt_index_is_never_overwritten(workspace, issue_logs, run_cli, content):
    index = workspace / "logs/.archive-index.json"
    index.write_bytes(content)
    result = run_cli("archive", "123")
    assert result.exit_code == 1 and result.json["status"] == "error"
    assert result.json["errors"][0]["type"] == "index_corrupt"
    assert str(index) in result.json["errors"][0]["message"]
    assert index.read_bytes() == content
    for name, data in issue_logs.items():
        assert (workspace / "logs" / name).read_bytes() == data


def test_unwritable_store_keeps_every_log(workspace, issue_logs, run_cli, tmp_path):
    store = tmp_path / "store-to-repair"
    store.write_text("a file where the store folder should be")  # unwritable even for root
    result = run_cli("archive", "123", "--storage", f"file://{store}")
    assert result.exit_code == 3, result.stdout
    doc = result.json
    assert doc["status"] == "partial" and len(doc["failed_files"]) == 4
    for name, data in issue_logs.items():
        assert (workspace / "logs" / name).read_bytes() == data
    entry = json.loads((workspace / "logs/.archive-index.json").read_text())["archives"][0]
    assert entry["partial_archive"] and not entry["upload_complete"]
    assert {log["upload_status"] for log in entry["logs"]} == {"failed"}
    assert all(log["last_error"] and log["upload_attempt"] >= 1 for log in entry["logs"])
    assert not [p for p in (workspace / "logs").rglob("*") if ".la-" in p.name]

    store.unlink()  # the store is repaired: the same URL now names a folder
    store.mkdir()
    retried = run_cli("archive", "123", "--retry", "--storage", f"file://{store}")
    assert retried.exit_code == 0, retried.stdout
    entry = json.loads((workspace / "logs/.archive-index.json").read_text())["archives"][0]
    assert entry["upload_complete"] and not entry["partial_archive"]
    for log in entry["logs"]:
        assert log["upload_status"] == "cleaned"
        stored = (store / log["remote_path"]).read_bytes()
        original = gzip.decompress(stored) if log["compressed"] else stored
        assert original == issue_logs[log["local_path"]]
    assert not any((workspace / "logs" / name).exists() for name in issue_logs)


def test_unwritable_logs_dir_is_a_clear_error(workspace, run_cli, tmp_path):
    result = run_cli("archive", "5", "--logs-dir", str(tmp_path / "missing"))
    assert result.exit_code == 2
    assert str(tmp_path / "missing") in result.json["errors"][0]["message"]


def test_dry_run_changes_nothing(workspace, issue_logs, run_cli):
    before = {p: p.read_bytes() for p in workspace.rglob("*") if p.is_file()}
    result = run_cli("archive", "123", "--dry-run")
    assert result.exit_code == 0 and result.json["dry_run"] is True
    assert len(result.json["plan"]) == 4
    assert {p: p.read_bytes() for p in workspace.rglob("*") if p.is_file()} == before
    assert not store_root(workspace).exists()


def test_step_scripts_do_the_same_job(workspace, issue_logs, run_cli, tmp_path):
    collected = run_cli("collect-logs", "123").json
    assert sorted(log["local_path"] for log in collected["logs"]) == sorted(issue_logs)
    plan = run_cli("prepare-upload", "123")
    assert plan.exit_code == 0 and len(plan.json["files"]) == 4
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(plan.stdout)
    uploaded = run_cli("file-manager", "upload", str(plan_file))
    assert uploaded.exit_code == 0 and len(uploaded.json["verified"]) == 4
    again = run_cli("file-manager", "upload", str(plan_file))
    assert again.json["status"] == "noop"
    cleaned = run_cli("cleanup-local", "123")
    # the logs' own bytes; the compressed copies removed are counted apart
    assert cleaned.exit_code == 0 and cleaned.json["freed_bytes"] == sum(map(len,
                                                                           issue_logs.values()))
    assert cleaned.json["copies_freed_bytes"] > 0
    assert run_cli("cleanup-local", "123").json["status"] == "noop"


def test_cleanup_keeps_a_log_that_grew_after_archiving(workspace, issue_logs, run_cli, tmp_path):
    plan = run_cli("prepare-upload", "123")
    (tmp_path / "plan.json").write_text(plan.stdout)
    run_cli("file-manager", "upload", str(tmp_path / "plan.json"))
    grown = workspace / "logs/sessions/session-123-2025-01-16.md"
    grown.write_bytes(grown.read_bytes() + b"one more line\n")
    cleaned = run_cli("cleanup-local", "123").json
    assert grown.exists()
    assert {k["local_path"] for k in cleaned["kept"]} == {"sessions/session-123-2025-01-16.md"}


def test_recovery_tools(workspace, issue_logs, run_cli):
    run_cli("prepare-upload", "123")
    listed = run_cli("retry-failed-uploads", "123").json
    assert len(listed["files"]) == 4 and all(f["local_exists"] for f in listed["files"])
    marked = run_cli("mark-partial-archive", "123", "index update failed").json
    assert marked["partial_reason"] == "index update failed"
    status = run_cli("update-file-status", "123", "builds/123-build.log", "failed",
                     "--error", "boom")
    assert status.exit_code == 0 and status.json["previous_status"] == "pending"
    refused = run_cli("update-file-status", "123", "nope.log", "failed")
    assert refused.exit_code == 2 and "nope.log" in refused.json["errors"][0]["message"]
    done = run_cli("retry-failed-uploads", "123", "--execute")
    assert done.exit_code == 0 and len(done.json["verified"]) == 4
    entry = json.loads((workspace / "logs/.archive-index.json").read_text())["archives"][0]
    assert entry["upload_complete"] and entry["partial_archive"]  # the reason still stands
    assert run_cli("validate-index").json["status"] == "ok"


def test_zstd_round_trip(workspace, issue_logs, run_cli, monkeypatch):
    monkeypatch.setenv("LOG_ARCHIVER_COMPRESSION", "zstd")
    assert run_cli("archive", "123").exit_code == 0
    import zstandard

    entry = json.loads((workspace / "logs/.archive-index.json").read_text())["archives"][0]
    packed = [log for log in entry["logs"] if log["compressed"]]
    assert packed and packed[0]["remote_path"].endswith(".zst")
    data = (store_root(workspace) / packed[0]["remote_path"]).read_bytes()
    assert zstandard.ZstdDecompressor().decompressobj().decompress(data) == issue_logs[
        packed[0]["local_path"]]


def test_quiet_silences_a_usage_error_too(workspace, run_cli):
    loud = run_cli("archive", "abc")
    quiet = run_cli("archive", "abc", "--quiet")
    assert loud.exit_code == quiet.exit_code == 2
    assert "abc" in loud.stderr and quiet.stderr == ""
    assert quiet.json["errors"][0]["type"] == "usage"


def test_summary_counts_logs_stored_by_earlier_steps(workspace, issue_logs, run_cli, tmp_path):
    plan = tmp_path / "plan.json"
    plan.write_text(run_cli("prepare-upload", "123").stdout)
    assert run_cli("file-manager", "upload", plan).exit_code == 0
    finished = run_cli("archive", "123")
    assert finished.exit_code == 0 and finished.json["upload"]["verified"] == []
    # this run uploaded none; the earlier upload step stored them all
    assert "Uploaded: 0 logs" in finished.stderr
    assert f"Already stored: {len(issue_logs)} logs" in finished.stderr


def test_a_usage_error_of_a_subcommand_names_its_command(workspace, run_cli):
    result = run_cli("file-manager", "upload")  # PLAN missing
    assert result.exit_code == 2 and result.json["command"] == "file-manager"


def test_another_store_is_refused_unless_the_archive_moves(workspace, issue_logs, run_cli,
                                                           tmp_path):
    first = tmp_path / "first"
    first.write_text("a file: this store fails")
    assert run_cli("archive", "123", "--storage", f"file://{first}").exit_code == 3
    other = tmp_path / "other"
    refused = run_cli("archive", "123", "--retry", "--storage", f"file://{other}")
    assert refused.exit_code == 2 and str(first) in refused.json["errors"][0]["message"]
    assert not other.exists()
    moved = run_cli("archive", "123", "--force", "--storage", f"file://{other}")
    assert moved.exit_code == 0, moved.stdout
    entry = json.loads((workspace / "logs/.archive-index.json").read_text())["archives"][0]
    assert entry["storage_url"] == f"file://{other}" and entry["upload_complete"]
    assert all((other / log["remote_path"]).is_file() for log in entry["logs"])
    # now its logs are cleaned: they live only in `other`, so the entry cannot move again
    before = (workspace / "logs/.archive-index.json").read_bytes()
    stuck = run_cli("archive", "123", "--force", "--storage", f"file://{tmp_path / 'third'}")
    assert stuck.exit_code == 2 and "exist only in the old store" in stuck.json["errors"][0][
        "message"]
    assert (workspace / "logs/.archive-index.json").read_bytes() == before


def test_an_unknown_command_is_a_usage_error_of_log_archiver(workspace, run_cli):
    for args in (["bogus"], []):
        result = run_cli(*args)
        assert result.exit_code == 2 and result.json["command"] == "log-archiver", args

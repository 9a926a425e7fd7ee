"""What the archive must never do: destroy the only copy of bytes, hide a vanished object,
give two logs one key, or leave an entry stuck in partial with no way out."""

from __future__ import annotations

import json

from log_archiver.util.samples import log_text, write_sample_logs


def index_of(workspace) -> dict:
    return json.loads((workspace / "logs/.archive-index.json").read_text())


def entry_of(workspace, issue: int) -> dict:
    return next(e for e in index_of(workspace)["archives"] if e["issue_number"] == issue)


def record(workspace, issue: int, local_path: str) -> dict:
    return next(log for log in entry_of(workspace, issue)["logs"]
                if log["local_path"] == local_path)


def store_root(workspace):
    return workspace.parent / "store"


# -- 4: --force never replaces a better copy --------------------------------------------


def test_a_log_changed_after_archiving_is_reported_and_force_keeps_both(workspace, run_cli):
    logs = workspace / "logs"
    write_sample_logs(logs, 40)
    build = logs / "builds/40-build.log"
    original = build.read_bytes()
    first = run_cli("archive", "40", "--retry")
    assert first.exit_code == 0
    stored_first = record(workspace, 40, "builds/40-build.log")
    # the log is written again, shorter (a clone with an older copy, a rotated file)
    build.write_bytes(original[: len(original) // 3])
    plain = run_cli("archive", "40")
    assert plain.exit_code == 3, plain.stdout  # not a silent noop
    assert plain.json["changed_logs"] == ["builds/40-build.log"]
    assert "--force" in plain.json["hint"]
    assert any("changed since they were archived" in w for w in plain.json["warnings"])
    assert (store_root(workspace) / stored_first["remote_path"]).read_bytes() == original
    forced = run_cli("archive", "40", "--force")
    assert forced.exit_code == 0, forced.stdout
    now = record(workspace, 40, "builds/40-build.log")
    assert now["remote_path"] != stored_first["remote_path"]
    assert (store_root(workspace) / now["remote_path"]).read_bytes() == original[
        : len(original) // 3]
    # the fuller stored copy is still there, and the entry says where
    assert (store_root(workspace) / stored_first["remote_path"]).read_bytes() == original
    [kept] = entry_of(workspace, 40)["kept_objects"]
    assert kept["remote_path"] == stored_first["remote_path"]
    assert kept["checksum"] == stored_first["checksum"]
    assert kept["reason"] == "replaced_by_newer_version"
    assert run_cli("validate-index").exit_code == 0


def test_a_log_recreated_after_cleanup_is_not_a_silent_noop(workspace, run_cli):
    logs = workspace / "logs"
    write_sample_logs(logs, 41)
    assert run_cli("archive", "41").exit_code == 0
    (logs / "builds/41-build.log").write_bytes(b"a new build log under the old name\n")
    again = run_cli("archive", "41")
    assert again.exit_code == 3
    assert again.json["changed_logs"] == ["builds/41-build.log"]
    assert (logs / "builds/41-build.log").exists()


# -- 5: two logs never share a key ------------------------------------------------------


def test_remote_keys_are_unique_even_when_the_type_prefix_clashes(workspace, run_cli):
    logs = workspace / "logs"
    for name in ("sessions/debug-123-x.log", "debug/123-x.log", "builds/123-x.log",
                 "sessions/build-123-x.log"):
        path = logs / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(log_text(5_000, seed=len(name)) + name.encode())
    result = run_cli("archive", "123")
    assert result.exit_code == 0, result.stdout
    entry = entry_of(workspace, 123)
    keys = [log["remote_path"] for log in entry["logs"]]
    assert len(entry["logs"]) == 4 and len(set(keys)) == 4
    for log in entry["logs"]:  # each key holds its own log's bytes
        assert (store_root(workspace) / log["remote_path"]).read_bytes().endswith(
            log["local_path"].encode())
    assert run_cli("validate-index").exit_code == 0


# -- 8: a vanished object is never hidden -----------------------------------------------


def test_a_vanished_object_goes_back_to_upload_while_its_log_is_on_disk(workspace, run_cli):
    logs = workspace / "logs"
    write_sample_logs(logs, 42)
    assert run_cli("prepare-upload", "42").exit_code == 0
    assert run_cli("retry-failed-uploads", "42", "--execute").exit_code == 0
    build = record(workspace, 42, "builds/42-build.log")
    assert build["upload_status"] == "verified"
    (store_root(workspace) / build["remote_path"]).unlink()
    cleaned = run_cli("cleanup-local", "42")
    assert cleaned.exit_code == 3, cleaned.stdout
    assert cleaned.json["requeued"] == ["builds/42-build.log"]
    assert (logs / "builds/42-build.log").exists()
    assert record(workspace, 42, "builds/42-build.log")["upload_status"] == "pending"
    listed = run_cli("retry-failed-uploads", "42").json
    assert [f["local_path"] for f in listed["files"]] == ["builds/42-build.log"]
    done = run_cli("archive", "42")
    assert done.exit_code == 0, done.stdout
    assert (store_root(workspace) / build["remote_path"]).exists()
    assert record(workspace, 42, "builds/42-build.log")["upload_status"] == "cleaned"


def test_a_vanished_object_without_a_local_copy_is_reported_lost(workspace, run_cli):
    logs = workspace / "logs"
    write_sample_logs(logs, 43)
    assert run_cli("prepare-upload", "43").exit_code == 0
    assert run_cli("retry-failed-uploads", "43", "--execute").exit_code == 0
    build = record(workspace, 43, "builds/43-build.log")
    (store_root(workspace) / build["remote_path"]).unlink()
    (logs / "builds/43-build.log").unlink()
    result = run_cli("cleanup-local", "43")
    assert result.exit_code == 1
    [lost] = result.json["lost"]
    assert lost["local_path"] == "builds/43-build.log"
    assert any("builds/43-build.log is lost" in e["message"] for e in result.json["errors"])
    now = record(workspace, 43, "builds/43-build.log")
    assert now["upload_status"] == "lost" and now["last_error"].startswith("lost:")
    entry = entry_of(workspace, 43)
    assert entry["partial_archive"] and not entry["upload_complete"]
    again = run_cli("archive", "43")
    assert again.exit_code == 3  # never ok while a log is lost
    assert run_cli("validate-index").exit_code == 0


# -- 10: a partial mark can be cleared ---------------------------------------------------


def test_a_partial_mark_is_named_and_can_be_cleared(workspace, run_cli):
    write_sample_logs(workspace / "logs", 44)
    assert run_cli("archive", "44").exit_code == 0
    assert run_cli("mark-partial-archive", "44", "index update failed").exit_code == 0
    stuck = run_cli("archive", "44", "--retry")
    assert stuck.exit_code == 3
    assert stuck.json["partial_reason"] == "index update failed"
    assert "mark-partial-archive 44 --clear" in stuck.json["hint"]
    cleared = run_cli("mark-partial-archive", "44", "--clear")
    assert cleared.exit_code == 0
    assert cleared.json["previous_reason"] == "index update failed"
    assert entry_of(workspace, 44)["partial_archive"] is False
    assert run_cli("archive", "44", "--retry").exit_code == 0
    assert run_cli("mark-partial-archive", "44").exit_code == 2  # neither REASON nor --clear


def test_a_log_written_to_while_cleanup_checks_it_is_kept(workspace, run_cli, monkeypatch):
    """A session still being written: lines appended between the hash and the delete."""
    import log_archiver.archive.cleanup as cleanup

    logs = workspace / "logs"
    write_sample_logs(logs, 45)
    assert run_cli("prepare-upload", "45").exit_code == 0
    assert run_cli("retry-failed-uploads", "45", "--execute").exit_code == 0
    session = logs / "sessions/session-45-2025-01-16.md"
    verify = cleanup.verify_record

    def verify_while_the_session_grows(store, log, *args, **kwargs):
        if log["local_path"] == "sessions/session-45-2025-01-16.md":
            with open(session, "ab") as handle:
                handle.write(b"a line written while cleanup looked\n")
        return verify(store, log, *args, **kwargs)

    monkeypatch.setattr(cleanup, "verify_record", verify_while_the_session_grows)
    result = run_cli("cleanup-local", "45")
    assert "sessions/session-45-2025-01-16.md" not in result.json["deleted"]
    assert session.read_bytes().endswith(b"a line written while cleanup looked\n")
    assert record(workspace, 45, "sessions/session-45-2025-01-16.md")["upload_status"] \
        == "verified"
    assert len(result.json["deleted"]) >= 3  # the others went as usual

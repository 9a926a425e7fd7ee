"""Recovery commands never let an index that lies delete a log, and update-index keeps the
output contract on any metadata."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import Result, check_output, script
from log_archiver.config import load_config
from log_archiver.model.records import recompute_entry
from log_archiver.repository import Repository
from log_archiver.util.samples import write_sample_logs
from log_archiver.util.schemas import violations


def index_bytes(workspace):
    path = workspace / "logs/.archive-index.json"
    return path.read_bytes() if path.exists() else None


def entry_of(workspace, issue):
    doc = json.loads((workspace / "logs/.archive-index.json").read_text())
    return next(e for e in doc["archives"] if e["issue_number"] == issue)


def local_files(workspace):
    return sorted(p.relative_to(workspace / "logs").as_posix()
                  for p in (workspace / "logs").rglob("*")
                  if p.is_file() and not p.name.startswith(".archive-index")
                  and ".archive-audit" not in p.parts)  # the trail grows by design


def store_files(workspace):
    root = workspace.parent / "store"
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*")
                  if p.is_file() and ".log-archiver" not in p.parts)


@pytest.fixture
def planned(workspace, run_cli):
    """Issue 5's logs, prepared (every record pending); the plan's files list."""
    write_sample_logs(workspace / "logs", 5)
    result = run_cli("prepare-upload", "5")
    assert result.exit_code == 0, result.stdout
    return result.json["files"]


def in_folder_of(files, issue):
    """The records with their objects in ``issue``'s folder, as that issue's own would be."""
    return [{**record, "remote_path": record["remote_path"].replace("/5/", f"/{issue}/")}
            for record in files]


def claimed(files, status):
    return [{**record, "upload_status": status} for record in files]


# -- 1. cleanup trusts the store, not the index ----------------------------------------

def test_update_index_claiming_verified_with_an_empty_store_records_pending(
        workspace, planned, run_cli):
    before = local_files(workspace)
    metadata = workspace / "m.json"
    metadata.write_text(json.dumps(claimed(planned, "verified")))
    result = run_cli("update-index", "5", str(metadata))
    assert result.exit_code == 3, result.stdout
    doc = result.json
    assert doc["status"] == "partial" and doc["action"] == "replaced"
    assert {d["local_path"] for d in doc["downgraded"]} == {r["local_path"] for r in planned}
    assert all("missing" in d["reason"] for d in doc["downgraded"])
    assert all(e["type"] == "not_stored" for e in doc["errors"])
    assert {log["upload_status"] for log in entry_of(workspace, 5)["logs"]} == {"pending"}
    cleaned = run_cli("cleanup-local", "5")
    assert cleaned.json["deleted"] == [] and local_files(workspace) == before


def test_cleanup_verifies_against_the_store_whatever_the_index_says(workspace, planned,
                                                                    run_cli):
    """An index edited by hand (or merged) to say verified: nothing stored, nothing goes."""
    before = local_files(workspace)
    path = workspace / "logs/.archive-index.json"
    doc = json.loads(path.read_text())
    for log in doc["archives"][0]["logs"]:
        log["upload_status"] = "verified"
    recompute_entry(doc["archives"][0])  # a consistent edit: validate-index passes it
    path.write_text(json.dumps(doc, indent=2))
    result = run_cli("cleanup-local", "5")
    assert result.json["deleted"] == [], result.stdout
    assert local_files(workspace) == before and store_files(workspace) == []
    reasons = [kept["reason"] for kept in result.json["kept"]]
    assert len(reasons) == len(doc["archives"][0]["logs"]), result.stdout
    assert all("stored copy not verified" in reason for reason in reasons), reasons
    # once really stored, the same cleanup frees the disk
    for log in doc["archives"][0]["logs"]:
        log["upload_status"] = "pending"
    recompute_entry(doc["archives"][0])
    path.write_text(json.dumps(doc, indent=2))
    assert run_cli("retry-failed-uploads", "5", "--execute").exit_code == 0
    done = run_cli("cleanup-local", "5")
    assert done.exit_code == 0 and len(done.json["deleted"]) >= 4
    assert {log["upload_status"] for log in entry_of(workspace, 5)["logs"]} == {"cleaned"}


def test_cleanup_without_a_store_deletes_nothing(workspace, planned):
    from log_archiver.archive.cleanup import cleanup_local
    from log_archiver.index.file import ArchiveIndex

    index = ArchiveIndex(workspace / "logs/.archive-index.json")
    with index.transaction() as txn:
        for log in txn.edit(5)["logs"]:
            log["upload_status"] = "verified"
    before = local_files(workspace)
    report = cleanup_local(Repository(load_config()), 5, verify_with_store=False)
    assert report.deleted == [] and local_files(workspace) == before
    assert len(report.kept) == len(index.find(5)["logs"]) > 0
    assert all("no store" in kept["reason"] for kept in report.kept)


def test_update_index_keeps_claims_the_store_confirms(workspace, planned, run_cli):
    assert run_cli("retry-failed-uploads", "5", "--execute").exit_code == 0
    metadata = workspace / "m.json"
    metadata.write_text(json.dumps(claimed(planned, "uploaded")))
    result = run_cli("update-index", "5", str(metadata))
    assert result.exit_code == 0, result.stdout
    assert result.json["downgraded"] == [] and result.json["status"] == "ok"
    logs = entry_of(workspace, 5)["logs"]
    assert {log["upload_status"] for log in logs} == {"uploaded"}
    assert all(log["cloud_url"].startswith("file://") for log in logs)


# -- 2. update-index input -------------------------------------------------------------

def test_update_index_from_a_file_and_from_stdin(workspace, planned, run_cli):
    metadata = workspace / "m.json"
    metadata.write_text(json.dumps(planned))
    from_file = run_cli("update-index", "5", str(metadata))
    assert from_file.exit_code == 0, from_file.stdout
    assert from_file.json["action"] == "replaced" and from_file.json["total_logs"] == 4
    assert [log["local_path"] for log in entry_of(workspace, 5)["logs"]] == \
        sorted(r["local_path"] for r in planned)
    done = subprocess.run([*script("update-index"), "7", "-"], cwd=workspace, text=True,
                          input=json.dumps({"logs": in_folder_of(planned, 7),
                                            "issue_number": "7"}),
                          capture_output=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    from_stdin = check_output(Result(done.returncode, done.stdout, done.stderr))
    assert from_stdin["action"] == "created" and from_stdin["issue_number"] == 7
    assert entry_of(workspace, 7)["total_logs"] == 4


def test_update_index_accepts_the_spec_shaped_entry(workspace, run_cli):
    logs = workspace / "logs"
    [session, *_] = write_sample_logs(logs, 123)
    store = workspace.parent / "store"
    key = "archive/logs/2025/01/123/session-123-2025-01-15.md"
    (store / key).parent.mkdir(parents=True)
    (store / key).write_bytes(session.read_bytes())
    import hashlib

    metadata = {
        "issue_number": "123",
        "issue_url": "https://github.com/org/repo/issues/123",
        "issue_title": "Implement user authentication",
        "archived_at": "2025-01-15T14:00:00Z",
        "archive_reason": "issue_closed",
        "logs": [{
            "type": "session",
            "filename": "session-123-2025-01-15.md",
            "local_path": str(session),
            "cloud_url": f"file://{store}/{key}",
            "public_url": None,
            "size_bytes": session.stat().st_size,
            "compressed": False,
            "checksum": "sha256:" + hashlib.sha256(session.read_bytes()).hexdigest(),
            "created": "2025-01-15T09:00:00Z",
            "archived": "2025-01-15T14:00:00Z",
        }],
        "total_size_bytes": 173600,
        "total_logs": 3,
        "compression_ratio": 0.35,
    }
    path = workspace / "spec.json"
    path.write_text(json.dumps(metadata))
    result = run_cli("update-index", "123", str(path))
    assert result.exit_code == 0, result.stdout
    entry = entry_of(workspace, 123)
    [log] = entry["logs"]
    assert log["local_path"] == "sessions/session-123-2025-01-15.md"
    assert log["stored_path"] == log["local_path"] and log["remote_path"] == key
    assert log["original_size_bytes"] == log["size_bytes"] == session.stat().st_size
    assert log["original_checksum"] == log["checksum"] and log["compression"] is None
    assert log["upload_status"] == "uploaded"  # a cloud URL is a claim; the store confirmed it
    assert entry["total_logs"] == 1 and entry["archive_reason"] == "issue_closed"
    assert entry["total_size_bytes"] == session.stat().st_size  # derived, not copied


@pytest.mark.parametrize("mutate, paths", [
    (lambda r: r.pop("original_size_bytes") and r.update(compressed=True, compression=None),
     ["$[0].original_size_bytes", "$[0].compression"]),
    (lambda r: r.update(size_bytes="big", type="video"), ["$[0].size_bytes", "$[0].type"]),
    (lambda r: r.update(local_path="/etc/passwd"), ["$[0].local_path"]),
])
def test_bad_metadata_is_a_usage_error_naming_every_path(workspace, planned, run_cli, mutate,
                                                          paths):
    before = index_bytes(workspace)
    records = [dict(r) for r in planned]
    mutate(records[0])
    path = workspace / "bad.json"
    path.write_text(json.dumps(records))
    result = run_cli("update-index", "5", str(path))
    assert result.exit_code == 2, result.stdout
    doc = result.json
    assert not violations("output/update-index.json", doc)
    [error] = doc["errors"]
    assert error["type"] == "usage"
    for json_path in paths:
        assert json_path in error["message"], error["message"]
    assert "validate-index" not in error["hint"]
    assert index_bytes(workspace) == before


def test_spec_shaped_metadata_without_fields_it_cannot_derive_is_a_usage_error(
        workspace, run_cli):
    path = workspace / "m.json"
    path.write_text(json.dumps([{"type": "session", "local_path": "sessions/x-9.md",
                                 "compressed": True, "size_bytes": 10,
                                 "checksum": "sha256:" + "0" * 64}]))
    result = run_cli("update-index", "9", str(path))
    assert result.exit_code == 2 and result.stdout.startswith("{")
    message = result.json["errors"][0]["message"]
    for field in ("original_size_bytes", "original_checksum", "remote_path", "created"):
        assert f"$[0].{field}" in message, message
    assert index_bytes(workspace) is None


@pytest.mark.parametrize("given", ["124", 124, "12", True, "abc"])
def test_metadata_for_another_issue_is_refused(workspace, planned, run_cli, given):
    before = index_bytes(workspace)
    path = workspace / "m.json"
    path.write_text(json.dumps({"issue_number": given, "logs": planned}))
    result = run_cli("update-index", "5", str(path))
    assert result.exit_code == 2
    assert f"metadata is for issue {given!r}, not 5" in result.json["errors"][0]["message"]
    assert index_bytes(workspace) == before


# -- 3. a killed upload's temp file in a file:// store ---------------------------------

def dead_pid():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid  # reaped: no process has it now (reuse within the test is unlikely)


def test_temp_files_of_dead_uploads_are_removed_before_the_first_put(tmp_path):
    from log_archiver.storage import local
    from log_archiver.storage.local import LocalStore

    root = tmp_path / "store"
    temps = root / ".log-archiver" / "tmp"
    temps.mkdir(parents=True)
    dead = temps / f"{dead_pid()}-0a0b0c0d0e0f"
    dead.write_bytes(b"half an upload")
    alive = temps / f"{os.getppid()}-0a0b0c0d0e0f"  # a running process (our parent)
    alive.write_bytes(b"still uploading")
    source = tmp_path / "log"
    source.write_bytes(b"data")
    import hashlib

    local._swept_roots.discard(root)
    store = LocalStore(root)
    store.put("a/b", source, sha256=hashlib.sha256(b"data").hexdigest(), size=4)
    assert not dead.exists() and alive.exists()
    dead.write_bytes(b"another, after the sweep")
    store.put("a/c", source, sha256=hashlib.sha256(b"data").hexdigest(), size=4)
    assert dead.exists()  # once a process, not before every put


def test_cleanup_orphans_reports_and_removes_dead_store_temps(workspace, run_cli):
    root = workspace.parent / "store"
    temps = root / ".log-archiver" / "tmp"
    temps.mkdir(parents=True)
    dead = temps / f"{dead_pid()}-abcdef012345"
    dead.write_bytes(b"x" * 10)
    alive = temps / f"{os.getppid()}-abcdef012345"
    alive.write_bytes(b"y")
    listed = run_cli("cleanup-local", "--orphans", "--dry-run")
    assert listed.exit_code == 0, listed.stdout
    [orphan] = listed.json["orphans"]
    assert orphan["kind"] == "store_temp" and orphan["path"] == str(dead)
    assert orphan["size_bytes"] == 10 and dead.exists()
    assert {"path": str(alive), "kind": "store_temp",
            "reason": "its upload is still running"} in listed.json["kept"]
    removed = run_cli("cleanup-local", "--orphans")
    assert removed.exit_code == 0 and [o["path"] for o in removed.json["orphans"]] == [str(dead)]
    assert not dead.exists() and alive.exists()

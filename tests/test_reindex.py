"""``archive ISSUE --reindex-only``: the entry rebuilt from the store and the local files.

Every test runs over the file:// store and over SeaweedFS (through the fault proxy, so the
writes the store receives can be counted).
"""

from __future__ import annotations

import json
import shutil

import pytest

from log_archiver.util.samples import log_text, write_sample_logs

KEPT_FIELDS = ("type", "filename", "local_path", "stored_path", "remote_path", "size_bytes",
               "original_size_bytes", "compressed", "compression", "checksum",
               "original_checksum", "created", "cloud_url", "public_url")


class FileBackend:
    name = "file"

    def __init__(self, workspace):
        self.root = workspace.parent / "store"

    def objects(self) -> dict:
        """key -> (inode, mtime): a rewritten object gets a new one."""
        return {p.relative_to(self.root).as_posix(): (p.stat().st_ino, p.stat().st_mtime_ns)
                for p in (self.root / "archive").rglob("*") if p.is_file()}

    def writes(self) -> int:
        return -1  # not countable: the object identities say it instead


class S3Backend:
    name = "s3"

    def __init__(self, place):
        self.place = place

    def objects(self) -> dict:
        return {key: (o["etag"], o["modified"]) for key, o in self.place.objects().items()}

    def writes(self) -> int:
        return len(self.place.uploads())


@pytest.fixture(params=["file", "s3"])
def backend(request, workspace):
    if request.param == "file":
        return FileBackend(workspace)
    return S3Backend(request.getfixturevalue("s3_workspace"))


@pytest.fixture
def logs(workspace):
    files = write_sample_logs(workspace / "logs", 123)
    write_sample_logs(workspace / "logs", 12, seed=1)  # another issue, never touched
    return {f.relative_to(workspace / "logs").as_posix(): f.read_bytes() for f in files}


def index_path(workspace):
    return workspace / "logs/.archive-index.json"


def entry_of(workspace, issue=123):
    doc = json.loads(index_path(workspace).read_text())
    return next((e for e in doc["archives"] if e["issue_number"] == issue), None)


def upload_without_cleanup(run_cli, tmp_path):
    """prepare-upload then file-manager upload; keeps the index as it was in between."""
    plan = run_cli("prepare-upload", "123")
    assert plan.exit_code == 0, plan.stdout
    (tmp_path / "plan.json").write_text(plan.stdout)
    shutil.copy(index_path_of(tmp_path), tmp_path / "index-after-prepare.json")
    uploaded = run_cli("file-manager", "upload", str(tmp_path / "plan.json"))
    assert uploaded.exit_code == 0, uploaded.stdout


def index_path_of(tmp_path):
    return tmp_path / "work/logs/.archive-index.json"


@pytest.mark.parametrize("loss", ["index deleted", "older index restored"])
def test_reindex_rebuilds_uploaded_entry_then_archive_only_cleans(
        workspace, logs, backend, run_cli, tmp_path, loss):
    upload_without_cleanup(run_cli, tmp_path)
    truth = entry_of(workspace)
    assert {log["upload_status"] for log in truth["logs"]} == {"verified"}
    if loss == "index deleted":
        index_path(workspace).unlink()
    else:  # the copy from before the upload: every log still pending
        shutil.copy(tmp_path / "index-after-prepare.json", index_path(workspace))
        assert {log["upload_status"] for log in entry_of(workspace)["logs"]} == {"pending"}
    objects, writes = backend.objects(), backend.writes()
    assert len(objects) == len(logs)
    if backend.name == "s3":
        assert writes == len(logs)  # the counter sees every upload

    result = run_cli("archive", "123", "--reindex-only")
    assert result.exit_code == 0, result.stdout
    doc = result.json
    assert doc["status"] == "ok"
    assert sorted(doc["reindex"]["verified"]) == sorted(logs)
    assert doc["reindex"]["pending"] == [] and doc["reindex"]["cleaned"] == []
    rebuilt = entry_of(workspace)
    assert rebuilt["upload_complete"] and not rebuilt["partial_archive"]
    assert [{k: log[k] for k in KEPT_FIELDS} for log in rebuilt["logs"]] == \
        [{k: log[k] for k in KEPT_FIELDS} for log in truth["logs"]]
    assert {log["upload_status"] for log in rebuilt["logs"]} == {"verified"}
    assert entry_of(workspace, 12) is None
    assert run_cli("validate-index").json["status"] == "ok"

    archived = run_cli("archive", "123")
    assert archived.exit_code == 0, archived.stdout
    assert archived.json["upload"]["verified"] == []  # nothing uploaded again
    assert archived.json["cleanup"]["freed_bytes"] >= sum(map(len, logs.values()))
    assert backend.objects() == objects  # not one object rewritten
    assert backend.writes() == writes
    for name in logs:
        assert not (workspace / "logs" / name).exists()
    assert {log["upload_status"] for log in entry_of(workspace)["logs"]} == {"cleaned"}


def test_reindex_after_cleanup_records_every_log_from_the_store(workspace, logs, backend,
                                                                 run_cli):
    assert run_cli("archive", "123").exit_code == 0
    truth = entry_of(workspace)
    index_path(workspace).unlink()
    result = run_cli("archive", "123", "--reindex-only")
    assert result.exit_code == 0, result.stdout
    assert sorted(result.json["reindex"]["cleaned"]) == sorted(logs)
    rebuilt = entry_of(workspace)
    assert [{k: log[k] for k in KEPT_FIELDS} for log in rebuilt["logs"]] == \
        [{k: log[k] for k in KEPT_FIELDS} for log in truth["logs"]]
    assert rebuilt["archived_at"][:7] == truth["archived_at"][:7]
    assert {log["upload_status"] for log in rebuilt["logs"]} == {"cleaned"}
    again = run_cli("archive", "123")
    assert again.json["status"] == "noop"


def test_reindex_twice_is_a_noop(workspace, logs, backend, run_cli, tmp_path):
    upload_without_cleanup(run_cli, tmp_path)
    index_path(workspace).unlink()
    assert run_cli("archive", "123", "--reindex-only").json["status"] == "ok"
    before = index_path(workspace).read_bytes()
    second = run_cli("archive", "123", "--reindex-only")
    assert second.exit_code == 0 and second.json["status"] == "noop"
    assert index_path(workspace).read_bytes() == before


def test_local_log_not_stored_becomes_pending_and_retry_uploads_only_it(
        workspace, logs, backend, run_cli, tmp_path):
    upload_without_cleanup(run_cli, tmp_path)
    index_path(workspace).unlink()
    late = workspace / "logs/debug/123-late.log"
    late.parent.mkdir()
    late.write_bytes(log_text(3000, 7))
    objects, writes = backend.objects(), backend.writes()

    result = run_cli("archive", "123", "--reindex-only")
    assert result.exit_code == 3, result.stdout
    assert result.json["status"] == "partial"
    assert result.json["reindex"]["pending"] == ["debug/123-late.log"]
    assert "--retry" in result.json["hint"]
    assert "Pending (local only): 1" in result.stderr and "--retry" in result.stderr
    entry = entry_of(workspace)
    assert entry["partial_archive"] and not entry["upload_complete"]
    statuses = {log["local_path"]: log["upload_status"] for log in entry["logs"]}
    assert statuses.pop("debug/123-late.log") == "pending"
    assert set(statuses.values()) == {"verified"}
    folders = {log["remote_path"].rsplit("/", 1)[0] for log in entry["logs"]}
    assert len(folders) == 1  # the new log goes beside the others

    retried = run_cli("archive", "123", "--retry")
    assert retried.exit_code == 0, retried.stdout
    assert retried.json["upload"]["verified"] == ["debug/123-late.log"]
    now = backend.objects()
    assert {k: v for k, v in now.items() if k in objects} == objects
    assert [k for k in now if k not in objects] == [
        next(log["remote_path"] for log in entry["logs"]
             if log["local_path"] == "debug/123-late.log")]
    if backend.name == "s3":
        assert backend.writes() == writes + 1
    assert not late.exists()


def test_log_changed_after_upload_is_recorded_as_stored_and_kept(workspace, logs, backend,
                                                                  run_cli, tmp_path):
    upload_without_cleanup(run_cli, tmp_path)
    truth = entry_of(workspace)
    index_path(workspace).unlink()
    grown = workspace / "logs/builds/123-build.log"
    grown.write_bytes(grown.read_bytes() + b"one more line\n")
    result = run_cli("archive", "123", "--reindex-only")
    assert result.exit_code == 0, result.stdout
    assert result.json["reindex"]["changed"] == ["builds/123-build.log"]
    assert any("builds/123-build.log" in w and "--force" in w for w in result.json["warnings"])
    record = next(log for log in entry_of(workspace)["logs"]
                  if log["local_path"] == "builds/123-build.log")
    before = next(log for log in truth["logs"] if log["local_path"] == "builds/123-build.log")
    assert record["checksum"] == before["checksum"]  # what the store holds
    cleaned = run_cli("archive", "123").json
    assert grown.exists()  # its new lines are nowhere else
    assert any(k["local_path"] == "builds/123-build.log" for k in cleaned["cleanup"]["kept"])


def test_dry_run_changes_nothing(workspace, logs, backend, run_cli, tmp_path):
    upload_without_cleanup(run_cli, tmp_path)
    index_path(workspace).unlink()
    before = {p: p.read_bytes() for p in (workspace / "logs").rglob("*") if p.is_file()}
    result = run_cli("archive", "123", "--reindex-only", "--dry-run")
    assert result.exit_code == 0 and result.json["dry_run"] is True
    assert sorted(result.json["reindex"]["verified"]) == sorted(logs)
    assert {p: p.read_bytes() for p in (workspace / "logs").rglob("*") if p.is_file()} == before


def test_reindex_refuses_force_and_retry(workspace, logs, run_cli):
    for flag in ("--force", "--retry"):
        result = run_cli("archive", "123", "--reindex-only", flag)
        assert result.exit_code == 2 and result.json["errors"][0]["type"] == "usage"
        assert not index_path(workspace).exists()


def test_objects_without_metadata_are_read_back(workspace, logs, run_cli):
    """Objects another tool wrote (no metadata): described by their names and bytes."""
    assert run_cli("archive", "123").exit_code == 0
    truth = entry_of(workspace)
    shutil.rmtree(workspace.parent / "store/.log-archiver/objects")
    index_path(workspace).unlink()
    result = run_cli("archive", "123", "--reindex-only")
    assert result.exit_code == 0, result.stdout
    rebuilt = entry_of(workspace)
    fields = [k for k in KEPT_FIELDS if k != "created"]  # the log's own time is gone
    assert [{k: log[k] for k in fields} for log in rebuilt["logs"]] == \
        [{k: log[k] for k in fields} for log in truth["logs"]]


def test_tampered_metadata_is_not_believed(workspace, logs, run_cli, tmp_path):
    upload_without_cleanup(run_cli, tmp_path)
    index_path(workspace).unlink()
    meta = next(path for path in (workspace.parent / "store/.log-archiver/objects").rglob("*")
                if path.is_file() and json.loads(path.read_text())["key"].endswith(
                    "/123-build.log"))
    data = json.loads(meta.read_text())
    data["metadata"]["local-path"] = "builds/123-other.log"  # claims to be another log
    # ... and vouches for it with a checksum of its own: only the bytes can tell
    data["metadata"]["sha256"] = data["sha256"] = "0" * 64
    meta.write_text(json.dumps(data))
    result = run_cli("archive", "123", "--reindex-only")
    assert result.exit_code == 0, result.stdout
    paths = [log["local_path"] for log in entry_of(workspace)["logs"]]
    assert "builds/123-other.log" not in paths and "builds/123-build.log" in paths


def test_log_neither_stored_nor_on_disk_is_marked_lost(workspace, logs, backend, run_cli):
    assert run_cli("archive", "123").exit_code == 0
    lost = next(log for log in entry_of(workspace)["logs"]
                if log["local_path"] == "builds/123-build.log")
    if backend.name == "file":
        (workspace.parent / "store" / lost["remote_path"]).unlink()
    else:
        place = backend.place
        place.server.client().delete_object(Bucket=place.bucket,
                                            Key=f"{place.prefix}/{lost['remote_path']}")
    result = run_cli("archive", "123", "--reindex-only")
    assert result.exit_code == 3, result.stdout
    assert result.json["reindex"]["missing"] == ["builds/123-build.log"]
    assert any("builds/123-build.log" in w for w in result.json["warnings"])
    record = next(log for log in entry_of(workspace)["logs"]
                  if log["local_path"] == "builds/123-build.log")
    assert record["upload_status"] == "lost" and record["last_error"].startswith("lost:")
    assert record["checksum"] == lost["checksum"]  # what it was is still known
    entry = entry_of(workspace)
    assert entry["partial_archive"] and entry["total_logs"] == 4
    before = index_path(workspace).read_bytes()
    again = run_cli("archive", "123", "--reindex-only")
    assert again.exit_code == 3 and index_path(workspace).read_bytes() == before


def test_entry_is_rebuilt_only_from_its_own_store(workspace, logs, run_cli, tmp_path):
    assert run_cli("archive", "123").exit_code == 0
    before = index_path(workspace).read_bytes()
    other = tmp_path / "other-store"
    result = run_cli("archive", "123", "--reindex-only", "--storage", f"file://{other}")
    assert result.exit_code == 2, result.stdout
    error = result.json["errors"][0]
    assert str(other) in error["message"] and "--storage" in error["hint"]
    assert index_path(workspace).read_bytes() == before

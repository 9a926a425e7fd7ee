"""``archive ISSUE --reindex-only``: the entry rebuilt from the store and the local files.

Every test runs over the file:// store and over SeaweedFS (through the fault proxy, so the
writes the store receives can be counted).
"""

from __future__ import annotations

import json
import os
import shutil

import pytest

from log_archiver.storage.descriptions import XATTR
from log_archiver.util.samples import log_text, write_sample_logs

KEPT_FIELDS = ("type", "filename", "local_path", "stored_path", "remote_path", "size_bytes",
               "original_size_bytes", "compressed", "compression", "checksum",
               "original_checksum", "created", "cloud_url", "public_url")


def described_object(store, key_ends: str):
    """The file:// object whose key ends with ``key_ends``, and its description."""
    for path in store.rglob("*"):
        if path.is_file() and ".log-archiver" not in path.relative_to(store).parts:
            data = json.loads(os.getxattr(path, XATTR))
            if data["key"].endswith(key_ends):
                return path, data
    raise AssertionError(f"no object of the store ends with {key_ends}")


def describe(path, data: dict) -> None:
    """Write ``data`` as the description of the object at ``path`` (as a forger would)."""
    os.setxattr(path, XATTR, json.dumps(data).encode())


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
    store = workspace.parent / "store"
    for log in truth["logs"]:  # objects with no description, as another tool leaves them
        os.removexattr(store / log["remote_path"], XATTR)
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
    target, data = described_object(workspace.parent / "store", "/123-build.log")
    data["metadata"]["local-path"] = "builds/123-other.log"  # claims to be another log
    # ... and vouches for it with a checksum of its own: only the bytes can tell
    data["metadata"]["sha256"] = data["sha256"] = "0" * 64
    describe(target, data)
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


# -- finding one issue's objects, and the lock ------------------------------------------

OTHER_MONTHS = (("2024", "11"), ("2025", "01"), ("2025", "02"))


def put_raw(backend, workspace, key: str, data: bytes) -> None:
    """An object written by another tool: no metadata of ours."""
    import base64
    import hashlib

    if backend.name == "file":
        path = workspace.parent / "store" / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return
    place = backend.place
    place.server.client().put_object(
        Bucket=place.bucket, Key=f"{place.prefix}/{key}", Body=data,
        ChecksumSHA256=base64.b64encode(hashlib.sha256(data).digest()).decode())


def fill_with_other_issues(backend, workspace, month: tuple[str, str]) -> int:
    """Objects of 40 other issues in four months (and of 12, 1234 and 1123 beside 123)."""
    count = 0
    for year, mon in (*OTHER_MONTHS, month):
        for issue in sorted({*range(1, 41), 1234, 1123}):  # 12 among them
            put_raw(backend, workspace, f"archive/logs/{year}/{mon}/{issue}/{issue}-build.log",
                    f"log of {issue}\n".encode())
            count += 1
    return count


def test_reindex_lists_only_the_folders_of_its_issue(workspace, logs, backend, run_cli,
                                                     tmp_path):
    from scans import recording_scans

    upload_without_cleanup(run_cli, tmp_path)
    truth = entry_of(workspace)
    index_path(workspace).unlink()
    year, month = truth["archived_at"][:4], truth["archived_at"][5:7]
    others = fill_with_other_issues(backend, workspace, (year, month))
    put_raw(backend, workspace, "archive/logs/2024/11/123/debug-123-old.log", b"old debug\n")
    assert len(backend.objects()) == others + len(logs) + 1
    seen = len(backend.place.proxy.requests) if backend.name == "s3" else 0

    with recording_scans() as scanned:
        result = run_cli("archive", "123", "--reindex-only")
    assert result.exit_code == 0, result.stdout
    assert sorted(result.json["reindex"]["verified"]) == sorted(logs)
    assert result.json["reindex"]["cleaned"] == ["debug/123-old.log"]  # found in 2024/11
    assert result.json["reindex"]["objects"] == len(logs) + 1

    folders = {"archive/logs", *(f"archive/logs/{y}" for y in ("2024", "2025", year))}
    issue_folders = {f"archive/logs/{y}/{m}/123" for y, m in (*OTHER_MONTHS, (year, month))}
    if backend.name == "file":
        store = workspace.parent / "store"
        read = [p[len(str(store)) + 1:] for p in scanned if p.startswith(f"{store}/")]
        assert set(read) <= folders | issue_folders, read  # never a month or another issue
        assert len(read) <= len(folders) + len(issue_folders)
        return
    from urllib.parse import parse_qs, urlsplit

    requests = [line.split(" ")[:2] for line in backend.place.proxy.requests[seen:]]
    lists = [parse_qs(urlsplit(target).query) for method, target in requests
             if method == "GET" and "list-type=2" in target]
    prefix = backend.place.prefix + "/"
    for query in lists:
        asked = query["prefix"][0].removeprefix(prefix)
        if query.get("delimiter") == ["/"]:
            assert asked.rstrip("/") in folders, asked  # folder names, one level down
        else:
            assert asked.rstrip("/") in issue_folders, asked  # only the issue's own folders
    assert len(lists) <= len(folders) + len(issue_folders)
    heads = [target for method, target in requests if method == "HEAD"]
    assert len(heads) == len(logs) + 1 and all("/123/" in target for target in heads)


def test_metadata_naming_another_file_is_not_believed(workspace, logs, run_cli, tmp_path):
    """The object's checksum still matches: only its key shows the metadata is wrong."""
    upload_without_cleanup(run_cli, tmp_path)
    truth = entry_of(workspace)
    index_path(workspace).unlink()
    target, data = described_object(workspace.parent / "store", "/123-build.log")
    data["metadata"]["local-path"] = "builds/123-other.log"
    describe(target, data)
    result = run_cli("archive", "123", "--reindex-only")
    assert result.exit_code == 0, result.stdout
    rebuilt = entry_of(workspace)
    assert [log["local_path"] for log in rebuilt["logs"]] == \
        [log["local_path"] for log in truth["logs"]]  # builds/123-build.log, by its key
    record = next(log for log in rebuilt["logs"] if log["local_path"] == "builds/123-build.log")
    assert record["upload_status"] == "verified" and record["checksum"] == next(
        log["checksum"] for log in truth["logs"] if log["local_path"] == "builds/123-build.log")


def test_object_with_a_name_no_log_can_have_is_left_alone(workspace, logs, run_cli, tmp_path):
    upload_without_cleanup(run_cli, tmp_path)
    folder = entry_of(workspace)["logs"][0]["remote_path"].rsplit("/", 1)[0]
    index_path(workspace).unlink()
    hidden = workspace.parent / "store" / folder / ".hidden.log"
    hidden.write_bytes(b"not a log of ours\n")
    result = run_cli("archive", "123", "--reindex-only")
    assert result.exit_code == 0, result.stdout
    assert [log["local_path"] for log in entry_of(workspace)["logs"]] == sorted(logs)
    assert any(".hidden.log" in w and "left alone" in w for w in result.json["warnings"])


@pytest.fixture
def slow_s3(workspace, s3_workspace):
    """The s3 workspace with every reply of the store delayed by ``delay`` seconds."""
    proxy = s3_workspace.proxy

    def slow(delay: float) -> None:
        proxy.delay = delay
        proxy.fail_next(500, "slow")

    return slow


def test_another_writer_finishes_while_a_reindex_reads_a_slow_store(
        workspace, logs, s3_workspace, slow_s3, run_cli):
    import subprocess
    import time

    from conftest import run_script, script

    assert run_cli("archive", "123").exit_code == 0
    index_path(workspace).unlink()
    slow_s3(2.0)
    proxy = s3_workspace.proxy
    seen = len(proxy.requests)
    reindexing = subprocess.Popen([*script("log-archiver"), "archive", "123", "--reindex-only"],
                                  cwd=workspace, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while len(proxy.requests) == seen:  # the reindex is waiting for the store
            assert reindexing.poll() is None, reindexing.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        other = run_script("prepare-upload", "12", cwd=workspace)
        assert other.exit_code == 0, other.stdout
        assert reindexing.poll() is None  # it finished while the reindex was still working
        out, err = reindexing.communicate(timeout=120)
    finally:
        if reindexing.poll() is None:
            reindexing.kill()
            reindexing.communicate()
    assert reindexing.returncode == 0, out + err
    assert json.loads(out)["status"] == "ok"
    assert {log["upload_status"] for log in entry_of(workspace)["logs"]} == {"cleaned"}
    assert {log["upload_status"] for log in entry_of(workspace, 12)["logs"]} == {"pending"}


def edit_title_on_head(workspace, proxy, times: int) -> list[str]:
    """While the reindex reads the store, another writer changes entry 123 (on the first
    HEAD of up to ``times`` surveys); returns the titles it wrote."""
    from log_archiver.index.file import ArchiveIndex

    written: list[str] = []
    heads = {"count": 0}

    def hook(_number: int, request: str) -> None:
        if not request.startswith("HEAD ") or "/123/" not in request:
            return
        heads["count"] += 1
        if len(written) < times and heads["count"] % 4 == 1:  # 4 objects a survey
            title = f"edited {len(written) + 1}"
            with ArchiveIndex(index_path(workspace), lock_timeout=5).transaction() as txn:
                txn.edit(123)["issue_title"] = title
            written.append(title)

    proxy.before_request = hook
    return written


def test_entry_changed_during_the_survey_is_surveyed_again(workspace, logs, s3_workspace,
                                                           run_cli, tmp_path):
    upload_without_cleanup(run_cli, tmp_path)
    shutil.copy(tmp_path / "index-after-prepare.json", index_path(workspace))
    proxy = s3_workspace.proxy
    written = edit_title_on_head(workspace, proxy, times=1)
    seen = len(proxy.requests)
    result = run_cli("archive", "123", "--reindex-only")
    proxy.before_request = None
    assert result.exit_code == 0, result.stdout
    assert written == ["edited 1"]
    heads = [line for line in proxy.requests[seen:] if line.startswith("HEAD ")]
    assert len(heads) == 2 * len(logs)  # the survey, then once more
    entry = entry_of(workspace)
    assert entry["issue_title"] == "edited 1"  # what the other run wrote is kept
    assert {log["upload_status"] for log in entry["logs"]} == {"verified"}


def test_entry_changing_during_every_survey_fails_retryable(workspace, logs, s3_workspace,
                                                            run_cli, tmp_path):
    upload_without_cleanup(run_cli, tmp_path)
    shutil.copy(tmp_path / "index-after-prepare.json", index_path(workspace))
    proxy = s3_workspace.proxy
    written = edit_title_on_head(workspace, proxy, times=10)
    seen = len(proxy.requests)
    result = run_cli("archive", "123", "--reindex-only")
    proxy.before_request = None
    assert result.exit_code == 1, result.stdout
    error = result.json["errors"][0]
    assert error["retryable"] is True and "issue 123" in error["message"]
    assert "archive 123 --reindex-only" in error["hint"]
    assert written == ["edited 1", "edited 2"]
    heads = [line for line in proxy.requests[seen:] if line.startswith("HEAD ")]
    assert len(heads) == 2 * len(logs)
    entry = entry_of(workspace)
    assert entry["issue_title"] == "edited 2"
    assert {log["upload_status"] for log in entry["logs"]} == {"pending"}  # not rebuilt


def test_metadata_that_names_a_log_its_object_does_not_hold_frees_nothing(
        workspace, logs, run_cli, tmp_path):
    """Object and metadata both forged, consistently: the metadata's checksum matches the
    object's bytes and its original-sha256 is the real log's. Only decompressing the object
    shows it holds something else; until then the log must not count as stored."""
    import gzip
    import hashlib

    upload_without_cleanup(run_cli, tmp_path)
    session = "sessions/session-123-2025-01-15.md"
    record = next(log for log in entry_of(workspace)["logs"] if log["local_path"] == session)
    assert record["compressed"]
    index_path(workspace).unlink()
    forged = gzip.compress(b"not the log\n")
    store = workspace.parent / "store"
    (store / record["remote_path"]).write_bytes(forged)
    target, data = described_object(store, record["remote_path"])
    data["metadata"]["sha256"] = data["sha256"] = hashlib.sha256(forged).hexdigest()
    describe(target, data)
    rebuilt = run_cli("archive", "123", "--reindex-only")
    assert rebuilt.exit_code == 3, rebuilt.stdout
    assert record["remote_path"] in rebuilt.json["reindex"]["extra_objects"]
    assert session in rebuilt.json["reindex"]["pending"]
    run_cli("cleanup-local", "123")
    assert (workspace / "logs" / session).read_bytes() == logs[session]

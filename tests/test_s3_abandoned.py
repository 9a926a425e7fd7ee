"""Incomplete multipart uploads left by a killed process are aborted; AWS_REGION counts."""

from __future__ import annotations

import hashlib
import os

from log_archiver.archive.leftovers import remove_leftovers
from log_archiver.index.file import ArchiveIndex

MIB = 1 << 20


def leave_incomplete_upload(server, store, key: str) -> str:
    """What a process killed mid-upload leaves: an upload begun, one part sent."""
    client = server.client()
    full = f"{store.prefix}/{key}"
    upload_id = client.create_multipart_upload(Bucket=store.bucket, Key=full)["UploadId"]
    client.upload_part(Bucket=store.bucket, Key=full, UploadId=upload_id, PartNumber=1,
                       Body=b"p" * (5 * MIB))
    return upload_id


def incomplete(server, store) -> set[str]:
    reply = server.client().list_multipart_uploads(Bucket=store.bucket, Prefix=store.prefix)
    return {upload["UploadId"] for upload in reply.get("Uploads", [])}


def test_orphans_lists_then_aborts_old_incomplete_uploads(s3_env, s3_store, tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    index = ArchiveIndex(logs / ".archive-index.json")
    upload_id = leave_incomplete_upload(s3_env, s3_store, "archive/logs/2025/01/5/big.log")
    assert incomplete(s3_env, s3_store) == {upload_id}
    # young: kept (its writer may still be sending parts)
    young = remove_leftovers(index, logs, store=s3_store, dry_run=True)
    assert young.orphans == []
    [kept] = young.kept
    assert kept["kind"] == "multipart" and kept["path"].endswith("/5/big.log")
    # old enough (threshold lowered instead of waiting a day): listed by --dry-run ...
    listed = remove_leftovers(index, logs, store=s3_store, dry_run=True, upload_age=0)
    [orphan] = listed.orphans
    assert orphan["kind"] == "multipart" and orphan["size_bytes"] == 5 * MIB
    assert orphan["path"] == f"{s3_store.url}/archive/logs/2025/01/5/big.log"
    assert incomplete(s3_env, s3_store) == {upload_id}
    # ... then aborted
    removed = remove_leftovers(index, logs, store=s3_store, upload_age=0)
    assert [o["path"] for o in removed.orphans] == [orphan["path"]] and not removed.failed
    assert incomplete(s3_env, s3_store) == set()


def test_cleanup_orphans_cli_reports_a_young_incomplete_upload(s3_workspace, run_cli):
    from log_archiver.storage.s3.store import S3Store

    store = S3Store(s3_workspace.bucket, s3_workspace.prefix)
    upload_id = leave_incomplete_upload(s3_workspace.server, store, "archive/logs/2025/01/5/x")
    result = run_cli("cleanup-local", "--orphans", "--dry-run")
    assert result.exit_code == 0, result.stdout
    assert [k["kind"] for k in result.json["kept"]] == ["multipart"]
    assert "may still be running" in result.json["kept"][0]["reason"]
    assert incomplete(s3_workspace.server, store) == {upload_id}


def test_a_successful_upload_aborts_earlier_incomplete_uploads_of_its_key(s3_env, s3_config,
                                                                          tmp_path):
    from log_archiver.storage.s3.store import S3Store

    config = s3_config()
    store = S3Store.from_url(config.storage, config)
    key = "archive/logs/2025/01/5/big.log"
    killed = leave_incomplete_upload(s3_env, store, key)
    other = leave_incomplete_upload(s3_env, store, "archive/logs/2025/01/5/other.log")
    data = os.urandom(6 * MIB)  # above the 5 MiB multipart threshold of the test config
    path = tmp_path / "big.log"
    path.write_bytes(data)
    import time

    time.sleep(1.1)  # the server's Date header has whole seconds
    assert store.put(key, path, sha256=hashlib.sha256(data).hexdigest(),
                     size=len(data)) == "created"
    assert incomplete(s3_env, store) == {other}  # only the same key's earlier upload went
    assert killed not in incomplete(s3_env, store)


def test_aws_region_is_honoured_after_the_config_region(monkeypatch, tmp_path):
    from log_archiver.storage.s3.store import S3Store

    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")

    def region(**kwargs):
        store = S3Store("bucket", endpoint_url="http://127.0.0.1:9", **kwargs)
        return store._client.meta.region_name

    assert region() == "us-east-1"
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-south-1")
    assert region() == "ap-south-1"
    monkeypatch.setenv("AWS_REGION", "eu-west-3")
    assert region() == "eu-west-3"
    assert region(region="us-west-2") == "us-west-2"

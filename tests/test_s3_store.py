"""S3Store against a real server (SeaweedFS on 127.0.0.1): errors, retries, integrity.

Everything the contract suite cannot show: what each failure becomes, that the server
itself checks signatures, SHA-256 and If-None-Match, and that no secret leaks.
"""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys

import pytest
from botocore.exceptions import ClientError

from log_archiver.errors import (
    ChecksumMismatchError,
    ConfigError,
    StorageConflictError,
    StorageNotFoundError,
    StoragePermissionError,
    StorageThrottledError,
    StorageTimeoutError,
    StorageTransientError,
)
from log_archiver.model.copies import copy_origin
from log_archiver.storage import open_store, verify
from log_archiver.storage.s3.store import S3Store
from log_archiver.util.retry import RetryPolicy

MIB = 1 << 20
KEY = "archive/logs/2025/01/123/build.log"


@pytest.fixture
def payload(tmp_path):
    data = b"build output\n" * 500
    path = tmp_path / "build.log"
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest(), len(data)


def log_of(path: str) -> str:
    """The log a deleted path belongs to (a compressed copy's, by the copy's own name)."""
    folder, _, name = path.rpartition("/")
    origin = copy_origin(name)
    return f"{folder}/{origin[0]}" if origin else path


def put(store, payload, key=KEY, **kw):
    path, sha, size = payload
    return store.put(key, path, sha256=sha, size=size, **kw)


def b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def assert_no_secret(error, server):
    text = " ".join([str(error), error.message, error.hint, repr(error.to_dict())])
    for secret in (server.secret_key, server.admin_secret, "wrong-secret-value"):
        assert secret not in text


# -- credentials and buckets ----------------------------------------------------------


def test_wrong_secret_is_permission_error_not_retried(s3_config, s3_server, monkeypatch,
                                                      payload):
    config = s3_config()
    s3_server.use_credentials(monkeypatch, secret_key="wrong-secret-value")
    store = S3Store.from_url(config.storage, config)
    calls = []

    def attempt(_timeout):
        calls.append(1)
        return put(store, payload)

    with pytest.raises(StoragePermissionError) as caught:
        RetryPolicy.immediate().run(attempt)
    error = caught.value
    assert isinstance(error, PermissionError) and error.retryable is False
    assert len(calls) == 1 and error.retries == 0
    assert store.bucket in error.hint and "credentials" in error.hint
    assert isinstance(error.__cause__, ClientError)
    assert_no_secret(error, s3_server)


def test_unknown_access_key_is_permission_error(s3_config, s3_server, monkeypatch, payload):
    config = s3_config()
    s3_server.use_credentials(monkeypatch, access_key="AKNOBODY", secret_key=s3_server.secret_key)
    store = S3Store.from_url(config.storage, config)
    with pytest.raises(StoragePermissionError):
        put(store, payload)  # HEAD first: a bare 403
    with pytest.raises(StoragePermissionError) as caught:
        list(store.list(""))
    assert caught.value.__cause__.response["Error"]["Code"] == "InvalidAccessKeyId"
    assert_no_secret(caught.value, s3_server)


def test_no_credentials_at_all_is_permission_error(s3_config, monkeypatch, payload):
    config = s3_config()
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(StoragePermissionError) as caught:
        put(S3Store.from_url(config.storage, config), payload)
    assert "AWS_ACCESS_KEY_ID" in caught.value.hint and caught.value.retryable is False


def test_missing_bucket_is_not_found_with_hint(s3_config, payload, tmp_path):
    config = s3_config("s3://no-such-bucket-here/p")
    store = open_store(config.storage, config)
    for call in (lambda: put(store, payload), lambda: list(store.list("")),
                 lambda: store.get(KEY, tmp_path / "x")):
        with pytest.raises(StorageNotFoundError) as caught:
            call()
        assert "no-such-bucket-here" in caught.value.message
        assert caught.value.retryable is False
    assert "create" in caught.value.hint and "no-such-bucket-here" in caught.value.hint


# -- server down, throttled, failing ----------------------------------------------------


def test_server_stopped_is_transient_then_put_succeeds(s3_store, s3_server, payload):
    s3_server.stop()
    try:
        with pytest.raises(StorageTransientError) as caught:
            put(s3_store, payload)
        error = caught.value
        assert error.retryable is True and error.kind == "network"
        assert s3_server.endpoint_url in error.message
        assert_no_secret(error, s3_server)
    finally:
        s3_server.start()
    assert put(s3_store, payload) == "created"
    _path, sha, size = payload
    assert verify(s3_store, KEY, sha256=sha, size=size).sha256 == sha


def test_slowdown_is_throttled_and_retry_policy_recovers(proxied_store, fault_proxy,
                                                         payload, s3_server):
    fault_proxy.fail_next(1, "slowdown")
    with pytest.raises(StorageThrottledError) as caught:
        put(proxied_store, payload)
    assert caught.value.kind == "throttle" and caught.value.retryable is True
    assert "503" in caught.value.message
    assert_no_secret(caught.value, s3_server)
    assert fault_proxy.pending_faults() == 0  # botocore itself did not retry
    fault_proxy.fail_next(2, "slowdown")
    retried = []
    outcome, retries = RetryPolicy.immediate().run(
        lambda _t: put(proxied_store, payload),
        on_retry=lambda error, n, delay: retried.append((type(error).__name__, delay)))
    assert (outcome, retries) == ("created", 2)
    assert retried == [("StorageThrottledError", 10.0), ("StorageThrottledError", 30.0)]
    assert sum("slowdown" in r for r in fault_proxy.requests) == 3


@pytest.mark.parametrize("fault", ["internal", "drop"])
def test_server_error_and_dropped_connection_are_transient(proxied_store, fault_proxy,
                                                           payload, fault):
    fault_proxy.fail_next(1, fault)
    with pytest.raises(StorageTransientError) as caught:
        put(proxied_store, payload)
    assert not isinstance(caught.value, (StorageThrottledError, StorageTimeoutError))
    assert caught.value.kind == "network"
    assert put(proxied_store, payload) == "created"


def test_stalled_server_is_timeout(proxied_store, fault_proxy, payload):
    fault_proxy.fail_next(1, "stall")
    with pytest.raises(StorageTimeoutError) as caught:
        put(proxied_store.with_timeout(0.5), payload)
    assert caught.value.kind == "timeout" and caught.value.retryable is True


def test_failed_multipart_upload_is_aborted(proxied_store, fault_proxy, s3_server, tmp_path):
    data = os.urandom(11 * MIB)
    path = tmp_path / "big.log"
    path.write_bytes(data)
    # HEAD and CreateMultipartUpload pass, then a part upload is dropped.
    fault_proxy.fail_next(1, "drop", after=2)
    with pytest.raises(StorageTransientError):
        proxied_store.put(KEY, path, sha256=hashlib.sha256(data).hexdigest(), size=len(data))
    assert any(r.startswith("DELETE") and "uploadId" in r for r in fault_proxy.requests)
    client = s3_server.client()
    assert client.list_multipart_uploads(Bucket=proxied_store.bucket).get("Uploads", []) == []
    assert proxied_store.head(KEY) is None


# -- integrity: the server checks, not us -----------------------------------------------


def test_server_rejects_wrong_sha256(s3_store, payload):
    path, _sha, size = payload
    wrong = hashlib.sha256(b"other bytes").hexdigest()
    with pytest.raises(ChecksumMismatchError) as caught:
        s3_store.put(KEY, path, sha256=wrong, size=size)
    assert caught.value.__cause__.response["Error"]["Code"] == "BadDigest"  # said by server
    raw = s3_store._client
    full = f"{s3_store.prefix}/{KEY}"
    with pytest.raises(ClientError) as rejected:
        raw.put_object(Bucket=s3_store.bucket, Key=full, Body=b"abc", ChecksumSHA256=b64(b"abd"))
    assert rejected.value.response["Error"]["Code"] == "BadDigest"
    upload = raw.create_multipart_upload(Bucket=s3_store.bucket, Key=full,
                                         ChecksumAlgorithm="SHA256")["UploadId"]
    with pytest.raises(ClientError) as part:
        raw.upload_part(Bucket=s3_store.bucket, Key=full, UploadId=upload, PartNumber=1,
                        Body=b"abc", ChecksumSHA256=b64(b"abd"))
    assert part.value.response["Error"]["Code"] == "BadDigest"
    raw.abort_multipart_upload(Bucket=s3_store.bucket, Key=full, UploadId=upload)
    assert s3_store.head(KEY) is None


def test_changed_local_file_is_caught_before_multipart(s3_store, tmp_path):
    path = tmp_path / "big.log"
    path.write_bytes(os.urandom(6 * MIB))
    stale = hashlib.sha256(b"what it was").hexdigest()
    with pytest.raises(ChecksumMismatchError) as caught:
        s3_store.put(KEY, path, sha256=stale, size=6 * MIB)
    assert stale in caught.value.message
    assert s3_store.head(KEY) is None


@pytest.mark.parametrize("how", ["plain", "copied-metadata", "copied-metadata-with-sha"])
def test_tampered_object_fails_verify(s3_store, s3_server, payload, how):
    path, sha, size = payload
    put(s3_store, payload)
    tampered = b"X" + path.read_bytes()[1:]  # same size, other bytes
    extra = {"plain": {}, "copied-metadata": {"Metadata": {"sha256": sha}},
             "copied-metadata-with-sha": {"Metadata": {"sha256": sha},
                                          "ChecksumSHA256": b64(tampered)}}[how]
    s3_server.client().put_object(Bucket=s3_store.bucket, Key=f"{s3_store.prefix}/{KEY}",
                                  Body=tampered, **extra)
    with pytest.raises(ChecksumMismatchError) as caught:
        verify(s3_store, KEY, sha256=sha, size=size)
    assert s3_store.url_for(KEY) in caught.value.message


@pytest.mark.parametrize("size", [1000, 6 * MIB])  # single PUT, multipart (composite)
def test_corrupted_download_is_caught(proxied_store, fault_proxy, tmp_path, size):
    data = os.urandom(size)
    path = tmp_path / "log"
    path.write_bytes(data)
    proxied_store.put(KEY, path, sha256=hashlib.sha256(data).hexdigest(), size=size)
    fault_proxy.fail_next(1, "corrupt")
    dest = tmp_path / "copy"
    with pytest.raises(ChecksumMismatchError):
        proxied_store.get(KEY, dest)
    assert fault_proxy.requests[-1].startswith("GET") and "corrupt" in fault_proxy.requests[-1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log"]  # nothing half-written
    proxied_store.get(KEY, dest)
    assert dest.read_bytes() == data


def test_if_none_match_is_enforced_by_the_server(s3_store, payload, tmp_path, monkeypatch):
    path, sha, size = payload
    put(s3_store, payload)
    full = f"{s3_store.prefix}/{KEY}"
    with pytest.raises(ClientError) as caught:
        s3_store._upload(full, path, sha, size, conditional=True)
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    big = tmp_path / "big.log"  # multipart: the 412 comes at CompleteMultipartUpload
    big.write_bytes(os.urandom(6 * MIB))
    with pytest.raises(ClientError) as completed:
        s3_store._upload(full, big, hashlib.sha256(big.read_bytes()).hexdigest(), 6 * MIB,
                         conditional=True)
    assert completed.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    client = s3_store._client
    assert client.list_multipart_uploads(Bucket=s3_store.bucket).get("Uploads", []) == []
    assert s3_store.head(KEY).sha256 == sha
    # A writer that raced our HEAD: the 412 decides (same bytes: exists; else conflict).
    real_head, misses = s3_store.head, [1]

    def head_missing_once(key):
        if misses[0]:
            misses[0] -= 1
            return None
        return real_head(key)

    monkeypatch.setattr(s3_store, "head", head_missing_once)
    assert put(s3_store, payload) == "exists"
    other = tmp_path / "other.log"
    other.write_bytes(b"another writer's bytes")
    misses[0] = 1
    with pytest.raises(StorageConflictError) as conflict:
        s3_store.put(KEY, other, sha256=hashlib.sha256(other.read_bytes()).hexdigest(),
                     size=other.stat().st_size)
    assert sha in conflict.value.message
    assert real_head(KEY).sha256 == sha


# -- configuration ---------------------------------------------------------------------


def test_endpoint_from_aws_endpoint_url_env(s3_config, s3_server, monkeypatch, payload):
    config = s3_config(endpoint_url=None)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.endpoint_url)
    store = S3Store.from_url(config.storage, config)
    assert put(store, payload) == "created"
    assert store.endpoint_url == s3_server.endpoint_url


def test_r2_endpoint_and_urls(s3_config, monkeypatch):
    config = s3_config("r2://logs/ci", endpoint_url=None, r2_account_id="abc123",
                       public_base_url="https://pub.example.dev/")
    store = S3Store.from_url(config.storage, config)
    assert store.endpoint_url == "https://abc123.r2.cloudflarestorage.com"
    assert store.url_for(KEY) == f"r2://logs/ci/{KEY}"
    assert store.public_url_for(KEY) == f"https://pub.example.dev/{KEY}"
    with pytest.raises(ConfigError) as caught:
        S3Store.from_url("r2://logs", s3_config("r2://logs", endpoint_url=None))
    assert "r2_account_id" in caught.value.hint


def test_public_store_sends_acl_private_does_not(s3_config, fault_proxy, payload):
    for public in (True, False):
        config = s3_config(endpoint_url=fault_proxy.endpoint_url, public=public)
        put(S3Store.from_url(config.storage, config), payload)
        sent = [h.get("x-amz-acl") for h in fault_proxy.headers if "x-amz-meta-sha256" in h]
        assert sent[-1] == ("public-read" if public else None)


def test_list_pages_and_secrets_stay_out_of_urls(s3_store, s3_server, payload):
    for n in range(5):
        put(s3_store, payload, key=f"archive/logs/k{n}.log")
    s3_store.list_page_size = 2
    assert [i.key for i in s3_store.list("archive/")] == [f"archive/logs/k{n}.log"
                                                         for n in range(5)]
    shown = s3_store.url_for(KEY) + repr(s3_store) + s3_store.url
    assert s3_server.secret_key not in shown and s3_server.access_key not in shown


def test_boto3_is_not_imported_with_the_module():
    code = ("import sys, log_archiver.storage, log_archiver.storage.s3.store; "
            "print(any(m.split('.')[0] in ('boto3', 'botocore') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


# -- what verification believes: a checksum the server computed, or the bytes ---------


def _plan_and_upload(run_cli, tmp_path):
    plan = run_cli("prepare-upload", "123")
    assert plan.exit_code == 0, plan.stdout
    (tmp_path / "plan.json").write_text(plan.stdout)
    uploaded = run_cli("file-manager", "upload", str(tmp_path / "plan.json"))
    assert uploaded.exit_code == 0, uploaded.stdout
    return {f["local_path"]: f for f in plan.json["files"]}


@pytest.fixture
def sample_logs(workspace):
    from log_archiver.util.samples import write_sample_logs

    return {f.relative_to(workspace / "logs").as_posix(): f.read_bytes()
            for f in write_sample_logs(workspace / "logs", 123)}


def test_our_metadata_is_no_proof_for_an_object_replaced_without_checksum(
        s3_workspace, sample_logs, run_cli, tmp_path):
    """Another client replaces an object with same-size bytes, sends no checksum and keeps
    our x-amz-meta-sha256: the server has no SHA-256 of its own, so the bytes are read
    back, do not match, and the local log is kept."""
    place = s3_workspace
    files = _plan_and_upload(run_cli, tmp_path)
    build = files["builds/123-build.log"]
    full = f"{place.prefix}/{build['remote_path']}"
    client = place.server.bare_client()
    kept_meta = client.head_object(Bucket=place.bucket, Key=full)["Metadata"]
    stored = place.read(build["remote_path"])
    client.put_object(Bucket=place.bucket, Key=full, Body=b"#" + stored[1:], Metadata=kept_meta)
    assert "ChecksumSHA256" not in client.head_object(Bucket=place.bucket, Key=full,
                                                      ChecksumMode="ENABLED")
    result = run_cli("cleanup-local", "123")
    assert result.exit_code == 0, result.stdout
    [kept] = result.json["kept"]
    assert kept["local_path"] == "builds/123-build.log"
    assert "read back" in kept["reason"] and "does not match" in kept["reason"]
    assert (place.root / "logs/builds/123-build.log").read_bytes() == \
        sample_logs["builds/123-build.log"]
    # the other three went, proved by the server's own SHA-256
    assert {log_of(name) for name in result.json["deleted"]} == \
        set(sample_logs) - {"builds/123-build.log"}


def test_no_server_checksum_and_no_read_back_keeps_the_log(s3_workspace, sample_logs,
                                                           run_cli, tmp_path):
    """A gateway that gives no checksum of its own (and cannot be read from): nothing
    proves the bytes, so nothing is deleted, and the output says why."""
    place = s3_workspace
    files = _plan_and_upload(run_cli, tmp_path)
    place.proxy.fail_matching(r"^HEAD ", "strip-checksums")
    build = files["builds/123-build.log"]["remote_path"]
    place.proxy.fail_matching(rf"^GET .*{build.rsplit('/', 1)[1]}", "denied")
    result = run_cli("cleanup-local", "123")
    assert result.exit_code == 0, result.stdout
    [kept] = result.json["kept"]
    assert kept["local_path"] == "builds/123-build.log"
    assert "cannot be verified" in kept["reason"] and "proves nothing" in kept["reason"]
    assert "AccessDenied" in kept["reason"]
    assert (place.root / "logs/builds/123-build.log").exists()
    # the other three were read back whole, hashed and matched before they went
    assert {log_of(name) for name in result.json["deleted"]} == \
        set(sample_logs) - {"builds/123-build.log"}
    assert place.proxy.count(r"^GET .* -> forwarded") >= 3
    assert place.proxy.count(r"^GET .* -> forwarded") >= 3


def test_a_replaced_multipart_object_fails_its_composite_and_the_read_back(
        s3_store, s3_server, tmp_path):
    data = os.urandom(11 * MIB)
    path = tmp_path / "big.log"
    path.write_bytes(data)
    sha = hashlib.sha256(data).hexdigest()
    s3_store.put(KEY, path, sha256=sha, size=len(data))
    full = f"{s3_store.prefix}/{KEY}"
    client = s3_server.client()
    other = data[:-1] + bytes([data[-1] ^ 1])  # flipped: a fixed byte may be the one it was
    upload = client.create_multipart_upload(Bucket=s3_store.bucket, Key=full,
                                            ChecksumAlgorithm="SHA256",
                                            Metadata={"sha256": sha})["UploadId"]
    parts = []
    for number, start in enumerate(range(0, len(other), 5 * MIB), 1):
        body = other[start:start + 5 * MIB]
        reply = client.upload_part(Bucket=s3_store.bucket, Key=full, UploadId=upload,
                                   PartNumber=number, Body=body, ChecksumSHA256=b64(body))
        parts.append({"PartNumber": number, "ETag": reply["ETag"],
                      "ChecksumSHA256": b64(body)})
    client.complete_multipart_upload(Bucket=s3_store.bucket, Key=full, UploadId=upload,
                                     MultipartUpload={"Parts": parts})
    with pytest.raises(ChecksumMismatchError) as caught:
        verify(s3_store, KEY, sha256=sha, size=len(data), local=path)
    assert "read back" in caught.value.message
    info = s3_store.head(KEY)
    assert info.sha256 == sha and not info.sha256_by_server  # only our metadata says so
    assert info.composite is not None and info.composite[1:] == (3, 5 * MIB)


# -- a clock that is off is not a credentials problem ----------------------------------


@pytest.mark.parametrize("fault", ["skewed", "skewed-signature"])
def test_clock_skew_says_the_clock_is_off_and_by_how_much(proxied_store, fault_proxy,
                                                          payload, s3_server, fault):
    from log_archiver.errors import ClockSkewError

    fault_proxy.skew = 3600.0 + 12  # the server's Date: an hour (and a bit) ahead
    fault_proxy.fail_next(1, fault)
    with pytest.raises(ClockSkewError) as caught:
        put(proxied_store, payload)
    error = caught.value
    assert error.type == "clock_skew" and error.retryable is False
    assert "clock is off" in error.message and "1 h 0 min behind" in error.message
    assert "timedatectl set-ntp true" in error.hint and "NTP" in error.hint
    assert "credentials" not in error.hint.replace("credentials are not the problem", "")
    assert_no_secret(error, s3_server)
    fault_proxy.skew = -2 * 3600.0
    fault_proxy.fail_next(1, fault)
    with pytest.raises(ClockSkewError) as ahead:
        put(proxied_store, payload)
    assert "2 h 0 min ahead of" in ahead.value.message


def test_a_signature_error_with_the_clocks_agreeing_is_still_bad_credentials(
        proxied_store, fault_proxy, payload):
    fault_proxy.skew = 3.0
    fault_proxy.fail_next(1, "skewed-signature")
    with pytest.raises(StoragePermissionError) as caught:
        put(proxied_store, payload)
    assert "retrying will not help" in caught.value.hint


def test_clock_skew_in_the_archive_output(s3_workspace, sample_logs, run_cli):
    s3_workspace.proxy.fail_matching(r"^HEAD ", "skewed")
    result = run_cli("archive", "123")  # the output is checked against its schema
    assert result.exit_code == 3, result.stdout
    failures = result.json["upload"]["failed"]
    assert {f["type"] for f in failures} == {"clock_skew"} and len(failures) == 4
    assert all("timedatectl" in f["hint"] for f in failures)

"""The archive workflow on S3 (SeaweedFS through the fault proxy): failures and recovery.

Uploads that fail part way leave a partial archive with every local file kept; fixing
the cause and retrying uploads just what failed; permanent errors are not retried.
"""

from __future__ import annotations

import gzip
import hashlib
import json

import pytest

from log_archiver.archive.pipeline import archive
from log_archiver.config import load_config
from log_archiver.repository import Repository as Context
from log_archiver.util.retry import RetryPolicy
from log_archiver.util.samples import write_sample_logs

FAILING = ("123-build.log", "123-deploy.log")


@pytest.fixture
def logs(workspace):
    files = write_sample_logs(workspace / "logs", 123)
    return {f.relative_to(workspace / "logs").as_posix(): f.read_bytes() for f in files}


def entry_of(workspace):
    return json.loads((workspace / "logs/.archive-index.json").read_text())["archives"][0]


def records(workspace):
    return {log["local_path"]: log for log in entry_of(workspace)["logs"]}


def assert_all_local(workspace, logs):
    for name, data in logs.items():
        assert (workspace / "logs" / name).read_bytes() == data


def deny(place):
    """A bucket policy that, for now, refuses two of the four keys."""
    names = "|".join(name.replace(".", r"\.") for name in FAILING)
    place.proxy.fail_matching(rf"^PUT /{place.bucket}/.*/({names})(\?|$)", "denied")


def test_partial_archive_then_retry_uploads_only_the_failed(s3_workspace, logs, run_cli):
    place = s3_workspace
    deny(place)
    result = run_cli("archive", "123")
    assert result.exit_code == 3, result.stdout
    doc = result.json
    assert doc["status"] == "partial"
    failed = {"builds/123-build.log", "deployments/123-deploy.log"}
    assert set(doc["failed_files"]) == failed
    assert "--retry" in doc["hint"] and "--retry" in result.stderr
    for failure in doc["upload"]["failed"]:
        assert failure["type"] == "storage_permission" and failure["retryable"] is False
        assert "AccessDenied" in failure["message"] and failure["hint"]
    workspace = place.root
    assert_all_local(workspace, logs)
    entry = entry_of(workspace)
    assert entry["partial_archive"] and not entry["upload_complete"]
    for name, log in records(workspace).items():
        if name in failed:
            assert log["upload_status"] == "failed" and log["upload_attempt"] == 1
            assert "AccessDenied" in log["last_error"] and log["upload_timestamp"]
            assert log["cloud_url"] is None
        else:
            assert log["upload_status"] == "verified"
            assert log["cloud_url"] == f"{place.storage}/{log['remote_path']}"
            assert log["public_url"] is None  # no public base URL configured
    # only permanent errors: each denied PUT was tried once, never again
    assert place.proxy.count(r"^PUT .* -> denied") == 2
    stored = place.objects()
    assert len(stored) == 2

    place.proxy.clear_rules()
    before = len(place.uploads())
    retried = run_cli("archive", "123", "--retry")
    assert retried.exit_code == 0, retried.stdout
    assert sorted(retried.json["upload"]["verified"]) == sorted(failed)
    sent = place.uploads()[before:]
    assert len(sent) == 2 and all(any(n in line for n in FAILING) for line in sent)
    now = place.objects()
    assert {k: now[k] for k in stored} == stored  # the first two were not sent again
    entry = entry_of(workspace)
    assert entry["upload_complete"] and not entry["partial_archive"]
    for name, log in records(workspace).items():
        assert log["upload_status"] == "cleaned"
        assert not (workspace / "logs" / name).exists()
        data = place.read(log["remote_path"])
        assert f"sha256:{hashlib.sha256(data).hexdigest()}" == log["checksum"]
        assert (gzip.decompress(data) if log["compressed"] else data) == logs[name]
    assert entry["retry_count"] == 1 + 1  # each failed file took a second attempt


def test_retry_failed_uploads_execute_finishes_a_partial_archive(s3_workspace, logs, run_cli):
    place = s3_workspace
    deny(place)
    assert run_cli("archive", "123").exit_code == 3
    listed = run_cli("retry-failed-uploads", "123")
    assert listed.exit_code == 0
    assert {f["local_path"] for f in listed.json["files"]} == {"builds/123-build.log",
                                                             "deployments/123-deploy.log"}
    assert all(f["local_exists"] and f["upload_status"] == "failed"
               for f in listed.json["files"])
    still = run_cli("retry-failed-uploads", "123", "--execute")
    assert still.exit_code == 3 and still.json["status"] == "partial"
    place.proxy.clear_rules()
    before = len(place.uploads())
    done = run_cli("retry-failed-uploads", "123", "--execute")
    assert done.exit_code == 0, done.stdout
    assert len(done.json["verified"]) == 2 and len(place.uploads()) == before + 2
    entry = entry_of(place.root)
    assert entry["upload_complete"] and not entry["partial_archive"]
    assert {log["upload_attempt"] for log in entry["logs"]
            if log["local_path"].endswith(FAILING)} == {3}
    cleaned = run_cli("cleanup-local", "123")
    assert cleaned.exit_code == 0 and cleaned.json["freed_bytes"] >= sum(map(len,
                                                                           logs.values()))
    assert not any((place.root / "logs" / name).exists() for name in logs)
    assert run_cli("retry-failed-uploads", "123").json["status"] == "noop"


def test_server_stopped_mid_run_then_retry_completes(s3_workspace, logs, monkeypatch):
    """The server goes away after the first upload; a later run finishes the job."""
    place = s3_workspace
    monkeypatch.chdir(place.root)
    config = load_config()  # the workspace's config file and environment, as the CLI
    assert config.storage == place.storage
    ctx = Context(config=config.with_overrides(upload_concurrency=1),
                  policy=RetryPolicy.immediate())
    puts = []

    def stop_after_first_upload(number, request):
        if request.startswith("PUT "):
            puts.append(request)
            if len(puts) == 2:
                place.server.stop()

    place.proxy.before_request = stop_after_first_upload
    try:
        result = archive(ctx, 123, commit=False)
    finally:
        place.proxy.before_request = None
        place.server.start()
    assert result["status"] == "partial"
    assert len(result["failed_files"]) == 3
    for failure in result["upload"]["failed"]:
        assert failure["retryable"] is True and failure["type"].startswith("storage_")
    assert result["upload"]["retries"] == 3 * 3  # each failed file: 3 retries, then gave up
    assert_all_local(place.root, logs)
    stored = place.objects()
    assert len(stored) == 1

    again = archive(ctx, 123, retry=True, commit=False)
    assert again["status"] == "ok", again["errors"]
    assert len(again["upload"]["verified"]) == 3
    assert {k: place.objects()[k] for k in stored} == stored
    assert not any((place.root / "logs" / name).exists() for name in logs)


def test_throttling_and_server_errors_are_retried(s3_workspace, logs, monkeypatch):
    place = s3_workspace
    monkeypatch.chdir(place.root)
    config = load_config().with_overrides(upload_concurrency=1)
    delays = []
    policy = RetryPolicy(sleep=delays.append)
    place.proxy.fail_next(2, "slowdown")
    place.proxy.fail_next(1, "internal", after=3)
    result = archive(Context(config=config, policy=policy), 123, commit=False)
    assert result["status"] == "ok", result
    assert result["upload"]["retries"] == 3
    assert sorted(delays) == [2.0, 10.0, 30.0]  # network backoff once, throttle twice
    assert entry_of(place.root)["retry_count"] == 3
    assert place.proxy.pending_faults() == 0


@pytest.mark.parametrize("problem", ["wrong secret", "missing bucket"])
def test_permanent_errors_are_not_retried_and_touch_nothing(s3_workspace, logs, run_cli,
                                                           monkeypatch, problem):
    place = s3_workspace
    if problem == "wrong secret":
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret-at-all")
        expected = "storage_permission"
    else:
        monkeypatch.setenv("LOG_ARCHIVER_STORAGE", "s3://no-such-bucket-anywhere/x")
        expected = "storage_not_found"
    result = run_cli("archive", "123")
    assert result.exit_code == 3, result.stdout
    failures = result.json["upload"]["failed"]
    assert len(failures) == 4
    for failure in failures:
        assert failure["type"] == expected and failure["retryable"] is False
        assert failure["hint"]
    # one HEAD (then, for the missing bucket, one PUT) per file: nothing retried
    assert len(place.proxy.requests) == (4 if problem == "wrong secret" else 8)
    assert_all_local(place.root, logs)
    assert {log["upload_status"] for log in entry_of(place.root)["logs"]} == {"failed"}
    assert place.objects() == {}


def test_different_object_at_a_key_is_kept_and_force_stores_the_log_beside_it(
        s3_workspace, logs, run_cli):
    place = s3_workspace
    plan = run_cli("prepare-upload", "123").json
    build = next(f for f in plan["files"] if f["local_path"] == "builds/123-build.log")
    place.server.client().put_object(Bucket=place.bucket,
                                     Key=f"{place.prefix}/{build['remote_path']}",
                                     Body=b"another writer's bytes")
    for flags in ((), ("--retry",)):
        refused = run_cli("archive", "123", *flags)
        assert refused.exit_code == 3, refused.stdout
        [failure] = refused.json["upload"]["failed"]
        assert failure["local_path"] == "builds/123-build.log"
        assert failure["type"] == "storage_conflict" and "--force" in failure["hint"]
        assert place.read(build["remote_path"]) == b"another writer's bytes"
        assert (place.root / "logs/builds/123-build.log").read_bytes() == logs[
            "builds/123-build.log"]
    forced = run_cli("archive", "123", "--force")
    assert forced.exit_code == 0, forced.stdout
    assert forced.json["upload"]["replaced"] == ["builds/123-build.log"]
    # --force never destroys the only copy of any bytes: the other object stays, recorded
    assert place.read(build["remote_path"]) == b"another writer's bytes"
    entry = entry_of(place.root)
    record = next(log for log in entry["logs"] if log["local_path"] == "builds/123-build.log")
    assert record["remote_path"] != build["remote_path"]
    assert place.read(record["remote_path"]) == logs["builds/123-build.log"]
    [kept] = entry["kept_objects"]
    assert kept["remote_path"] == build["remote_path"] and kept["reason"] == "other_object_at_key"
    assert kept["size_bytes"] == len(b"another writer's bytes")


def test_a_timeout_is_retried_with_a_longer_timeout(s3_workspace, logs, monkeypatch):
    """Timeouts: the next attempt waits twice as long (a slow server, answering in 1.4 s)."""
    from log_archiver.archive.prepare import prepare
    from log_archiver.archive.upload import upload_records
    from log_archiver.storage.s3.store import S3Store
    from log_archiver.storage.wrappers import wrapped

    place = s3_workspace
    monkeypatch.chdir(place.root)
    config = load_config().with_overrides(upload_concurrency=1)
    ctx = Context(config=config, policy=RetryPolicy.immediate())
    prepare(ctx, 123)
    store = S3Store.from_url(config.storage, config).with_timeout(1.0)
    place.proxy.delay = 1.2  # past 1 s, well inside 2 s on a loaded machine
    place.proxy.fail_next(2, "slow")  # the first HEAD, and the first retry's HEAD
    ctx.store = wrapped(store, ctx.policy)  # as Repository.store wraps every store
    report = upload_records(ctx, 123)
    assert report.failed == [] and len(report.verified) == 4
    # 1 s timed out; 2 s was enough: one retry (with the same timeout, two, then luck)
    assert report.retries == 1
    assert place.proxy.count(r"^HEAD .* -> slow") == 2

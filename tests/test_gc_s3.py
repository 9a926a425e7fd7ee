"""gc, orphans and legal holds against a real S3 server (SeaweedFS ``weed mini``)."""

from __future__ import annotations

import os
import secrets
import time

import pytest

from lifecycle_scene import age, archive, index_of, keys_of, set_retention
from s3_fixtures import S3Workspace


def objects(place) -> set[str]:
    return set(place.objects())


def test_a_refused_delete_does_not_block_the_rest_and_ends_partial(s3_workspace, run_cli):
    place = s3_workspace
    set_retention(place.root, {"default": "30d"})
    for issue in (71, 72, 73):
        archive(run_cli, place.root, issue)
    age(place.root, 71, 72, 73)
    refused = keys_of(place.root, 72)
    place.proxy.fail_matching(rf"^DELETE /{place.bucket}/.*/archive/logs/\d+/\d+/72/", "denied")
    result = run_cli("gc")
    assert result.exit_code == 3, result.stdout
    doc = result.json
    assert doc["status"] == "partial"
    assert {item["key"] for item in doc["failed"]} == refused
    assert all(item["type"] == "storage_permission" for item in doc["failed"])
    assert {item["issue_number"] for item in doc["deleted"]} == {71, 73}
    assert objects(place) == refused  # every other object went
    assert "`log-archiver gc` again" in doc["hint"] and "failed" in result.stderr
    assert all("expiring" in log for log in index_of(place.root).find(72)["logs"])
    assert run_cli("validate-index", "-q").exit_code == 0

    place.proxy.clear_rules()
    again = run_cli("gc", "-q")
    assert again.exit_code == 0, again.stdout
    assert {item["key"] for item in again.json["deleted"]} == refused
    assert objects(place) == set()
    for log in index_of(place.root).find(72)["logs"]:
        assert log["upload_status"] == "expired" and "expiring" not in log


def test_each_object_is_deleted_once_across_a_killed_gc_and_its_rerun(s3_workspace, run_cli):
    import subprocess

    from conftest import script

    place = s3_workspace
    set_retention(place.root, {"default": "30d"})
    for issue in range(101, 111):
        archive(run_cli, place.root, issue)
    age(place.root, *range(101, 111))
    env = {**os.environ, "LOG_ARCHIVER_TEST_GC_KILL": "deleted:7"}
    killed = subprocess.run([*script("log-archiver"), "gc", "-q"], cwd=place.root, env=env,
                            capture_output=True, text=True, timeout=120)
    assert killed.returncode == -9
    env.pop("LOG_ARCHIVER_TEST_GC_KILL")
    rerun = subprocess.run([*script("log-archiver"), "gc", "-q"], cwd=place.root, env=env,
                           capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stdout
    assert objects(place) == set()
    deletes = [line.split(" -> ")[0] for line in place.proxy.requests
               if line.startswith("DELETE ") and "forwarded" in line]
    assert len(deletes) == 40 and len(set(deletes)) == 40  # no object deleted twice


def stray(place, key: str, body: bytes = b"stray bytes\n") -> None:
    place.server.client().put_object(Bucket=place.bucket, Key=f"{place.prefix}/{key}",
                                     Body=body)


def test_orphans_on_s3_with_a_grace_period(s3_workspace, run_cli):
    place = s3_workspace
    archive(run_cli, place.root, 81)
    archive(run_cli, place.root, 82)
    # the archiver identity may not read the bucket's Object Lock setting: partial, held
    assert run_cli("hold", "82", "--reason", "keep for the audit", "-q").exit_code in (0, 3)
    assert index_of(place.root).find(82)["hold"]
    named = keys_of(place.root, 81, 82)
    orphan = "archive/logs/2025/03/81/left-by-a-killed-run.log"
    held_stray = "archive/logs/2025/03/82/unnamed.log"
    stray(place, orphan)
    stray(place, held_stray)
    stray(place, "archive/logs/2025/3/81/not-our-layout.log")
    stray(place, "archive/logs/2025/03/0081/zero-padded.log")
    young = run_cli("gc", "--orphans", "-q")
    assert young.json["status"] == "noop" and young.json["orphans"] == []
    assert {(k["key"], k["reason"]) for k in young.json["kept"]} == {
        (orphan, "within_grace"), (held_stray, "held")}
    assert young.json["not_in_layout"] == 2
    time.sleep(1.1)
    dry = run_cli("gc", "--orphans", "--older-than", "1s", "--dry-run", "-q")
    assert [o["key"] for o in dry.json["orphans"]] == [orphan]
    assert dry.json["orphans"][0]["bytes"] == len(b"stray bytes\n")
    assert dry.json["orphans"][0]["age_seconds"] >= 1
    assert orphan in objects(place)
    run = run_cli("gc", "--orphans", "--older-than", "1s")
    assert run.exit_code == 0 and [o["key"] for o in run.json["orphans"]] == [orphan]
    assert "orphaned" in run.stderr
    left = objects(place)
    assert orphan not in left and held_stray in left and named <= left


def test_orphans_on_the_file_store_with_a_grace_period(workspace, run_cli):
    archive(run_cli, workspace, 83)
    store = workspace.parent / "store"
    orphan = store / "archive/logs/2025/03/83/orphan.log"
    fresh = store / "archive/logs/2025/03/84/fresh.log"
    for path in (orphan, fresh):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * 10)
    old = time.time() - 2 * 86_400
    os.utime(orphan, (old, old))
    result = run_cli("gc", "--orphans", "-q")
    assert [o["key"] for o in result.json["orphans"]] == ["archive/logs/2025/03/83/orphan.log"]
    assert result.json["orphans"][0]["age_seconds"] >= 2 * 86_400 - 5
    assert not orphan.exists() and fresh.exists()
    assert all((store / key).exists() for key in keys_of(workspace, 83))
    bad = run_cli("gc", "--orphans", "--older-than", "soon")
    assert bad.exit_code == 2 and "soon" in bad.json["errors"][0]["message"]


@pytest.fixture
def locked_workspace(workspace, s3_env, fault_proxy, monkeypatch):
    """A workspace on a bucket created with Object Lock, as the admin identity (placing a
    legal hold needs s3:PutObjectLegalHold, which the fixture's archiver identity lacks)."""
    bucket = f"locked-{secrets.token_hex(4)}"
    s3_env.client().create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    place = S3Workspace(workspace, s3_env, fault_proxy, bucket, "team/logs")
    place.write_config()
    monkeypatch.setenv("LOG_ARCHIVER_STORAGE", place.storage)
    s3_env.use_credentials(monkeypatch, s3_env.admin_key, s3_env.admin_secret)
    return place


def legal_hold(place, key: str) -> str:
    reply = place.server.client().get_object_legal_hold(Bucket=place.bucket,
                                                        Key=f"{place.prefix}/{key}")
    return reply["LegalHold"]["Status"]


def test_hold_places_s3_legal_holds_where_the_bucket_has_object_lock(locked_workspace,
                                                                    run_cli):
    place = locked_workspace
    archive(run_cli, place.root, 5)
    stored = keys_of(place.root, 5)
    result = run_cli("hold", "5", "--reason", "litigation 2025-17")
    assert result.exit_code == 0, result.stdout
    doc = result.json
    assert doc["object_lock"]["enabled"] and set(doc["legal_holds"]) == stored
    assert doc["hold"]["reason"] == "litigation 2025-17" and doc["hold"]["by"]
    assert all(legal_hold(place, key) == "ON" for key in stored)
    assert index_of(place.root).find(5)["hold"]["reason"] == "litigation 2025-17"
    # not even another tool can remove a held version
    client = place.server.client()
    key = f"{place.prefix}/{sorted(stored)[0]}"
    version = client.head_object(Bucket=place.bucket, Key=key)["VersionId"]
    with pytest.raises(client.exceptions.ClientError):
        client.delete_object(Bucket=place.bucket, Key=key, VersionId=version)

    released = run_cli("release", "5", "-q")
    assert released.exit_code == 0 and set(released.json["legal_holds"]) == stored
    assert released.json["hold"]["reason"] == "litigation 2025-17"
    assert all(legal_hold(place, key) == "OFF" for key in stored)
    assert index_of(place.root).find(5)["hold"] is None
    noop = run_cli("release", "5", "-q")
    assert noop.json["changed"] is False


def test_hold_on_a_bucket_without_object_lock_says_so(s3_workspace, run_cli, monkeypatch):
    place = s3_workspace
    place.server.use_credentials(monkeypatch, place.server.admin_key, place.server.admin_secret)
    archive(run_cli, place.root, 6)
    result = run_cli("hold", "6", "--reason", "keep")
    assert result.exit_code == 0, result.stdout
    lock = result.json["object_lock"]
    assert lock["supported"] and not lock["enabled"]
    assert "has no Object Lock" in lock["message"] and "index only" in lock["message"]
    assert result.json["legal_holds"] == [] and "index only" in result.stderr
    again = run_cli("hold", "6", "--reason", "keep", "-q")
    assert again.json["status"] == "noop" and not again.json["changed"]


def test_hold_when_the_lock_setting_cannot_be_read_is_partial(workspace, s3_env, fault_proxy,
                                                              monkeypatch, run_cli):
    bucket = f"locked-{secrets.token_hex(4)}"
    s3_env.client().create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    place = S3Workspace(workspace, s3_env, fault_proxy, bucket, "team/logs")
    place.write_config()
    monkeypatch.setenv("LOG_ARCHIVER_STORAGE", place.storage)
    archive(run_cli, place.root, 8)  # the archiver identity: no Object Lock permissions
    result = run_cli("hold", "8", "--reason", "keep")
    assert result.exit_code == 3, result.stdout
    assert result.json["errors"][0]["type"] == "storage_permission"
    assert "cannot tell" in result.json["object_lock"]["message"]
    assert index_of(place.root).find(8)["hold"]["reason"] == "keep"  # the index holds it


def test_hold_on_the_file_store_and_bad_input(workspace, run_cli):
    archive(run_cli, workspace, 9)
    result = run_cli("hold", "9", "--reason", "keep")
    assert result.exit_code == 0
    assert not result.json["object_lock"]["supported"]
    assert "no object lock" in result.json["object_lock"]["message"]
    missing = run_cli("hold", "99", "--reason", "keep")
    assert missing.exit_code == 1 and missing.json["errors"][0]["type"] == "not_archived"
    blank = run_cli("hold", "9", "--reason", "  ")
    assert blank.exit_code == 2
    no_reason = run_cli("hold", "9")
    assert no_reason.exit_code == 2

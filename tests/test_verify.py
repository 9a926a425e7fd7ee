"""verify against both stores: a flipped byte, a truncated, a missing and an
undecompressable object are each found (exit 1, with the command that repairs them), a
whole archive passes, and nothing in the index or the store changes, byte for byte."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from pathlib import Path

import pytest

from log_archiver.util.samples import write_sample_logs

ISSUE = 42
BUILD = f"builds/{ISSUE}-build.log"
SESSION = f"sessions/session-{ISSUE}-2025-01-15.md"  # the big one: stored gzip


class LocalPlace:
    """The file:// store of ``workspace``."""

    def __init__(self, root: Path):
        self.root = root

    def read(self, key: str) -> bytes:
        return (self.root / key).read_bytes()

    def write(self, key: str, data: bytes) -> None:
        (self.root / key).write_bytes(data)  # in place, as a bit rot or a careless hand

    def delete(self, key: str) -> None:
        (self.root / key).unlink()

    def snapshot(self) -> dict:
        return {p.relative_to(self.root).as_posix(): p.read_bytes()
                for p in sorted(self.root.rglob("*")) if p.is_file()}


class S3Place:
    """The bucket of ``s3_workspace``, changed behind the archive's back by an admin
    client that sends no checksum and copies the object's metadata (its claims)."""

    def __init__(self, workspace):
        self.ws = workspace
        self.client = workspace.server.bare_client()

    def _key(self, key: str) -> str:
        return f"{self.ws.prefix}/{key}"

    def read(self, key: str) -> bytes:
        return self.ws.read(key)

    def write(self, key: str, data: bytes) -> None:
        head = self.client.head_object(Bucket=self.ws.bucket, Key=self._key(key))
        self.client.put_object(Bucket=self.ws.bucket, Key=self._key(key), Body=data,
                               Metadata=head.get("Metadata") or {})

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.ws.bucket, Key=self._key(key))

    def snapshot(self) -> dict:
        return {key: (info["etag"], self.read(key)) for key, info in self.ws.objects().items()}


@pytest.fixture(params=["file", "s3"])
def place(request, workspace, tmp_path):
    if request.param == "file":
        return LocalPlace(tmp_path / "store")
    return S3Place(request.getfixturevalue("s3_workspace"))


@pytest.fixture
def archived(place, workspace, run_cli):
    write_sample_logs(workspace / "logs", ISSUE)
    result = run_cli("archive", ISSUE, "--no-commit")
    assert result.exit_code == 0, result.stdout
    return records(workspace)


def records(workspace) -> dict:
    index = json.loads((workspace / "logs/.archive-index.json").read_text())
    return {log["local_path"]: log for log in index["archives"][0]["logs"]}


def index_bytes(workspace) -> bytes:
    return (workspace / "logs/.archive-index.json").read_bytes()


def verify(run_cli, workspace, place, *args):
    """Run verify; assert it changed neither the index nor the store."""
    before = (index_bytes(workspace), place.snapshot())
    result = run_cli("verify", *args)
    assert (index_bytes(workspace), place.snapshot()) == before
    return result


def kinds(result) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for item in result.json["findings"]:
        found.setdefault(item["file"] or item["remote_path"], set()).add(item["kind"])
    return found


def test_a_whole_archive_passes(place, archived, workspace, run_cli):
    result = verify(run_cli, workspace, place)
    assert result.exit_code == 0, result.stdout
    doc = result.json
    assert doc["status"] == "ok" and doc["findings"] == [] and doc["errors"] == []
    assert doc["logs"] == 4 and doc["mode"] == "quick" and doc["deep"] == 0
    assert sum(doc["proofs"].values()) == 4
    if isinstance(place, S3Place):  # single PUTs with ChecksumSHA256: the server's own
        assert doc["proofs"] == {"server_sha256": 4}
    else:
        assert doc["proofs"] == {"store_record": 4}
    deep = verify(run_cli, workspace, place, "--deep")
    assert deep.exit_code == 0, deep.stdout
    assert deep.json["deep"] == 4 and deep.json["proofs"] == {"read_back": 4}


def test_a_flipped_byte_is_found_without_deep(place, archived, workspace, run_cli):
    key = archived[BUILD]["remote_path"]
    data = bytearray(place.read(key))
    data[len(data) // 2] ^= 0x01
    place.write(key, bytes(data))
    result = verify(run_cli, workspace, place)
    assert result.exit_code == 1, result.stdout
    assert kinds(result) == {BUILD: {"wrong_checksum"}}
    found = result.json["findings"][0]
    assert found["issue"] == ISSUE and found["remote_path"] == key
    assert hashlib.sha256(data).hexdigest() in found["message"]
    # the log was deleted locally after it was verified: only another copy can restore it
    assert found["repair"] is None and "another copy of the store" in found["hint"]
    assert result.json["errors"][0]["type"] == "checksum_mismatch"
    assert "wrong checksum" in result.stderr
    assert kinds(verify(run_cli, workspace, place, "--deep")) == {BUILD: {"wrong_checksum"}}


def test_a_truncated_object_is_found(place, archived, workspace, run_cli):
    key = archived[BUILD]["remote_path"]
    place.write(key, place.read(key)[:-100])
    result = verify(run_cli, workspace, place)
    assert result.exit_code == 1
    assert kinds(result) == {BUILD: {"wrong_size"}}
    assert str(archived[BUILD]["size_bytes"] - 100) in result.json["findings"][0]["message"]


def test_a_missing_object_is_found_with_its_repair_while_a_local_copy_is_left(
        place, archived, workspace, run_cli):
    key = archived[BUILD]["remote_path"]
    place.delete(key)
    result = verify(run_cli, workspace, place)
    assert result.exit_code == 1
    assert kinds(result) == {BUILD: {"missing"}}
    assert result.json["findings"][0]["repair"] is None  # cleanup deleted the local copy
    (workspace / "logs" / BUILD).parent.mkdir(parents=True, exist_ok=True)
    (workspace / "logs" / BUILD).write_bytes(b"the log, put back")
    again = verify(run_cli, workspace, place, str(ISSUE))
    found = again.json["findings"][0]
    assert found["repair"] == (f"log-archiver update-file-status {ISSUE} {BUILD} pending && "
                               f"log-archiver archive {ISSUE} --retry")
    assert again.json["errors"][0]["type"] == "storage_not_found"
    assert found["repair"] in again.json["errors"][0]["hint"]


def test_a_damaged_compressed_object_is_found_by_deep(place, archived, workspace, run_cli):
    record = archived[SESSION]
    assert record["compressed"] and record["compression"] == "gzip"
    key = record["remote_path"]
    packed = bytearray(place.read(key))
    assert gzip.decompress(bytes(packed))  # whole before
    packed[len(packed) // 3] ^= 0xFF
    place.write(key, bytes(packed))
    result = verify(run_cli, workspace, place, "--deep")
    assert result.exit_code == 1
    assert kinds(result) == {SESSION: {"wrong_checksum"}}


def replace_through_the_store(workspace, key: str, data: bytes, tmp_path) -> None:
    """Overwrite an object the proper way (the store records its new checksum)."""
    from log_archiver.config import load_config
    from log_archiver.storage import open_store

    config = load_config()
    source = tmp_path / "replacement"
    source.write_bytes(data)
    open_store(config.storage, config).put(key, source, sha256=hashlib.sha256(data).hexdigest(),
                                           size=len(data), overwrite=True)


def test_an_object_that_is_not_gzip_but_recorded_so_is_undecompressable(
        place, archived, workspace, run_cli, tmp_path):
    """The index agrees with the object's bytes (a hand repair recorded them), yet they
    are not the compressed log: only decompressing tells."""
    record = archived[SESSION]
    junk = b"not gzip at all\n" * 100
    replace_through_the_store(workspace, record["remote_path"], junk, tmp_path)
    path = workspace / "logs/.archive-index.json"
    index = json.loads(path.read_text())
    entry = index["archives"][0]
    for log in entry["logs"]:
        if log["local_path"] == SESSION:
            log["size_bytes"] = len(junk)
            log["checksum"] = "sha256:" + hashlib.sha256(junk).hexdigest()
            log.pop("blocks", None)  # the junk has no block table (validate-index says so)
    from log_archiver.model.records import recompute_entry

    recompute_entry(entry)
    path.write_text(json.dumps(index, indent=2))
    quick = verify(run_cli, workspace, place)
    assert quick.exit_code == 0, quick.stdout  # size and checksum agree with the index
    result = verify(run_cli, workspace, place, "--deep")
    assert result.exit_code == 1
    assert kinds(result) == {SESSION: {"undecompressable"}}


def test_unindexed_objects_and_broken_rules_are_found(place, archived, workspace, run_cli,
                                                      tmp_path):
    key = archived[BUILD]["remote_path"]
    stray = key.rsplit("/", 1)[0] + "/stray.log"
    if isinstance(place, LocalPlace):
        (place.root / stray).write_bytes(b"stray")
    else:
        place.client.put_object(Bucket=place.ws.bucket, Key=place._key(stray), Body=b"stray")
    path = workspace / "logs/.archive-index.json"
    index = json.loads(path.read_text())
    index["archives"][0]["total_logs"] = 9
    path.write_text(json.dumps(index, indent=2))
    result = verify(run_cli, workspace, place)
    assert result.exit_code == 1
    by_kind = {f["kind"]: f for f in result.json["findings"]}
    assert set(by_kind) == {"index_rule", "unindexed"}
    assert by_kind["unindexed"]["remote_path"] == stray
    assert by_kind["unindexed"]["repair"] == f"log-archiver archive {ISSUE} --reindex-only"
    assert "total_logs" in by_kind["index_rule"]["message"]
    assert by_kind["index_rule"]["issue"] == ISSUE
    assert result.json["logs"] == 4  # the entry's logs were still checked


def test_sample_reads_back_a_random_share_and_a_seed_repeats_it(place, archived, workspace,
                                                               run_cli):
    first = verify(run_cli, workspace, place, "--sample", "50")
    assert first.exit_code == 0, first.stdout
    sample = first.json["sample"]
    assert sample["percent"] == 50 and sample["logs"] == 2 and first.json["deep"] == 2
    assert f"--seed {sample['seed']}" in first.stderr
    seeds = {verify(run_cli, workspace, place, "--sample", "50").json["sample"]["seed"]
             for _ in range(3)}
    assert len(seeds | {sample["seed"]}) > 1  # different each run
    again = verify(run_cli, workspace, place, "--sample", "50", "--seed", str(sample["seed"]))
    assert again.json["sample"] == sample  # the same logs read back
    assert len(sample["keys"]) == 2
    assert set(sample["keys"]) <= {log["remote_path"] for log in archived.values()}


@pytest.mark.parametrize("args", [["--deep", "--sample", "5"], ["--sample", "0"],
                                  ["--sample", "101"], ["--seed", "3"], ["abc"]])
def test_bad_arguments_are_usage_errors(workspace, run_cli, args):
    result = run_cli("verify", *args)
    assert result.exit_code == 2, result.stdout
    assert result.json["errors"][0]["type"] == "usage"


def test_an_issue_with_no_entry_is_an_error(place, archived, workspace, run_cli):
    result = verify(run_cli, workspace, place, "7")
    assert result.exit_code == 1
    assert result.json["errors"][0]["type"] == "not_archived"
    assert "7" in result.json["errors"][0]["message"]


def test_verify_leaves_a_line_in_the_audit_trail(workspace, run_cli, tmp_path):
    write_sample_logs(workspace / "logs", ISSUE)
    assert run_cli("archive", ISSUE, "--no-commit").exit_code == 0
    os.unlink(tmp_path / "store" / records(workspace)[BUILD]["remote_path"])
    assert run_cli("verify").exit_code == 1
    lines = run_cli("audit", "--op", "verify").json["lines"]
    assert len(lines) == 1
    assert lines[0]["outcome"] == "error" and lines[0]["details"]["findings"] == 1
    assert lines[0]["details"]["counts"] == {"missing": 1}

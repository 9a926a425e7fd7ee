"""One contract for every store: the file:// LocalStore and the s3:// S3Store (SeaweedFS).

Each test runs once per backend; a backend passes only if it keeps every promise of
``log_archiver.storage.base.Store``.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from log_archiver.errors import (
    ChecksumMismatchError,
    StorageConflictError,
    StorageError,
    StorageNotFoundError,
)
from log_archiver.storage import verify
from log_archiver.storage.descriptions import XATTR
from log_archiver.storage.local import LocalStore

MIB = 1 << 20
KEY = "archive/logs/2025/01/123/build.log.gz"


@pytest.fixture(params=["file", "s3"])
def store(request, tmp_path):
    if request.param == "file":
        return LocalStore(tmp_path / "store", public_base_url="https://logs.example.com/a")
    return request.getfixturevalue("s3_store")


def write(path: Path, data: bytes) -> tuple[Path, str, int]:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest(), len(data)


@pytest.fixture
def payload(tmp_path):
    return write(tmp_path / "src" / "build.log.gz", b"line one\nline two\n" * 1000)


def test_put_head_get_round_trip(store, payload, tmp_path):
    path, sha, size = payload
    assert store.put(KEY, path, sha256=sha, size=size) == "created"
    info = store.head(KEY)
    assert (info.key, info.size, info.sha256) == (KEY, size, sha)
    dest = tmp_path / "out" / "copy.gz"
    dest.parent.mkdir()
    store.get(KEY, dest)
    assert dest.read_bytes() == path.read_bytes()
    assert [p.name for p in dest.parent.iterdir()] == ["copy.gz"]  # no temp file left


def test_identical_put_is_exists(store, payload):
    path, sha, size = payload
    store.put(KEY, path, sha256=sha, size=size)
    assert store.put(KEY, path, sha256=sha, size=size) == "exists"
    assert store.put(KEY, path, sha256=sha, size=size, overwrite=True) == "exists"


def test_different_object_conflicts_and_stays(store, payload, tmp_path):
    path, sha, size = payload
    store.put(KEY, path, sha256=sha, size=size)
    other, other_sha, other_size = write(tmp_path / "other.gz", b"something else entirely")
    with pytest.raises(StorageConflictError) as caught:
        store.put(KEY, other, sha256=other_sha, size=other_size)
    assert store.url_for(KEY) in caught.value.message
    assert sha in caught.value.message and other_sha in caught.value.message
    assert "--force" in caught.value.hint
    assert caught.value.retryable is False
    assert store.head(KEY).sha256 == sha
    dest = tmp_path / "back"
    store.get(KEY, dest)
    assert dest.read_bytes() == path.read_bytes()


def test_overwrite_replaces(store, payload, tmp_path):
    path, sha, size = payload
    store.put(KEY, path, sha256=sha, size=size)
    other, other_sha, other_size = write(tmp_path / "other.gz", b"newer bytes")
    assert store.put(KEY, other, sha256=other_sha, size=other_size, overwrite=True) == "replaced"
    assert store.head(KEY).sha256 == other_sha
    dest = tmp_path / "back"
    store.get(KEY, dest)
    assert dest.read_bytes() == b"newer bytes"


def test_wrong_sha256_is_rejected_and_nothing_stored(store, payload):
    path, sha, size = payload
    wrong = hashlib.sha256(b"not these bytes").hexdigest()
    with pytest.raises(ChecksumMismatchError):
        store.put(KEY, path, sha256=wrong, size=size)
    assert store.head(KEY) is None
    assert list(store.list("")) == []


def test_head_of_missing_key_is_none(store):
    assert store.head("archive/logs/none/here.log") is None


def test_get_of_missing_key_is_not_found(store, tmp_path):
    dest = tmp_path / "never.log"
    with pytest.raises(StorageNotFoundError) as caught:
        store.get("archive/logs/none/here.log", dest)
    assert isinstance(caught.value, FileNotFoundError)
    assert isinstance(caught.value, StorageError)
    assert "archive/logs/none/here.log" in caught.value.message
    assert list(tmp_path.iterdir()) == []  # neither the file nor a temp file


def test_list_by_prefix(store, tmp_path):
    keys = ["archive/logs/2025/01/12/a.log", "archive/logs/2025/01/12/b.log",
            "archive/logs/2025/01/123/c.log", "archive/logs/2025/02/7/d.log"]
    for number, key in enumerate(keys):
        path, sha, size = write(tmp_path / f"f{number}", b"x" * (number + 1))
        store.put(key, path, sha256=sha, size=size)
    listed = {info.key: info.size for info in store.list("archive/logs/2025/01/12/")}
    assert listed == {keys[0]: 1, keys[1]: 2}
    assert {info.key for info in store.list("archive/logs/2025/01/")} == set(keys[:3])
    assert {info.key for info in store.list("")} == set(keys)
    assert list(store.list("archive/logs/1999/")) == []


def test_delete_is_idempotent(store, payload):
    path, sha, size = payload
    store.put(KEY, path, sha256=sha, size=size)
    store.delete(KEY)
    assert store.head(KEY) is None
    store.delete(KEY)
    store.delete("archive/logs/never/was.log")
    assert store.put(KEY, path, sha256=sha, size=size) == "created"


def test_url_forms(store):
    url = store.url_for(KEY)
    if isinstance(store, LocalStore):
        assert url.startswith("file:///") and url.endswith("/" + KEY)
        assert store.public_url_for(KEY) == f"https://logs.example.com/a/{KEY}"
    else:
        assert url == f"s3://{store.bucket}/some/prefix/{KEY}"
        assert store.url == f"s3://{store.bucket}/some/prefix"
        assert store.public_url_for(KEY) is None


def test_verify_ok_and_mismatch(store, payload):
    path, sha, size = payload
    store.put(KEY, path, sha256=sha, size=size)
    assert verify(store, KEY, sha256=sha, size=size).sha256 == sha
    other = hashlib.sha256(b"other").hexdigest()
    with pytest.raises(ChecksumMismatchError) as caught:
        verify(store, KEY, sha256=other, size=size)
    assert sha in caught.value.message and other in caught.value.message
    with pytest.raises(ChecksumMismatchError):
        verify(store, KEY, sha256=sha, size=size + 1)
    with pytest.raises(StorageNotFoundError):
        verify(store, "archive/logs/none/here.log", sha256=sha, size=size)


def test_large_file_multipart_round_trip(store, tmp_path):
    if not isinstance(store, LocalStore):
        assert store.multipart_threshold == 5 * MIB  # so 12 MiB really goes multipart
    data = os.urandom(12 * MIB + 12345)
    path, sha, size = write(tmp_path / "big.log", data)
    assert store.put(KEY, path, sha256=sha, size=size) == "created"
    assert verify(store, KEY, sha256=sha, size=size).size == size
    assert store.put(KEY, path, sha256=sha, size=size) == "exists"
    dest = tmp_path / "big.copy"
    store.get(KEY, dest)
    assert hashlib.sha256(dest.read_bytes()).hexdigest() == sha
    flipped = data[:-1] + bytes([data[-1] ^ 1])  # a fixed last byte may be the one it was
    different, other_sha, other_size = write(tmp_path / "big2.log", flipped)
    with pytest.raises(StorageConflictError):
        store.put(KEY, different, sha256=other_sha, size=other_size)
    assert store.head(KEY).sha256 == sha


def test_metadata_and_time_are_kept_with_the_object(store, payload, tmp_path):
    path, sha, size = payload
    meta = {"log-type": "build", "local-path": "builds/123-build.log"}
    assert store.put(KEY, path, sha256=sha, size=size, metadata=meta) == "created"
    info = store.head(KEY)
    assert {name: info.metadata[name] for name in meta} == meta
    assert info.metadata["sha256"] == sha  # the checksum it was stored with, always
    assert abs(info.modified - time.time()) < 300
    [listed] = store.list("archive/")
    assert listed.modified == pytest.approx(info.modified, abs=2)
    # an object that already matches keeps what it was stored with
    assert store.put(KEY, path, sha256=sha, size=size, metadata={"log-type": "debug"}) == \
        "exists"
    assert store.head(KEY).metadata["log-type"] == "build"
    # a replacement brings its own, and nothing of the old one stays
    other, other_sha, other_size = write(tmp_path / "other.gz", b"newer bytes")
    store.put(KEY, other, sha256=other_sha, size=other_size, overwrite=True,
              metadata={"log-type": "debug"})
    replaced = store.head(KEY).metadata
    assert replaced["log-type"] == "debug" and "local-path" not in replaced
    assert replaced["sha256"] == other_sha
    store.delete(KEY)
    store.put(KEY, path, sha256=sha, size=size)
    assert "log-type" not in store.head(KEY).metadata


@pytest.mark.parametrize("meta", [{"Local-Path": "x/ü"}, {"bad name": "x"}, {"a": "line\nbreak"}])
def test_metadata_must_be_ascii_names_and_values(store, payload, meta):
    from log_archiver.errors import UsageError

    path, sha, size = payload
    with pytest.raises(UsageError):
        store.put(KEY, path, sha256=sha, size=size, metadata=meta)
    assert store.head(KEY) is None


# -- what a HEAD says, what verification proves ---------------------------------------


def replace_behind_its_back(store, request, key: str, data: bytes) -> None:
    """Put other bytes at ``key`` as a careless writer would: the store's record of the
    old bytes stays (the file:// sidecar, its stamp included; our ``x-amz-meta-sha256``,
    copied by a client that sends no checksum of its own)."""
    if isinstance(store, LocalStore):
        target = store.root / key
        before = target.stat()
        while True:  # until the ctime moves: a coarse clock may give the put's stamp
            with open(target, "r+b") as handle:
                handle.write(data)
            os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
            if target.stat().st_ctime_ns != before.st_ctime_ns:
                return
            time.sleep(0.001)
    server = request.getfixturevalue("s3_server")
    full = f"{store.prefix}/{key}"
    client = server.bare_client()
    metadata = client.head_object(Bucket=store.bucket, Key=full)["Metadata"]
    client.put_object(Bucket=store.bucket, Key=full, Body=data, Metadata=metadata)


def test_a_flipped_byte_fails_get_and_leaves_nothing(store, payload, tmp_path, request):
    path, sha, size = payload
    store.put(KEY, path, sha256=sha, size=size)
    data = path.read_bytes()
    replace_behind_its_back(store, request, KEY, bytes([data[0] ^ 0x01]) + data[1:])
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(ChecksumMismatchError) as caught:
        store.get(KEY, out / "copy.gz")
    assert store.url_for(KEY) in caught.value.message and sha in caught.value.message
    assert list(out.iterdir()) == []  # neither the file nor a temp file


def test_head_describes_and_verify_proves(store, payload, request):
    path, sha, size = payload
    store.put(KEY, path, sha256=sha, size=size)
    data = path.read_bytes()
    replace_behind_its_back(store, request, KEY, b"X" + data[1:])
    info = store.head(KEY)
    # The HEAD reads no bytes: it repeats what was recorded when the object was written.
    assert (info.size, info.sha256, info.sha256_by_server) == (size, sha, False)
    with pytest.raises(ChecksumMismatchError) as caught:
        verify(store, KEY, sha256=sha, size=size)
    assert "read back" in caught.value.message
    assert hashlib.sha256(b"X" + data[1:]).hexdigest() in caught.value.message


def test_verification_says_what_proved_it(store, tmp_path):
    small, small_sha, small_size = write(tmp_path / "small.log", b"small\n" * 100)
    big, big_sha, big_size = write(tmp_path / "big.log", os.urandom(11 * MIB))
    store.put(KEY, small, sha256=small_sha, size=small_size)
    store.put("archive/logs/2025/01/123/big.log", big, sha256=big_sha, size=big_size)
    proved = verify(store, KEY, sha256=small_sha, size=small_size)
    with_local = verify(store, "archive/logs/2025/01/123/big.log", sha256=big_sha,
                        size=big_size, local=big)
    without = verify(store, "archive/logs/2025/01/123/big.log", sha256=big_sha, size=big_size)
    if isinstance(store, LocalStore):
        # the process that wrote the objects hashed what it wrote, and they are unchanged;
        # any other process (another instance) reads them back
        assert (proved.proof, with_local.proof, without.proof) == ("checked_write",) * 3
        elsewhere = LocalStore(store.root)
        assert [verify(elsewhere, key, sha256=sha, size=size).proof
                for key, sha, size in ((KEY, small_sha, small_size),
                                       ("archive/logs/2025/01/123/big.log", big_sha,
                                        big_size))] == ["read_back"] * 2
    else:
        # SeaweedFS keeps the SHA-256 of a single PUT, and of a multipart object only the
        # checksum of its parts' checksums (COMPOSITE), recomputed here from the local file.
        assert (proved.proof, with_local.proof, without.proof) == \
            ("server_sha256", "composite", "read_back")
    assert {proved.sha256, with_local.sha256, without.sha256} == {small_sha, big_sha}
    other = write(tmp_path / "other.log", os.urandom(11 * MIB))[0]
    with pytest.raises(ChecksumMismatchError):  # a local file that differs proves nothing
        verify(store, "archive/logs/2025/01/123/big.log", sha256=hashlib.sha256(
            other.read_bytes()).hexdigest(), size=big_size, local=other)


def test_an_object_just_put_is_proved_by_the_write_itself(store, payload, tmp_path):
    path, sha, size = payload
    assert store.put(KEY, path, sha256=sha, size=size) == "created"
    proof = verify(store, KEY, sha256=sha, size=size).proof
    # file://: the bytes were hashed from the temp file that became the object; S3: the
    # server computed the SHA-256 itself
    assert proof == ("checked_write" if isinstance(store, LocalStore) else "server_sha256")
    other = hashlib.sha256(b"other").hexdigest()
    with pytest.raises(ChecksumMismatchError):
        verify(store, KEY, sha256=other, size=size)


def test_capabilities_are_declared(store):
    caps = store.capabilities
    assert caps.conditional_writes and caps.abandoned_uploads
    if isinstance(store, LocalStore):
        assert not caps.server_checksums and not caps.adjustable_timeouts
    else:
        assert caps.server_checksums and caps.adjustable_timeouts
        assert store.with_timeout(5.0).read_timeout == 5.0


def test_a_name_of_255_bytes_is_stored_with_its_metadata(store, payload, tmp_path):
    path, sha, size = payload
    key = "archive/logs/2025/01/123/" + "123-" + "b" * 247 + ".log"
    assert len(key.rsplit("/", 1)[1].encode()) == 255
    assert store.put(key, path, sha256=sha, size=size, metadata={"log-type": "build"}) == \
        "created"
    info = store.head(key)
    assert (info.sha256, info.metadata["log-type"]) == (sha, "build")
    assert verify(store, key, sha256=sha, size=size).sha256 == sha
    assert store.put(key, path, sha256=sha, size=size) == "exists"
    store.delete(key)
    assert store.head(key) is None


def test_sidecars_of_older_file_stores_are_still_read(tmp_path, payload):
    import json

    path, sha, size = payload
    store = LocalStore(tmp_path / "store")
    store.put(KEY, path, sha256=sha, size=size, metadata={"log-type": "build"})
    target = tmp_path / "store" / KEY
    described = json.loads(os.getxattr(target, XATTR))
    os.removexattr(target, XATTR)  # as an older store left it: meta/K.json, flat
    old = tmp_path / "store/.log-archiver/meta" / (KEY + ".json")
    old.parent.mkdir(parents=True)
    old.write_text(json.dumps(described["metadata"]))
    info = store.head(KEY)
    assert info.metadata == {"log-type": "build", "sha256": sha}
    assert info.sha256 is None  # an old sidecar describes the object; it never vouches
    assert verify(store, KEY, sha256=sha, size=size).proof == "read_back"
    assert store.put(KEY, path, sha256=sha, size=size) == "exists"
    dest = tmp_path / "copy"
    store.get(KEY, dest)
    assert dest.read_bytes() == path.read_bytes()
    store.delete(KEY)
    assert not old.exists()


def test_a_file_object_carries_its_own_description(tmp_path, payload):
    import json

    path, sha, size = payload
    root = tmp_path / "store"
    LocalStore(root).put(KEY, path, sha256=sha, size=size, metadata={"log-type": "build"})
    assert sorted(p.name for p in (root / ".log-archiver").iterdir()) == ["tmp"]
    assert list((root / ".log-archiver/tmp").iterdir()) == []  # no file made beside it
    described = json.loads(os.getxattr(root / KEY, XATTR))
    assert (described["key"], described["sha256"], described["size"]) == (KEY, sha, size)
    elsewhere = LocalStore(root)  # another process: it reads the description, not the bytes
    info = elsewhere.head(KEY)
    assert (info.sha256, info.metadata["log-type"], info.written_here) == (sha, "build", False)
    assert verify(elsewhere, KEY, sha256=sha, size=size).proof == "read_back"


def test_a_description_too_long_for_the_file_goes_to_a_sidecar(tmp_path, payload):
    path, sha, size = payload
    root = tmp_path / "store"
    store = LocalStore(root)
    long = {"local-path": "x" * (70 << 10)}  # past what any filesystem keeps on a file
    store.put(KEY, path, sha256=sha, size=size, metadata=long)
    sidecars = list((root / ".log-archiver/objects").rglob("*.json"))
    assert len(sidecars) == 1
    with pytest.raises(OSError):
        os.getxattr(root / KEY, XATTR)
    info = LocalStore(root).head(KEY)
    assert (info.sha256, info.metadata["local-path"]) == (sha, long["local-path"])
    # another object at the key, described on itself: the sidecar cannot contradict it
    other, other_sha, other_size = write(tmp_path / "other.gz", b"other bytes\n" * 50)
    assert store.put(KEY, other, sha256=other_sha, size=other_size, overwrite=True,
                     metadata={"log-type": "debug"}) == "replaced"
    assert not sidecars[0].exists()
    info = LocalStore(root).head(KEY)
    assert (info.sha256, info.metadata) == (other_sha, {"log-type": "debug",
                                                        "sha256": other_sha})
    store.put("archive/logs/2025/01/123/long.log", path, sha256=sha, size=size, metadata=long)
    store.delete("archive/logs/2025/01/123/long.log")
    assert list((root / ".log-archiver/objects").rglob("*.json")) == []


def test_a_filesystem_without_attributes_gets_sidecars(tmp_path, payload, monkeypatch):
    import errno

    path, sha, size = payload
    tried = []

    def refused(*args, **kwargs):
        tried.append(args[0])
        raise OSError(errno.ENOTSUP, "Operation not supported")

    monkeypatch.setattr(os, "setxattr", refused)
    monkeypatch.setattr(os, "getxattr", refused)
    root = tmp_path / "store"
    store = LocalStore(root)
    store.put(KEY, path, sha256=sha, size=size, metadata={"log-type": "build"})
    store.put("archive/logs/2025/01/123/second.log", path, sha256=sha, size=size)
    assert len(list((root / ".log-archiver/objects").rglob("*.json"))) == 2
    assert sum(isinstance(p, int) for p in tried) == 1  # (the temp file's fd) once per store
    info = LocalStore(root).head(KEY)
    assert (info.sha256, info.metadata["log-type"]) == (sha, "build")
    store.delete(KEY)
    assert len(list((root / ".log-archiver/objects").rglob("*.json"))) == 1


@pytest.mark.parametrize("planted", [b"not json", b'{"key": 5}', b"[1, 2]",
                                     b'{"key": "%s", "metadata": {}, "sha256": "%s", '
                                     b'"size": "many", "mtime_ns": 1}', "other"])
def test_a_hostile_description_vouches_for_nothing(tmp_path, payload, planted):
    path, sha, size = payload
    root = tmp_path / "store"
    store = LocalStore(root)
    if planted == "other":  # a hand-made link: the description of another key
        store.put("archive/logs/2025/01/9/other.log", path, sha256=sha, size=size)
        (root / KEY).parent.mkdir(parents=True)
        os.link(root / "archive/logs/2025/01/9/other.log", root / KEY)
    else:
        store.put(KEY, path, sha256=sha, size=size)
        planted = planted.replace(b"%s", KEY.encode(), 1).replace(b"%s", sha.encode(), 1)
        os.setxattr(root / KEY, XATTR, planted)
    info = LocalStore(root).head(KEY)
    assert info.size == size and info.sha256 is None
    assert verify(LocalStore(root), KEY, sha256=sha, size=size).proof == "read_back"


def test_a_log_named_with_255_bytes_is_archived_cleaned_and_reindexed(workspace, run_cli):
    import json

    name = "77-" + "n" * 248 + ".log"
    assert len(name.encode()) == 255
    log = workspace / "logs/builds" / name
    log.parent.mkdir(parents=True)
    log.write_bytes(b"step 1 ok\nstep 2 ok\n" * 50)
    index = workspace / "logs/.archive-index.json"

    def entry() -> dict:
        return json.loads(index.read_text())["archives"][0]

    archived = run_cli("archive", "77")
    assert archived.exit_code == 0, archived.stdout
    assert entry()["partial_reason"] is None and entry()["upload_complete"] is True
    [record] = entry()["logs"]
    assert record["local_path"] == f"builds/{name}" and record["upload_status"] == "cleaned"
    assert not log.exists()
    assert run_cli("cleanup-local", "77").exit_code == 0
    index.unlink()
    rebuilt = run_cli("archive", "77", "--reindex-only")
    assert rebuilt.exit_code == 0, rebuilt.stdout
    [again] = entry()["logs"]
    assert {k: again[k] for k in ("local_path", "remote_path", "checksum", "upload_status",
                                  "type")} == \
        {k: record[k] for k in ("local_path", "remote_path", "checksum", "upload_status",
                                "type")}


@pytest.mark.parametrize("length", [224, 225, 255])
def test_a_big_log_with_a_long_name_is_archived_as_it_is_when_no_copy_name_fits(
        workspace, run_cli, length):
    """Its compressed copy (``.NAME.la.gz``, written under a longer temp name first)
    would pass the 255-byte limit: the log is stored as it is rather than left partial
    for ever."""
    import json

    name = "78-" + "n" * (length - 7) + ".log"
    assert len(name.encode()) == length
    log = workspace / "logs/builds" / name
    log.parent.mkdir(parents=True)
    data = b"step 1 ok\nstep 2 ok\n" * 60_000  # over the 1 MiB threshold
    log.write_bytes(data)
    archived = run_cli("archive", "78")
    assert archived.exit_code == 0, archived.stdout
    [record] = json.loads((workspace / "logs/.archive-index.json").read_text())[
        "archives"][0]["logs"]
    assert record["upload_status"] == "cleaned" and not log.exists()
    assert record["compressed"] is (length <= 224)
    stored = workspace.parent / "store" / record["remote_path"]
    assert stored.stat().st_size == record["size_bytes"]

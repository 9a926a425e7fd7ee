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
    different, other_sha, other_size = write(tmp_path / "big2.log", data[:-1] + b"!")
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

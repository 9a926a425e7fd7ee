"""What this process hashed or wrote is trusted only while the file is the very one it
hashed: a log changed after it was compressed is still kept by cleanup, an object changed
after it was put is still read back before a log goes."""

from __future__ import annotations

import hashlib
import os
import time

import pytest

from log_archiver.archive.cleanup import cleanup_local
from log_archiver.archive.prepare import prepare
from log_archiver.archive.upload import upload_records
from log_archiver.config import load_config
from log_archiver.model.records import new_entry
from log_archiver.repository import Repository
from log_archiver.storage.local import LocalStore
from log_archiver.storage.verify import verify
from log_archiver.util import hashing
from log_archiver.util.hashing import remember_digest, remembered_digest


def settled(path, data: bytes) -> os.stat_result:
    """``path`` written with ``data``, and old enough not to be racy."""
    path.write_bytes(data)
    time.sleep(hashing.RACY_SECONDS + 0.05)
    return os.stat(path)


def test_a_file_hashed_well_after_its_last_change_is_remembered(tmp_path):
    log = tmp_path / "a.log"
    before = settled(log, b"line\n" * 100)
    digest = hashlib.sha256(log.read_bytes()).hexdigest()
    remember_digest(log, before, os.stat(log), time.time_ns(), digest)
    assert remembered_digest(log, os.stat(log)) == digest


def test_a_file_changed_just_before_it_was_hashed_is_hashed_again(tmp_path):
    log = tmp_path / "a.log"
    log.write_bytes(b"fresh\n")
    before = os.stat(log)
    hashed_at = max(before.st_mtime_ns, before.st_ctime_ns)  # at once, however slow we are
    remember_digest(log, before, os.stat(log), hashed_at, "0" * 64)
    assert remembered_digest(log, os.stat(log)) is None


def test_a_file_that_changed_while_it_was_hashed_is_not_remembered(tmp_path):
    log = tmp_path / "a.log"
    before = settled(log, b"one\n")
    log.write_bytes(b"two\n")  # same size, written between the stat and the end of the hash
    remember_digest(log, before, os.stat(log), time.time_ns(), "0" * 64)
    assert remembered_digest(log, os.stat(log)) is None


def test_a_rewrite_of_the_same_size_after_the_hash_is_noticed(tmp_path):
    log = tmp_path / "a.log"
    before = settled(log, b"one\n")
    remember_digest(log, before, before, time.time_ns(), hashlib.sha256(b"one\n").hexdigest())
    with open(log, "r+b") as handle:  # in place: same inode, same size
        handle.write(b"two\n")
    assert os.stat(log).st_ino == before.st_ino and os.stat(log).st_size == before.st_size
    assert remembered_digest(log, os.stat(log)) is None


def test_a_log_rewritten_after_it_was_compressed_is_kept_by_cleanup(workspace):
    """In one process: compressed and hashed, uploaded, then written again in place with
    bytes of the same size before cleanup: the remembered checksum no longer applies, the
    log is hashed again, found changed and kept."""
    logs = workspace / "logs"
    build = logs / "builds/7-build.log"
    build.parent.mkdir(parents=True)
    text = b"".join(b"step %06d ok\n" % n for n in range(200_000))  # compressed (> 1 MiB)
    session = logs / "sessions/session-7-a.md"
    session.parent.mkdir(parents=True)
    session.write_bytes(b"# session\n" + b"a line of talk\n" * 50)
    settled(build, text)
    repo = Repository(config=load_config().with_overrides(commit=False))
    with repo.keeping_pools():
        prepare(repo, 7)
        assert remembered_digest(build, os.stat(build)) is not None  # the hash was kept
        assert remembered_digest(session, os.stat(session)) is not None
        report = upload_records(repo, 7)
        assert not report.failed
        with open(build, "r+b") as handle:
            handle.write(b"STEP")
        cleaned = cleanup_local(repo, 7)
    assert build.exists() and build.read_bytes().startswith(b"STEP")
    assert [kept["local_path"] for kept in cleaned.kept] == ["builds/7-build.log"]
    assert "changed since it was archived" in cleaned.kept[0]["reason"]
    assert not session.exists()  # unchanged: gone without being read again


def test_an_object_this_process_put_is_vouched_for_until_it_changes(tmp_path):
    store = LocalStore(tmp_path / "store")
    source = tmp_path / "a.log"
    source.write_bytes(b"x" * 5000)
    sha256 = hashlib.sha256(source.read_bytes()).hexdigest()
    assert store.put("logs/1/a.log", source, sha256=sha256, size=5000) == "created"
    assert store.head("logs/1/a.log").written_here
    assert verify(store, "logs/1/a.log", sha256=sha256, size=5000).proof == "checked_write"
    # another process's store knows nothing of it: it reads the object back
    assert not LocalStore(tmp_path / "store").head("logs/1/a.log").written_here
    assert verify(LocalStore(tmp_path / "store"), "logs/1/a.log", sha256=sha256,
                  size=5000).proof == "read_back"
    target = tmp_path / "store/logs/1/a.log"
    stamp = target.stat().st_ctime_ns
    while True:  # changed in place, until the ctime shows it (a coarse clock may not)
        with open(target, "r+b") as handle:
            handle.write(b"y")
        if target.stat().st_ctime_ns != stamp:
            break
        time.sleep(0.001)
    assert not store.head("logs/1/a.log").written_here
    from log_archiver.errors import ChecksumMismatchError

    with pytest.raises(ChecksumMismatchError, match="read back"):
        verify(store, "logs/1/a.log", sha256=sha256, size=5000)


def test_the_validity_record_is_written_once_when_deferring_ends(workspace):
    repo = Repository(config=load_config())
    index = repo.index
    with index.deferring_validity():
        for issue in (1, 2, 3):
            with index.transaction() as txn:
                txn.put(new_entry(issue, "manual", repo.store.url))
            assert not index.valid_path.exists()
    recorded = index.valid_path.read_text().split()
    stat = os.stat(index.path)  # the record names the last write
    assert recorded[1] == ":".join(map(str, (stat.st_dev, stat.st_ino, stat.st_size,
                                             stat.st_mtime_ns, stat.st_ctime_ns)))
    assert recorded[3] == "layout"
    # and the next process trusts it: the index is not validated again
    fresh = Repository(config=load_config()).index
    assert fresh._known(tuple(int(n) for n in recorded[1].split(":")),
                        index.path.read_bytes()) == "layout"


def test_what_a_long_lived_process_remembers_is_bounded(tmp_path, monkeypatch):
    """A worker archiving for days keeps at most REMEMBERED_MOST files in mind, the
    newest; the others are simply hashed (or read back) again."""
    monkeypatch.setattr(hashing, "REMEMBERED_MOST", 3)
    monkeypatch.setattr(hashing, "_hashed", {})
    logs = [tmp_path / f"{n}.log" for n in range(5)]
    for n, log in enumerate(logs):
        log.write_bytes(b"%d\n" % n)
    time.sleep(hashing.RACY_SECONDS + 0.05)
    for log in logs:
        stat = os.stat(log)
        remember_digest(log, stat, stat, time.time_ns(),
                        hashlib.sha256(log.read_bytes()).hexdigest())
    assert [remembered_digest(log, os.stat(log)) is not None for log in logs] == \
        [False, False, True, True, True]
    store = LocalStore(tmp_path / "store")
    for n, log in enumerate(logs):
        store.put(f"logs/{n}.log", log, sha256=hashlib.sha256(log.read_bytes()).hexdigest(),
                  size=log.stat().st_size)
    assert [store.head(f"logs/{n}.log").written_here for n in range(5)] == \
        [False, False, True, True, True]

"""The ``file://`` store against someone else who writes in its folder: a file put in
place of the one being written, links and FIFOs where objects and folders should be,
descriptions built to crash their reader or left by another write."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import threading
from pathlib import Path

import pytest

from log_archiver.errors import ChecksumMismatchError, StorageError
from log_archiver.storage.descriptions import XATTR
from log_archiver.storage.local import LocalStore
from log_archiver.storage.verify import verify

KEY = "archive/logs/2025/01/123/build.log"


def written(path: Path, data: bytes) -> tuple[Path, str, int]:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest(), len(data)


def forged(path: Path, key: str, sha256: str, size: int) -> Path:
    """Other bytes of the same size, with a description claiming ``sha256`` for ``key``."""
    path.write_bytes(b"EVIL" * (size // 4) + b"!" * (size % 4))
    stamp = path.stat()
    os.setxattr(path, XATTR, json.dumps({
        "key": key, "metadata": {"sha256": sha256}, "sha256": sha256,
        "size": stamp.st_size, "mtime_ns": stamp.st_mtime_ns}).encode())
    return path


def within(seconds: float, action):
    """``action()``'s result or exception, failing the test if it does not end in time
    (a store that blocks on a FIFO never would)."""
    outcome = {}

    def run():
        try:
            outcome["value"] = action()
        except BaseException as error:  # noqa: BLE001 (handed to the test)
            outcome["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still blocked after {seconds} s"
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


@pytest.fixture
def log(tmp_path):
    return written(tmp_path / "src/build.log", b"GOOD line\n" * 400)


@pytest.mark.parametrize("moment", ["over the temp file", "over the object"])
def test_a_file_put_in_place_of_ours_is_never_vouched_for(tmp_path, log, monkeypatch,
                                                          moment):
    path, sha, size = log
    store = LocalStore(tmp_path / "store")
    evil = forged(tmp_path / "evil", KEY, sha, size)
    real_link, real_fsync = os.link, os.fsync

    def link(src, dst, **kwargs):
        if moment == "over the temp file":
            os.rename(evil, src)  # renamed over our temp name after we hashed it
        return real_link(src, dst, **kwargs)

    def fsync(fd):
        real_fsync(fd)
        if moment == "over the object" and os.path.isdir(f"/proc/self/fd/{fd}"):
            os.rename(evil, tmp_path / "store" / KEY)  # while the store syncs its folder

    monkeypatch.setattr(os, "link", link)
    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(StorageError) as caught:
        store.put(KEY, path, sha256=sha, size=size)
    monkeypatch.undo()
    assert "not the file this process wrote" in caught.value.message
    assert (tmp_path / "store" / KEY).read_bytes().startswith(b"EVIL")
    info = store.head(KEY)
    assert info.sha256 == sha and not info.written_here  # its claim, believed by no one
    with pytest.raises(ChecksumMismatchError, match="read back"):
        verify(store, KEY, sha256=sha, size=size)


def test_no_folder_link_leads_a_write_a_delete_or_a_listing_out_of_the_store(tmp_path, log):
    path, sha, size = log
    root, outside = tmp_path / "store", tmp_path / "outside"
    (root / "archive/logs/2025/01").mkdir(parents=True)
    written(outside / "build.log", b"someone else's\n")
    (root / "archive/logs/2025/01/123").symlink_to(outside, target_is_directory=True)
    store = LocalStore(root)
    for act in (lambda: store.put(KEY.replace("build", "new"), path, sha256=sha, size=size),
                lambda: store.delete(KEY),
                lambda: list(store.list("archive/logs/2025/01/123/"))):
        with pytest.raises(StorageError) as caught:
            act()
        assert "is a symlink or a file, not a folder" in caught.value.message
        assert str(root / "archive/logs/2025/01/123") in caught.value.message
    assert sorted(p.name for p in outside.iterdir()) == ["build.log"]
    assert (outside / "build.log").read_bytes() == b"someone else's\n"
    # a link as the store's root is the user's choice, and followed
    linked = LocalStore(tmp_path / "linked-root")
    (tmp_path / "linked-root").symlink_to(root)
    assert linked.put("archive/other.log", path, sha256=sha, size=size) == "created"
    assert (root / "archive/other.log").read_bytes() == path.read_bytes()


@pytest.mark.parametrize("planted", ["fifo", "link to /dev/zero", "link to a file"])
def test_a_fifo_or_a_link_at_a_key_is_refused_at_once(tmp_path, log, planted):
    path, sha, size = log
    root = tmp_path / "store"
    target = root / KEY
    target.parent.mkdir(parents=True)
    if planted == "fifo":
        os.mkfifo(target)
    elif planted == "link to /dev/zero":
        target.symlink_to("/dev/zero")
    else:
        target.symlink_to(written(tmp_path / "elsewhere.log", path.read_bytes())[0])
    store = LocalStore(root)
    for act in (lambda: store.head(KEY), lambda: store.digest(KEY),
                lambda: store.get(KEY, tmp_path / "copy.log"),
                lambda: store.get_range(KEY, 0, 10),
                lambda: store.put(KEY, path, sha256=sha, size=size),
                lambda: verify(store, KEY, sha256=sha, size=size)):
        with pytest.raises(StorageError) as caught:
            within(10, act)
        assert "not a regular file" in caught.value.message and str(target) in \
            caught.value.message
    assert not (tmp_path / "copy.log").exists()
    assert [info.key for info in store.list("archive/")] == []  # no object of ours


@pytest.mark.parametrize("where", ["attribute", "sidecar", "old sidecar"])
def test_a_description_nested_deep_enough_to_exhaust_the_stack_is_ignored(tmp_path, log,
                                                                          where):
    path, sha, size = log
    store = LocalStore(tmp_path / "store")
    store.put(KEY, path, sha256=sha, size=size)
    target = tmp_path / "store" / KEY
    deep = b"[" * 3900 if where == "attribute" else b'{"a":' * 100_000
    os.removexattr(target, XATTR)
    if where == "attribute":
        os.setxattr(target, XATTR, deep)
    else:
        sidecar = store._descriptions.sidecar_path(KEY) if where == "sidecar" else \
            tmp_path / "store/.log-archiver/meta" / (KEY + ".json")
        written(sidecar, deep)
    info = store.head(KEY)
    assert (info.size, info.sha256, info.metadata) == (size, None, {})
    assert verify(store, KEY, sha256=sha, size=size).proof == "read_back"


@pytest.fixture
def no_attributes(monkeypatch):
    """A filesystem that keeps no extended attributes: descriptions go in sidecars."""
    def refused(*args, **kwargs):
        raise OSError(errno.ENOTSUP, "Operation not supported")

    monkeypatch.setattr(os, "setxattr", refused)
    monkeypatch.setattr(os, "getxattr", refused)


def test_a_sidecar_left_by_a_failed_write_describes_but_never_vouches(tmp_path, monkeypatch,
                                                                      no_attributes):
    root = tmp_path / "store"
    old, old_sha, old_size = written(tmp_path / "old.log", b"old object\n")
    new, new_sha, new_size = written(tmp_path / "new.log", b"the new one!\n")
    LocalStore(root).put(KEY, old, sha256=old_sha, size=old_size, metadata={"a": "b"})
    real_replace = os.replace

    def failing(src, dst, **kwargs):  # the replace fails after the sidecar was written
        if str(dst).endswith("build.log"):
            raise OSError(errno.EIO, "Input/output error")
        return real_replace(src, dst, **kwargs)

    monkeypatch.setattr(os, "replace", failing)
    with pytest.raises(StorageError):
        LocalStore(root).put(KEY, new, sha256=new_sha, size=new_size, overwrite=True,
                             metadata={"a": "c"})
    monkeypatch.setattr(os, "replace", real_replace)
    assert (root / KEY).read_bytes() == b"old object\n"  # intact
    store = LocalStore(root)
    info = store.head(KEY)
    assert info.sha256 is None and info.metadata["a"] == "c"  # it describes, never vouches
    store.get(KEY, tmp_path / "copy.log")  # and the object is not taken for damaged
    assert (tmp_path / "copy.log").read_bytes() == b"old object\n"
    assert verify(store, KEY, sha256=old_sha, size=old_size).proof == "read_back"


def test_a_copied_store_keeps_what_its_sidecars_say(tmp_path, log, no_attributes):
    import shutil

    path, sha, size = log
    LocalStore(tmp_path / "store").put(KEY, path, sha256=sha, size=size,
                                       metadata={"log-type": "build"})
    shutil.copytree(tmp_path / "store", tmp_path / "restored")  # new inodes
    copy = LocalStore(tmp_path / "restored")
    info = copy.head(KEY)
    assert info.metadata == {"log-type": "build", "sha256": sha} and info.sha256 is None
    assert verify(copy, KEY, sha256=sha, size=size).proof == "read_back"


def test_a_delete_whose_folder_is_gone_still_drops_the_sidecar(tmp_path, log, no_attributes):
    import shutil

    path, sha, size = log
    store = LocalStore(tmp_path / "store")
    store.put(KEY, path, sha256=sha, size=size)
    sidecar = store._descriptions.sidecar_path(KEY)
    assert sidecar.is_file()
    shutil.rmtree(tmp_path / "store/archive/logs/2025/01/123")  # removed by hand
    store.delete(KEY)
    assert not sidecar.exists()


def test_the_temp_folder_is_made_as_the_others_are_for_a_store_people_share(tmp_path, log):
    path, sha, size = log
    previous = os.umask(0o002)
    try:
        LocalStore(tmp_path / "store").put(KEY, path, sha256=sha, size=size)
    finally:
        os.umask(previous)
    mode = (tmp_path / "store/.log-archiver/tmp").stat().st_mode & 0o777
    assert mode == (tmp_path / "store/archive").stat().st_mode & 0o777 == 0o775

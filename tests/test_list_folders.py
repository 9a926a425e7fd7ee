"""``Store.list_folders(prefix)``: the folder names one level below a prefix, on every store.

The same contract over the file:// LocalStore and the s3:// S3Store (SeaweedFS, where it
is ``list_objects_v2`` with ``Delimiter='/'``, paginated).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from log_archiver.errors import UsageError
from log_archiver.storage.local import LocalStore
from scans import recording_scans

KEYS = (
    "archive/logs/2024/12/1/c.log",
    "archive/logs/2025/01/123/a.log",
    "archive/logs/2025/01/123/b.log.gz",
    "archive/logs/2025/01/12/d.log",
    "archive/logs/2025/02/1234/e.log",
    "archive/readme.txt",
    "top.txt",
)


@pytest.fixture(params=["file", "s3"])
def store(request, tmp_path):
    if request.param == "file":
        return LocalStore(tmp_path / "store")
    return request.getfixturevalue("s3_store")


def fill(store, tmp_path, keys=KEYS):
    source = tmp_path / "object"
    for key in keys:
        data = key.encode()
        source.write_bytes(data)
        store.put(key, source, sha256=hashlib.sha256(data).hexdigest(), size=len(data),
                  metadata={"log-type": "build"})


def test_folders_one_level_below_a_prefix(store, tmp_path):
    fill(store, tmp_path)
    assert store.list_folders("") == ["archive"]  # the store's own folder is not listed
    assert store.list_folders("archive/") == ["logs"]
    assert store.list_folders("archive/logs/") == ["2024", "2025"]
    assert store.list_folders("archive/logs/2025/") == ["01", "02"]
    assert store.list_folders("archive/logs/2025/01/") == ["12", "123"]
    assert store.list_folders("archive/logs/2025/01/123/") == []  # objects only
    assert store.list_folders("archive/logs/2031/") == []  # no such folder


def test_every_page_is_read(store, tmp_path):
    years = [str(year) for year in range(2011, 2018)]
    fill(store, tmp_path, [f"archive/logs/{year}/01/5/x.log" for year in years])
    if hasattr(store, "list_page_size"):
        store.list_page_size = 2  # seven folders: four pages
    assert store.list_folders("archive/logs/") == years


@pytest.mark.parametrize("prefix", ["archive/logs", "../", "archive//", "./archive/", "/"])
def test_unclean_prefix_is_refused(store, prefix):
    with pytest.raises(UsageError) as caught:
        store.list_folders(prefix)
    assert repr(prefix) in caught.value.message and "archive/logs/2025/" in caught.value.hint


def test_list_reads_only_the_folder_a_prefix_names(tmp_path):
    """The file store walks the folder a prefix names, not the whole store."""
    store = LocalStore(tmp_path / "store")
    fill(store, tmp_path)
    with recording_scans() as scanned:
        listed = [info.key for info in store.list("archive/logs/2025/01/123/")]
    assert listed == ["archive/logs/2025/01/123/a.log", "archive/logs/2025/01/123/b.log.gz"]
    assert scanned == [str(tmp_path / "store/archive/logs/2025/01/123")]
    with recording_scans() as scanned:
        assert store.list_folders("archive/logs/2025/") == ["01", "02"]
    assert scanned == [str(tmp_path / "store/archive/logs/2025")]


def test_the_file_store_lists_past_a_dangling_link_and_fails_on_an_unreadable_folder(tmp_path):
    import os
    import subprocess
    import sys

    import log_archiver

    store = LocalStore(tmp_path / "store")
    folder = tmp_path / "store/archive/logs/2025/01/7"
    folder.mkdir(parents=True)
    (folder / "7-build.log").write_bytes(b"ok\n")
    (folder / "7-gone.log").symlink_to(tmp_path / "nowhere")
    assert [info.key for info in store.list("archive/logs/")] == [
        "archive/logs/2025/01/7/7-build.log"]
    # a folder it cannot read is an error, not an empty folder (root reads anything: an
    # unprivileged child lists, through a user namespace)
    denied = tmp_path / "store/archive/logs/2025/02"
    (denied / "8").mkdir(parents=True)
    code = ("import pathlib, sys; sys.path.insert(0, sys.argv[2])\n"
            "from log_archiver.errors import StorageError\n"
            "from log_archiver.storage.local import LocalStore\n"
            "try:\n list(LocalStore(pathlib.Path(sys.argv[1])).list('archive/logs/'))\n"
            "except StorageError as error:\n print('refused:', error.message)")
    package_root = Path(log_archiver.__file__).resolve().parents[1]
    os.chmod(denied, 0)
    try:
        done = subprocess.run(["unshare", "-r", "--map-user=65534", sys.executable, "-c", code,
                               str(tmp_path / "store"), str(package_root)],
                              capture_output=True, text=True, timeout=60)
    finally:
        os.chmod(denied, 0o755)
    assert done.stdout.startswith("refused:") and "2025/02" in done.stdout, \
        done.stdout + done.stderr

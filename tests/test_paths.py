"""The one path check: a path read from the index, a plan or metadata stays in the logs dir."""

from __future__ import annotations

import os

import pytest

from log_archiver.errors import IndexCorruptError
from log_archiver.util.paths import UnsafePath, check_entry_paths, confined


@pytest.fixture
def logs(tmp_path):
    root = tmp_path / "logs"
    (root / "builds").mkdir(parents=True)
    (root / "builds/1-a.log").write_text("a")
    (tmp_path / "outside.txt").write_text("not ours")
    os.symlink(tmp_path / "outside.txt", root / "builds/1-out.log")
    os.symlink(tmp_path, root / "escape")
    os.symlink(root / "builds/1-a.log", root / "builds/1-alias.log")
    return root


@pytest.mark.parametrize("relative", ["builds/1-a.log", "builds/1-alias.log",
                                      "builds/not-there-yet.log", "builds/.1-a.log.la.gz"])
def test_paths_inside_pass_unresolved(logs, relative):
    assert confined(logs, relative) == logs / relative


@pytest.mark.parametrize("relative, why", [
    ("/etc/passwd", "absolute"), ("../outside.txt", "'..'"), ("builds/../../outside.txt", "'..'"),
    ("builds//1-a.log", "empty"), ("./builds/1-a.log", "'.'"), ("builds/1-out.log", "symlink"),
    ("escape/outside.txt", "symlink"), ("builds/1-a.log\x00", "NUL"),
    ("builds\\..\\..\\x", "backslash"), ("", "not a path"), (None, "not a path"),
    (7, "not a path"),
])
def test_paths_leading_out_are_refused_with_the_reason(logs, relative, why):
    with pytest.raises(UnsafePath) as caught:
        confined(logs, relative)
    assert why in caught.value.reason and caught.value.path == relative


def test_an_entry_with_a_bad_path_is_refused_naming_the_path_and_the_log(logs):
    entry = {"issue_number": 1, "logs": [
        {"local_path": "builds/1-a.log", "stored_path": "builds/1-a.log"},
        {"local_path": "builds/1-b.log", "stored_path": "../outside.txt"}]}
    with pytest.raises(IndexCorruptError) as caught:
        check_entry_paths(entry, logs)
    message = caught.value.message
    assert "issue 1" in message and "'builds/1-b.log'" in message
    assert "stored_path '../outside.txt'" in message
    check_entry_paths({"issue_number": 1, "logs": entry["logs"][:1]}, logs)

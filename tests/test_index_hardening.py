"""The index under hostile conditions: restored while an archive runs."""

from __future__ import annotations

import json
import os
import threading

import pytest

from conftest import run_script
from gitutil import git, init_repo
from log_archiver.util.samples import write_sample_logs

INDEX = "logs/.archive-index.json"


def _restore_at(place, root, kind: str, nth: int):
    """Restore the committed index (git checkout) when the ``nth`` ``kind`` request of
    issue 123 reaches the store."""
    seen, done = [0], threading.Event()

    def hook(number, request):
        if request.startswith(f"{kind} ") and "/123/" in request and not done.is_set():
            seen[0] += 1
            if seen[0] == nth:
                git(root, "checkout", "--", INDEX)
                done.set()

    place.proxy.before_request = hook
    return done


@pytest.mark.parametrize("moment, kind, nth", [
    ("upload", "PUT", 1),      # the first object being stored
    ("cleanup", "HEAD", 9),    # 4 checks before the puts, 4 verifications, then cleanup's
])
def test_restoring_the_index_while_it_archives(s3_workspace, isolated_git, moment, kind, nth):
    place, root = s3_workspace, s3_workspace.root
    init_repo(root)
    write_sample_logs(root / "logs", 5)
    env = dict(os.environ)
    assert run_script("log-archiver", "archive", "5", "-q", cwd=root, env=env).exit_code == 0
    committed = git(root, "show", f"HEAD:{INDEX}")
    files = {f: f.read_bytes() for f in write_sample_logs(root / "logs", 123)}
    restored = _restore_at(place, root, kind, nth)
    result = run_script("log-archiver", "archive", "123", cwd=root, env=env)
    assert restored.is_set()
    assert result.exit_code == 1, result.stdout
    [error] = result.json["errors"]
    assert error["type"] == "not_archived" and "restored" in error["message"]
    assert "log-archiver archive 123" in error["hint"]
    assert (root / INDEX).read_text() == committed  # the restore stands
    for path, data in files.items():  # nothing deleted: the index no longer records it
        assert path.read_bytes() == data
    place.proxy.before_request = None
    rerun = run_script("log-archiver", "archive", "123", "-q", cwd=root, env=env)
    assert rerun.exit_code == 0, rerun.stdout
    entry = json.loads((root / INDEX).read_text())["archives"][0]
    assert entry["issue_number"] == 123 and entry["total_logs"] == len(files)
    assert {log["upload_status"] for log in entry["logs"]} == {"cleaned"}
    assert not any(path.exists() for path in files)
    assert len([key for key in place.objects() if "/123/" in key]) == len(files)

"""``cleanup-local --orphans``: what abandoned runs left, removed; nothing else touched."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import time

import pytest
import zstandard

from log_archiver.util.samples import log_text, write_sample_logs

HOUR = 3600
PID = os.getpid()  # a live process: age alone must decide (a pid may be reused)
DAY = 24 * HOUR


def age(path, seconds):
    moment = time.time() - seconds
    os.utime(path, (moment, moment))


def put(path, data, seconds):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    age(path, seconds)
    return path


@pytest.fixture
def scene(workspace, run_cli):
    """A logs dir with orphans of every kind and everything that must survive."""
    logs = workspace / "logs"
    build = log_text(50_000, 1)
    deploy = log_text(30_000, 2)
    files = {
        # orphans
        "builds/123-build.log.gz": put(logs / "builds/123-build.log.gz", gzip.compress(build),
                                       8 * DAY),
        "deployments/9-deploy.log.zst": put(
            logs / "deployments/9-deploy.log.zst",
            zstandard.ZstdCompressor().compress(deploy), 10 * DAY),
        f"builds/123-build.log.la-{PID}-0a1b2c3d.tmp": put(
            logs / f"builds/123-build.log.la-{PID}-0a1b2c3d.tmp", b"half", 25 * HOUR),
        f".archive-index.json.la-{PID}-99.tmp": put(
            logs / f".archive-index.json.la-{PID}-99.tmp", b"{", 2 * DAY),
        f"sessions/.session-4-a.md.{PID}.part": put(
            logs / f"sessions/.session-4-a.md.{PID}.part", b"part", 3 * DAY),
    }
    survivors = {
        # originals, however old
        "builds/123-build.log": put(logs / "builds/123-build.log", build, 100 * DAY),
        "deployments/9-deploy.log": put(logs / "deployments/9-deploy.log", deploy, 100 * DAY),
        # too young
        "builds/77-build.log": put(logs / "builds/77-build.log", build, 100 * DAY),
        "builds/77-build.log.gz": put(logs / "builds/77-build.log.gz", gzip.compress(build),
                                      6 * DAY),
        f"debug/5-trace.log.la-{PID}-ff.tmp": put(logs / f"debug/5-trace.log.la-{PID}-ff.tmp",
                                                   b"x", 23 * HOUR),
        # a compressed log with no log beside it may be a log itself
        "debug/77-core.log.gz": put(logs / "debug/77-core.log.gz", gzip.compress(b"core"),
                                    30 * DAY),
        # a copy that is not the log beside it (the log changed since)
        "builds/88-build.log": put(logs / "builds/88-build.log", build + b"more\n", 100 * DAY),
        "builds/88-build.log.gz": put(logs / "builds/88-build.log.gz", gzip.compress(build),
                                      30 * DAY),
        # not ours: a user's file that merely ends like a temp file
        "builds/123-notes.tmp": put(logs / "builds/123-notes.tmp", b"mine", 30 * DAY),
    }
    # a compressed copy the index names (prepared, not uploaded yet)
    write_sample_logs(logs, 5)
    assert run_cli("prepare-upload", "5").exit_code == 0
    named = logs / "sessions/.session-5-2025-01-15.md.la.gz"
    age(named, 30 * DAY)
    survivors["sessions/.session-5-2025-01-15.md.la.gz"] = named
    lock = logs / ".archive-index.json.lock"
    assert lock.exists()  # left by filelock after the transaction
    age(lock, 2 * HOUR)
    files[".archive-index.json.lock"] = lock
    return {"orphans": files, "survivors": {k: (p, p.read_bytes())
                                            for k, p in survivors.items()}}


def snapshot(root):
    return {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_dry_run_lists_every_orphan_and_deletes_nothing(workspace, scene, run_cli):
    before = snapshot(workspace)
    result = run_cli("cleanup-local", "--orphans", "--dry-run")
    assert result.exit_code == 0, result.stdout
    doc = result.json
    assert doc["status"] == "ok" and doc["dry_run"] is True and doc["mode"] == "orphans"
    listed = {o["path"]: o for o in doc["orphans"]}
    assert set(listed) == set(scene["orphans"])
    kinds = {path: o["kind"] for path, o in listed.items()}
    assert kinds["builds/123-build.log.gz"] == kinds["deployments/9-deploy.log.zst"] == \
        "compressed"
    assert kinds[".archive-index.json.lock"] == "lock"
    assert kinds[f"sessions/.session-4-a.md.{PID}.part"] == "temp"
    for path, orphan in listed.items():
        assert orphan["size_bytes"] == scene["orphans"][path].stat().st_size
        assert orphan["reason"]
    assert 8 * DAY - 60 <= listed["builds/123-build.log.gz"]["age_seconds"] <= 8 * DAY + 60
    assert doc["freed_bytes"] == sum(o["size_bytes"] for o in doc["orphans"])
    kept = {k["path"]: k["reason"] for k in doc["kept"]}
    assert "named by the archive index" in kept["sessions/.session-5-2025-01-15.md.la.gz"]
    assert "not beside it" in kept["debug/77-core.log.gz"]
    assert "does not decompress" in kept["builds/88-build.log.gz"]
    assert snapshot(workspace) == before
    assert f"Orphaned files would be removed: {len(scene['orphans'])}" in result.stderr
    assert "kept debug/77-core.log.gz" in result.stderr


def test_orphans_are_removed_and_nothing_else(workspace, scene, run_cli):
    result = run_cli("cleanup-local", "--orphans")
    assert result.exit_code == 0, result.stdout
    assert {o["path"] for o in result.json["orphans"]} == set(scene["orphans"])
    for path in scene["orphans"].values():
        assert not path.exists()
    for path, data in scene["survivors"].values():
        assert path.read_bytes() == data
    again = run_cli("cleanup-local", "--orphans")
    assert again.exit_code == 0 and again.json["status"] == "noop"
    assert again.json["orphans"] == [] and again.json["freed_bytes"] == 0
    # the index still works without its old lock file
    assert run_cli("archive", "5").exit_code == 0
    assert run_cli("validate-index").json["status"] == "ok"


HOLDER = """
import sys
from filelock import FileLock
lock = FileLock(sys.argv[1])
lock.acquire()
print("held", flush=True)
sys.stdin.readline()
"""


def test_lock_held_by_a_running_process_is_kept(workspace, run_cli):
    lock = workspace / "logs/.archive-index.json.lock"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(lock)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        age(lock, 5 * HOUR)
        result = run_cli("cleanup-local", "--orphans")
        assert result.json["status"] == "noop", result.stdout
        assert result.json["kept"] == [{"path": ".archive-index.json.lock", "kind": "lock",
                                        "reason": "held by a running process"}]
        assert lock.exists()
    finally:
        holder.communicate("\n", timeout=30)
    assert holder.returncode == 0
    # its process is gone now (the kernel dropped the lock): it goes
    gone = run_cli("cleanup-local", "--orphans")
    assert [o["path"] for o in gone.json["orphans"]] == [".archive-index.json.lock"]
    assert not lock.exists()


def test_young_lock_is_left_alone(workspace, run_cli):
    lock = workspace / "logs/.archive-index.json.lock"
    lock.touch()
    age(lock, 30 * 60)
    result = run_cli("cleanup-local", "--orphans")
    assert result.json["status"] == "noop" and lock.exists()


@pytest.mark.parametrize("args", [(), ("5", "--orphans")])
def test_issue_or_orphans_not_both_nor_neither(workspace, run_cli, args):
    result = run_cli("cleanup-local", *args)
    assert result.exit_code == 2 and result.json["errors"][0]["type"] == "usage"


def test_corrupt_index_stops_the_sweep(workspace, run_cli):
    logs = workspace / "logs"
    put(logs / "builds/1-a.log", b"a", 30 * DAY)
    copy = put(logs / "builds/1-a.log.gz", gzip.compress(b"a"), 30 * DAY)
    temp = put(logs / f"builds/1-a.log.la-{PID}-01.tmp", b"t", 30 * DAY)
    (logs / ".archive-index.json").write_text("{broken")
    result = run_cli("cleanup-local", "--orphans")
    assert result.exit_code == 1 and result.json["errors"][0]["type"] == "index_corrupt"
    assert copy.exists() and temp.exists()  # nothing went, not even what needs no index

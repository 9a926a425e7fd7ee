"""Nothing lost: SIGKILL at any moment, and eight archive runs at once."""

import gzip
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from log_archiver.index.rules import validate_index_document
from log_archiver.util.samples import write_sample_logs

ARCHIVE = [str(Path(sys.executable).with_name("log-archiver"))]


def run_archive(issue, cwd, env, **kwargs):
    return subprocess.Popen([*ARCHIVE, "archive", str(issue), "--quiet"], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


def environment(workspace):
    env = dict(os.environ)
    env.update(GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.invalid",
               GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.invalid")
    return env


class IndexWatcher(threading.Thread):
    """Reads the index over and over; every read must be a valid index (or no file yet)."""

    def __init__(self, path):
        super().__init__(daemon=True)
        self.path = path
        self.reads = 0
        self.problems = []
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            try:
                raw = self.path.read_bytes()
            except FileNotFoundError:
                continue
            self.reads += 1
            try:
                found = validate_index_document(json.loads(raw))
            except ValueError as error:
                found = [str(error)]
            if found:
                self.problems.append(found)


def _stored(store: Path) -> set[Path]:
    return {p for p in (store / "archive").rglob("*") if p.is_file()}


def _phase(logs: Path, store: Path, originals: dict, before: set, stored_before: set) -> str:
    """How far this run had got when its kill landed."""
    if any(not (logs / n).exists() for n in originals if n not in before):
        return "cleaning"
    if _stored(store) - stored_before:
        return "stored"
    if (logs / ".archive-index.json").exists():
        return "planned"
    return "starting"


def _wait_for(process, stage, before: set, timeout: float = 20.0) -> None:
    """Until ``stage(before)`` holds, the run ends, or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while not stage(before) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.001)


def test_sigkill_at_any_moment_loses_nothing(workspace):
    """Runs are killed at points chosen along the workflow (before anything is written,
    once the plan is in the index, once objects are stored, while local files are
    deleted), each with some jitter; then clean runs must finish every archive."""
    logs = workspace / "logs"
    store = workspace.parent / "store"
    issues = range(5, 12)
    originals = {}
    for issue in issues:
        for path in write_sample_logs(logs, issue, big=3_000_000, small=300_000, seed=issue):
            originals[path.relative_to(logs).as_posix()] = path.read_bytes()
    env = environment(workspace)
    watcher = IndexWatcher(logs / ".archive-index.json")
    watcher.start()
    rng = random.Random(7)
    stages = [lambda before: True,
              lambda before: (logs / ".archive-index.json").exists(),
              lambda before: bool(_stored(store) - stored_before),
              lambda before: any(not (logs / n).exists() for n in originals if n not in before)]
    killed_in = []
    for round_ in range(2 * len(issues)):
        issue = issues[round_ // 2]
        before = {name for name in originals if not (logs / name).exists()}
        stored_before = _stored(store)
        process = run_archive(issue, workspace, env)
        stage = (round_ + round_ // 2) % len(stages)
        _wait_for(process, stages[stage], before)
        if stage < 2:  # storing and deleting take milliseconds: kill the moment they start
            time.sleep(rng.uniform(0.0, 0.02))
        if process.poll() is None:
            killed_in.append(_phase(logs, store, originals, before, stored_before))
            process.send_signal(signal.SIGKILL)
        process.wait()
    for issue in issues:
        final = run_archive(issue, workspace, env)
        out, err = final.communicate(timeout=120)
        assert final.returncode == 0, (out, err)
    watcher.stop.set()
    watcher.join()
    assert len(killed_in) >= 7, killed_in
    assert {"planned", "stored", "cleaning"} <= set(killed_in), killed_in
    assert watcher.reads > 0 and not watcher.problems
    index = json.loads((logs / ".archive-index.json").read_text())
    assert not validate_index_document(index)
    store = workspace.parent / "store"
    for entry in index["archives"]:
        names = [log["local_path"] for log in entry["logs"]]
        assert len(names) == len(set(names)) == 4
        assert entry["upload_complete"]
        for log in entry["logs"]:
            data = (store / log["remote_path"]).read_bytes()
            assert "sha256:" + hashlib.sha256(data).hexdigest() == log["checksum"]
            restored = gzip.decompress(data) if log["compressed"] else data
            assert restored == originals[log["local_path"]]
    leftovers = [p for p in logs.rglob("*") if p.is_file() and not p.name.startswith(".")
                 and ".archive-audit" not in p.parts]
    assert leftovers == []
    from log_archiver.audit.reader import read_trail  # each kill cuts at most one line

    trail = read_trail(logs / ".archive-audit")
    assert len(trail.skipped) <= len(killed_in), trail.skipped
    assert {line["issue"] for line in trail.lines if line["op"] == "archive"} == set(issues)
    assert not [p for p in logs.rglob("*") if ".la-" in p.name], list(logs.rglob("*"))


def test_eight_archives_at_once_lose_no_entry(workspace):
    env = environment(workspace)
    subprocess.run(["git", "init", "-q", str(workspace)], check=True)
    subprocess.run(["git", "-C", str(workspace), "commit", "-q", "--allow-empty", "-m", "init"],
                   check=True, env=env)
    issues = list(range(101, 109))
    for issue in issues:
        write_sample_logs(workspace / "logs", issue, big=1_200_000, seed=issue)
    processes = [run_archive(issue, workspace, env) for issue in issues]
    for process in processes:
        out, err = process.communicate(timeout=180)
        assert process.returncode == 0, (out, err)
    index = json.loads((workspace / "logs/.archive-index.json").read_text())
    assert not validate_index_document(index)
    assert [e["issue_number"] for e in index["archives"]] == sorted(issues, reverse=True)
    head = subprocess.run(["git", "-C", str(workspace), "show",
                           "HEAD:logs/.archive-index.json"], capture_output=True, check=True)
    committed = json.loads(head.stdout)
    assert [e["issue_number"] for e in committed["archives"]] == sorted(issues, reverse=True)
    log = subprocess.run(["git", "-C", str(workspace), "log", "--format=%s"],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    # a run whose entries another run already committed has nothing left to commit
    assert 1 <= len([line for line in log if line.startswith("Archive logs for issue #")]) <= 8


def test_an_archive_syncs_what_it_stores_but_not_its_compressed_copies(workspace, run_cli,
                                                                      monkeypatch):
    """A copy is deleted with its log once the stored object is verified: syncing it
    would only write to disk what is about to go. compress-logs leaves its copies for
    people, and syncs them."""
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd):
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    write_sample_logs(workspace / "logs", 7, big=1_500_000, seed=1)
    assert run_cli("archive", "7").exit_code == 0
    assert not [path for path in synced if ".la.gz" in path]
    stored = [path for path in synced if "/store/" in path]
    assert len([path for path in stored if "/store/.log-archiver/tmp/" in path]) == 4
    synced.clear()
    write_sample_logs(workspace / "logs", 8, big=1_500_000, seed=2)
    big = workspace / "logs/sessions/session-8-2025-01-15.md"  # the one over 1 MiB
    assert big.stat().st_size > 1 << 20
    assert run_cli("compress-logs", str(big)).exit_code == 0
    assert [path for path in synced if ".la.gz" in path]

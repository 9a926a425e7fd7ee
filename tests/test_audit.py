"""The audit trail: one line per change across a whole archive run (each local delete,
each upload), the lines other commands' events become, commits that carry it, a SIGKILL
that leaves at most the last line incomplete, and git branches that merge it cleanly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from log_archiver.audit.reader import read_trail
from log_archiver.audit.trail import AuditTrail, UnsafeAuditPath, audit_dir, day_files
from log_archiver.config import load_config
from log_archiver.repository import Repository
from log_archiver.util.samples import write_sample_logs

ISSUE = 42


def trail_lines(workspace) -> list[dict]:
    lines = []
    for _day, path in day_files(audit_dir(workspace / "logs")):
        lines += [json.loads(text) for text in path.read_text().splitlines()]
    return lines


def git(*args, cwd) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout


def test_a_whole_archive_run_leaves_one_line_per_change(workspace, run_cli, isolated_git):
    git("init", "-q", cwd=workspace)
    assert run_cli("init").exit_code == 0
    write_sample_logs(workspace / "logs", ISSUE)
    result = run_cli("archive", ISSUE)
    assert result.exit_code == 0, result.stdout
    doc = result.json
    lines = trail_lines(workspace)
    deletes = [line for line in lines if line["op"] == "delete_local"]
    assert sorted(line["file"] for line in deletes) == sorted(doc["cleanup"]["deleted"])
    assert len(deletes) == 5  # four logs and the compressed copy of the big one
    index = json.loads((workspace / "logs/.archive-index.json").read_text())
    logs = {log["local_path"]: log for log in index["archives"][0]["logs"]}
    for line in deletes:
        log = logs[line["details"]["local_path"]]
        copy = line["file"] != log["local_path"]
        assert line["checksum"] == log["checksum" if copy else "original_checksum"]
        assert line["bytes"] == (log["size_bytes"] if copy else log["original_size_bytes"])
    uploads = [line for line in lines if line["op"] == "upload"]
    assert sorted(line["file"] for line in uploads) == sorted(logs)
    for line in uploads:
        assert line["outcome"] == "created"
        assert line["checksum"] == logs[line["file"]]["checksum"]
        assert line["details"]["key"] == logs[line["file"]]["remote_path"]
    (archived,) = [line for line in lines if line["op"] == "archive"]
    assert archived["outcome"] == "ok" and archived["issue"] == ISSUE
    assert archived["details"]["logs"] == 4
    for line in lines:
        assert line["user"] == "Test <test@example.com>"
        assert line["version"] and line["time"].endswith("Z")
    # committed with the index, and nothing of it left uncommitted
    committed = git("show", "--name-only", "--format=", "HEAD", cwd=workspace).split()
    day = day_files(audit_dir(workspace / "logs"))[0][1]
    assert f"logs/.archive-audit/{day.name}" in committed
    assert git("status", "--porcelain", "--", "logs/.archive-audit", cwd=workspace) == ""


def test_the_commit_leaves_other_staged_work_alone(workspace, run_cli, isolated_git):
    git("init", "-q", cwd=workspace)
    assert run_cli("init").exit_code == 0
    (workspace / "notes.txt").write_text("mine\n")
    git("add", "notes.txt", cwd=workspace)
    write_sample_logs(workspace / "logs", ISSUE)
    assert run_cli("archive", ISSUE).exit_code == 0
    committed = git("show", "--name-only", "--format=", "HEAD", cwd=workspace).split()
    assert "notes.txt" not in committed
    assert "A  notes.txt" in git("status", "--porcelain", cwd=workspace)


def test_repairs_and_other_commands_events_become_lines(workspace, run_cli):
    write_sample_logs(workspace / "logs", ISSUE)
    assert run_cli("archive", ISSUE, "--no-commit").exit_code == 0
    assert run_cli("mark-partial-archive", ISSUE, "index update failed").exit_code == 0
    assert run_cli("mark-partial-archive", ISSUE, "--clear").exit_code == 0
    marked = run_cli("update-file-status", ISSUE, "builds/42-build.log", "pending")
    assert marked.exit_code == 0, marked.stdout
    rebuilt = run_cli("archive", ISSUE, "--reindex-only")  # finds the pending log stored
    assert rebuilt.json["status"] == "ok", rebuilt.stdout
    assert run_cli("archive", ISSUE, "--reindex-only").json["status"] == "noop"  # no line
    repo = Repository(config=load_config())
    repo.start_audit()
    repo.events.emit("object.deleted", issue=ISSUE, path="builds/42-build.log", bytes=80,
                     key="archive/logs/2025/01/42/42-build.log", checksum="sha256:ab",
                     rule="build: 30d")
    repo.events.emit("entry.held", issue=ISSUE, reason="litigation", by="legal")
    repo.events.emit("entry.released", issue=ISSUE, reason="settled", by="legal")
    repo.events.emit("file.restored", issue=ISSUE, path="builds/42-build.log", bytes=80,
                     checksum="sha256:ab", target="/tmp/out.log")
    repo.events.emit("file.failed", issue=ISSUE, path="x", step="upload",
                     error={"type": "storage", "message": "PUT https://AKIA:secret@host/b failed"})
    repo.events.emit("file.compressed", issue=ISSUE, path="y", bytes=5)  # no change: no line
    assert repo.events.error_summary() is None
    ops = [line["op"] for line in trail_lines(workspace)]
    assert ops.count("mark-partial-archive") == 2
    (status,) = [line for line in trail_lines(workspace) if line["op"] == "update-file-status"]
    assert status["file"] == "builds/42-build.log"
    assert status["details"] == {"status_before": "cleaned", "status_after": "pending"}
    assert ops[-6:] == ["reindex", "delete_object", "hold", "release", "restore", "upload"]
    assert ops.count("reindex") == 1
    last = trail_lines(workspace)
    deleted = next(line for line in last if line["op"] == "delete_object")
    assert deleted["details"] == {"key": "archive/logs/2025/01/42/42-build.log",
                                  "rule": "build: 30d"}
    assert deleted["checksum"] == "sha256:ab" and deleted["bytes"] == 80
    held = next(line for line in last if line["op"] == "hold")
    assert held["details"] == {"reason": "litigation", "by": "legal"}
    failed = last[-1]
    assert failed["outcome"] == "failed"
    assert "secret" not in json.dumps(failed) and "AKIA" not in json.dumps(failed)
    assert "https://host/b" in failed["details"]["error"]["message"]


def test_a_dry_run_writes_no_line(workspace, run_cli):
    write_sample_logs(workspace / "logs", ISSUE)
    assert run_cli("archive", ISSUE, "--dry-run").exit_code == 0
    assert not audit_dir(workspace / "logs").exists()


def test_the_audit_command_filters(workspace, run_cli):
    write_sample_logs(workspace / "logs", ISSUE)
    write_sample_logs(workspace / "logs", 7)
    assert run_cli("archive", ISSUE, "--no-commit").exit_code == 0
    assert run_cli("archive", 7, "--no-commit").exit_code == 0
    everything = run_cli("audit").json
    assert everything["count"] == len(trail_lines(workspace)) == 20
    only = run_cli("audit", "--issue", "7", "--op", "delete_local").json
    assert only["count"] == 5
    assert {(line["issue"], line["op"]) for line in only["lines"]} == {(7, "delete_local")}
    times = [line["time"] for line in everything["lines"]]
    assert times == sorted(times)
    assert run_cli("audit", "--since", "2999-01-01").json["count"] == 0
    assert run_cli("audit", "--since", times[0][:10]).json["count"] == 20
    bad = run_cli("audit", "--since", "yesterday")
    assert bad.exit_code == 2 and "yesterday" in bad.json["errors"][0]["message"]


WRITER = """
import sys
from pathlib import Path
from log_archiver.audit.trail import AuditTrail
trail = AuditTrail(Path(sys.argv[1]))
trail._user_known = True
n = 0
while True:
    n += 1
    trail.record("upload", issue=1, file=f"builds/1-{n}.log", bytes=n,
                 details="x" * 3000)
"""


def test_sigkill_leaves_at_most_the_last_line_incomplete(tmp_path):
    folder = tmp_path / "audit"
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(folder)])
               for _ in range(2)]
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            files = day_files(folder)
            if files and files[-1][1].stat().st_size > 400_000:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the writers wrote too little in 60 s")
    finally:
        for writer in writers:
            os.kill(writer.pid, signal.SIGKILL)
            writer.wait()
    raw = b"".join(path.read_bytes() for _day, path in day_files(folder))
    started = raw.count(b'{"time":"')
    # each writer may be cut in the middle of its last write (the kernel stops a write
    # to a file between pages when the process is killed), and the other may append
    # after that torn line on the same row: every other line is read back whole
    reading = read_trail(folder)
    assert started - 2 <= len(reading.lines) <= started and len(reading.lines) > 100
    assert {line["op"] for line in reading.lines} == {"upload"}
    assert len(reading.skipped) <= 2
    assert len({line["file"] for line in reading.lines}) * 2 >= len(reading.lines)


def test_a_line_glued_to_a_torn_one_is_read_and_the_torn_one_counted(tmp_path):
    folder = tmp_path / "audit"
    AuditTrail(folder).record("upload", issue=1, file="a")
    (_day, path), = day_files(folder)
    whole = path.read_bytes()
    # a writer killed mid-line, then another process's line on the same row
    path.write_bytes(whole + whole[:40] + whole.replace(b'"file":"a"', b'"file":"b"'))
    reading = read_trail(folder)
    assert [line["file"] for line in reading.lines] == ["a", "b"]
    assert [s["reason"] for s in reading.skipped] == ["incomplete"]


def test_a_torn_last_line_is_skipped_and_the_next_writer_starts_afresh(tmp_path):
    folder = tmp_path / "audit"
    AuditTrail(folder).record("upload", issue=1, file="a")
    (_day, path), = day_files(folder)
    with open(path, "ab") as handle:
        handle.write(b'{"time":"2026-01-01T00:00:00.0Z","op":"upl')  # power lost mid-line
    AuditTrail(folder).record("archive", issue=1)
    reading = read_trail(folder)
    assert [line["op"] for line in reading.lines] == ["upload", "archive"]
    assert [s["reason"] for s in reading.skipped] == ["malformed"]
    with open(path, "ab") as handle:
        handle.write(b"not json\n{\"half")
    reading = read_trail(folder)
    assert [s["reason"] for s in reading.skipped] == ["malformed", "malformed", "incomplete"]
    assert len(reading.lines) == 2


def test_two_branches_appending_to_one_day_merge_without_conflict(workspace, run_cli,
                                                                  isolated_git):
    git("init", "-q", "-b", "main", cwd=workspace)
    assert run_cli("init").exit_code == 0
    attributes = (workspace / ".gitattributes").read_text()
    assert "/logs/.archive-audit/*.jsonl merge=union" in attributes
    trail = AuditTrail(audit_dir(workspace / "logs"))
    trail.record("archive", issue=1)
    git("add", "-A", cwd=workspace)
    git("commit", "-qm", "base", cwd=workspace)
    git("checkout", "-qb", "other", cwd=workspace)
    AuditTrail(audit_dir(workspace / "logs")).record("archive", issue=2)
    git("commit", "-qam", "other", cwd=workspace)
    git("checkout", "-q", "main", cwd=workspace)
    AuditTrail(audit_dir(workspace / "logs")).record("archive", issue=3)
    git("commit", "-qam", "main", cwd=workspace)
    merged = subprocess.run(["git", "merge", "-q", "--no-edit", "other"], cwd=workspace,
                            capture_output=True, text=True)
    assert merged.returncode == 0, merged.stdout + merged.stderr
    reading = read_trail(audit_dir(workspace / "logs"))
    assert sorted(line["issue"] for line in reading.lines) == [1, 2, 3]
    assert reading.skipped == []
    again = run_cli("init")
    assert again.json["merge_driver"]["audit_attributes_changed"] is False
    assert (workspace / ".gitattributes").read_text() == attributes


def test_lines_never_carry_a_url_with_userinfo(tmp_path):
    trail = AuditTrail(tmp_path)
    trail.record("upload", file="s3://KEY:SECRET@bucket/x",
                 error="GET https://user:pa@ss@host/path failed")
    text = Path(day_files(tmp_path)[0][1]).read_text()
    assert "SECRET" not in text and "pa@ss" not in text and "https://host/path" in text


def test_a_run_stopped_before_its_archive_line_has_the_line_written_by_the_rerun(
        workspace, run_cli, isolated_git):
    git("init", "-q", cwd=workspace)
    assert run_cli("init").exit_code == 0
    write_sample_logs(workspace / "logs", ISSUE)
    assert run_cli("archive", ISSUE, "--no-commit").exit_code == 0
    # as a SIGKILL after the logs were cleaned, before the line and the commit, leaves it
    for _day, path in day_files(audit_dir(workspace / "logs")):
        kept = [text for text in path.read_text().splitlines()
                if json.loads(text)["op"] != "archive"]
        path.write_text("".join(f"{text}\n" for text in kept))
    assert not [line for line in trail_lines(workspace) if line["op"] == "archive"]

    rerun = run_cli("archive", ISSUE)
    assert rerun.exit_code == 0 and rerun.json["status"] == "ok", rerun.stdout[-3000:]
    [line] = [line for line in trail_lines(workspace) if line["op"] == "archive"]
    assert line["issue"] == ISSUE and line["details"]["recovered"] is True
    entry = json.loads((workspace / "logs/.archive-index.json").read_text())["archives"][0]
    assert line["bytes"] == entry["total_size_bytes"] and line["details"]["logs"] == 4
    committed = git("show", "--name-only", "--format=", "HEAD", cwd=workspace).split()
    assert any(name.startswith("logs/.archive-audit/") for name in committed)

    again = run_cli("archive", ISSUE)  # the line is there now: nothing more to write
    assert again.exit_code == 0 and again.json["status"] == "noop", again.stdout
    assert len([line for line in trail_lines(workspace) if line["op"] == "archive"]) == 1


def test_a_symlinked_audit_folder_is_refused_and_never_followed(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / ".archive-audit").symlink_to(outside)
    trail = AuditTrail(audit_dir(logs))
    with pytest.raises(UnsafeAuditPath, match="folder is a symlink") as caught:
        trail.check()
    assert str(outside) in caught.value.message and "remove" in caught.value.hint
    with pytest.raises(UnsafeAuditPath, match="folder is a symlink"):
        trail.record("upload", issue=1, file="a")  # planted after the check: refused too
    assert list(outside.iterdir()) == []
    with pytest.raises(UnsafeAuditPath):
        read_trail(audit_dir(logs))


def test_a_symlinked_day_file_is_refused_and_never_followed(tmp_path):
    folder = tmp_path / "logs" / ".archive-audit"
    folder.mkdir(parents=True)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    moment = datetime(2026, 3, 4, 12, tzinfo=UTC)
    (folder / "2026-03-04.jsonl").symlink_to(victim)
    trail = AuditTrail(folder, clock=lambda: moment)
    with pytest.raises(UnsafeAuditPath, match="file is a symlink"):
        trail.check()
    with pytest.raises(UnsafeAuditPath, match="file is a symlink"):
        trail.record("upload", issue=1, file="a")
    (folder / "2026-03-05.jsonl").symlink_to(tmp_path / "missing.txt")  # dangling
    later = AuditTrail(folder, clock=lambda: datetime(2026, 3, 5, 1, tzinfo=UTC))
    with pytest.raises(UnsafeAuditPath, match="file is a symlink"):
        later.record("upload", issue=1, file="a")
    assert victim.read_text() == "precious\n"
    assert not (tmp_path / "missing.txt").exists()
    assert day_files(folder) == []  # the reader leaves the links out as well


def test_a_fifo_day_file_is_refused(tmp_path):
    folder = tmp_path / ".archive-audit"
    folder.mkdir()
    moment = datetime(2026, 3, 4, 12, tzinfo=UTC)
    os.mkfifo(folder / "2026-03-04.jsonl")
    with pytest.raises(UnsafeAuditPath, match="not a regular file"):
        AuditTrail(folder, clock=lambda: moment).record("upload", issue=1)


def test_archive_refuses_a_symlinked_trail_before_changing_anything(workspace, run_cli,
                                                                     tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (workspace / "logs" / ".archive-audit").symlink_to(outside)
    written = write_sample_logs(workspace / "logs", ISSUE)
    before = sorted(p.relative_to(workspace) for p in (workspace / "logs").rglob("*"))
    result = run_cli("archive", ISSUE)
    assert result.exit_code == 1, result.stdout
    doc = result.json
    assert doc["status"] == "error"
    (error,) = doc["errors"]
    assert error["type"] == "local_file"
    assert ".archive-audit" in error["message"] and str(outside) in error["message"]
    assert "remove" in error["hint"]
    assert list(outside.iterdir()) == []
    assert sorted(p.relative_to(workspace) for p in (workspace / "logs").rglob("*")) == before
    assert written and all(Path(p).exists() for p in written)
    assert not (workspace / "logs/.archive-index.json").exists()


def test_a_line_that_cannot_be_written_is_reported_as_the_audit_trail_failing(tmp_path):
    from log_archiver.audit.listener import AuditListener
    from log_archiver.cli.progress import Display
    from log_archiver.events import Events

    (tmp_path / "logs").write_text("a file where the folder should be")
    events = Events()
    events.subscribe(AuditListener(AuditTrail(tmp_path / "logs" / ".archive-audit")))
    events.emit("file.uploaded", issue=7, path="builds/7-build.log", bytes=10)
    payload = Display(say=print, events=events).report({"warnings": []})
    [warning] = payload["warnings"]
    assert warning.startswith("the audit trail (a line of what changed was not written) "
                              "failed: ")


def test_commands_that_only_read_leave_a_symlinked_trail_alone(workspace, run_cli, tmp_path):
    write_sample_logs(workspace / "logs", ISSUE)
    assert run_cli("archive", ISSUE, "--no-commit").exit_code == 0
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    trail = workspace / "logs" / ".archive-audit"
    for path in trail.iterdir():
        path.unlink()
    trail.rmdir()
    trail.symlink_to(outside)
    for words in (["list"], ["read", ISSUE], ["search", "ERROR"], ["validate-index"]):
        result = run_cli(*words)
        assert result.exit_code == 0, (words, result.stdout)
    assert list(outside.iterdir()) == []  # nothing was written through the link
    refused = run_cli("hold", ISSUE, "--reason", "legal")
    assert refused.exit_code == 1 and refused.json["errors"][0]["type"] == "local_file"


def test_deferred_lines_are_written_at_once_and_synced_before_the_index_is(tmp_path,
                                                                           monkeypatch):
    """Inside ``deferred`` a line is in the file as soon as it is recorded (a killed
    process loses nothing) and on disk before the index next is: one sync for many."""
    from log_archiver.index.file import ArchiveIndex
    from log_archiver.model.records import new_entry

    synced: list[str] = []
    real = os.fdatasync
    monkeypatch.setattr(os, "fdatasync",
                        lambda fd: (synced.append(os.readlink(f"/proc/self/fd/{fd}")), real(fd)))
    trail = AuditTrail(tmp_path / "audit")
    index = ArchiveIndex(tmp_path / "index.json")
    index.before_write.append(trail.sync)
    written_first = []
    index.before_write.insert(0, lambda: written_first.append(list(synced)))
    with trail.deferred():
        for n in range(5):
            trail.record("upload", issue=7, file=f"builds/7-{n}.log")
        [(_, day)] = day_files(tmp_path / "audit")
        assert len(day.read_text().splitlines()) == 5
        assert synced == []
        with index.transaction() as txn:
            txn.put(new_entry(7, "manual", "file:///store"))
        assert synced == [str(day)] and written_first == [[]]
    assert synced == [str(day)]  # nothing was left to sync when the block ended
    trail.record("delete_local", issue=7)
    assert synced == [str(day)] * 2  # outside the block: synced at once


def test_lines_left_unsynced_are_synced_when_the_deferred_block_ends(tmp_path, monkeypatch):
    synced: list[int] = []
    real = os.fdatasync
    monkeypatch.setattr(os, "fdatasync", lambda fd: (synced.append(fd), real(fd)))
    trail = AuditTrail(tmp_path / "audit")
    with pytest.raises(RuntimeError), trail.deferred():
        trail.record("upload", issue=8)
        trail.record("upload", issue=8)
        raise RuntimeError("the archive failed half way")
    assert len(synced) == 1
    assert [line["issue"] for line in read_trail(tmp_path / "audit").lines] == [8, 8]


def test_since_a_second_includes_the_lines_written_within_it(tmp_path):
    trail = AuditTrail(tmp_path / "audit")
    line = trail.record("archive", issue=3)
    second = line["time"][:19] + "Z"  # what an index timestamp or `audit --since` gives
    assert [found["issue"] for found in read_trail(trail.folder, since=second).lines] == [3]
    assert read_trail(trail.folder, since="2999-01-01T00:00:00Z").lines == []


def test_a_line_creates_the_day_file_only_when_it_is_missing(tmp_path, monkeypatch):
    """The day's first line makes the file (exclusively); every later one opens it as it is,
    with no create attempt that the kernel must refuse."""
    folder = tmp_path / "trail"
    trail = AuditTrail(folder)
    opened = []
    real_open = os.open

    def counting_open(path, flags, *args, **kwargs):
        opened.append((os.fspath(path), bool(flags & os.O_CREAT)))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", counting_open)
    for n in range(3):
        trail.record("upload", issue=n + 1, file="a")
    files = [(name, create) for name, create in opened if name.endswith(".jsonl")]
    day = files[0][0]
    assert files == [(day, False), (day, True), (day, False), (day, False)]
    assert [line["issue"] for line in map(json.loads, (folder / day).read_text().splitlines())
            ] == [1, 2, 3]

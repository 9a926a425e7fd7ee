"""A batch compresses the next issues while the current one uploads: what it made ahead is
used only while the logs are still what it compressed, and nothing it made outlives the
batch unless the index records it."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from log_archiver.archive.ahead import CompressAhead
from log_archiver.archive.ahead_child import CompressAheadInChild
from log_archiver.archive.collect import collect_logs
from log_archiver.archive.pipeline import archive
from log_archiver.config import load_config
from log_archiver.queue.batch import archive_issues
from log_archiver.repository import Repository
from log_archiver.search.grams import Indexer, block_grams, gram_of
from log_archiver.util.hashing import sha256_file
from log_archiver.util.samples import write_sample_logs


def repository() -> Repository:
    repo = Repository(config=load_config().with_overrides(commit=False))
    repo.start_audit()
    return repo


def copies(logs: Path) -> list[Path]:
    return sorted(p for p in logs.rglob("*") if p.is_file() and p.name.startswith(".")
                  and ".la." in p.name)


# compressing ahead in a child process (what a batch does) and on threads of this one
KINDS = pytest.mark.parametrize("kind", [CompressAheadInChild, CompressAhead],
                                ids=["child", "threads"])


def wait_made(ahead, issue: int) -> None:
    future = ahead._made[issue]
    deadline = time.monotonic() + 30
    while not future.done():
        assert time.monotonic() < deadline, f"issue {issue} was never compressed ahead"
        time.sleep(0.01)


def test_a_batch_archives_what_one_issue_at_a_time_archives(workspace):
    for issue in (1, 2, 3):
        write_sample_logs(workspace / "logs", issue, big=1_500_000, seed=issue)
    expected = {}
    for issue in (1, 2, 3):
        for found in collect_logs(workspace / "logs", issue)[0]:
            expected[found.relative] = f"sha256:{sha256_file(found.path)}"
    result = archive_issues(repository(), [1, 2, 3], commit=False)

    assert result["status"] == "ok", result
    doc = json.loads((workspace / "logs/.archive-index.json").read_text())
    recorded = {log["local_path"]: log["original_checksum"]
                for entry in doc["archives"] for log in entry["logs"]}
    assert recorded == expected
    assert all(log["upload_status"] == "cleaned"
               for entry in doc["archives"] for log in entry["logs"])
    assert copies(workspace / "logs") == []


@KINDS
def test_a_log_changed_after_it_was_compressed_ahead_is_compressed_again(workspace, kind):
    logs = workspace / "logs"
    for issue in (1, 2):
        write_sample_logs(logs, issue, big=1_500_000, seed=issue)
    repo = repository()
    ahead = kind(repo, [1, 2])
    try:
        wait_made(ahead, 2)
        grown = logs / "builds/2-build.log"
        with open(grown, "ab") as handle:
            handle.write(b"one more line written after the copy was made\n")
        expected, size = f"sha256:{sha256_file(grown)}", grown.stat().st_size
        assert archive(repo, 1, commit=False, ahead=ahead)["status"] == "ok"
        ahead.done_with(1)
        result = archive(repo, 2, commit=False, ahead=ahead)
        ahead.done_with(2)
    finally:
        ahead.close()

    assert result["status"] == "ok", result
    record = next(log for log in repo.index.find(2)["logs"]
                  if log["local_path"] == "builds/2-build.log")
    assert record["original_checksum"] == expected
    assert record["original_size_bytes"] == size
    assert copies(logs) == []


@KINDS
def test_copies_made_for_issues_the_batch_never_reached_are_deleted(workspace, kind):
    logs = workspace / "logs"
    for issue in (1, 2, 3):
        write_sample_logs(logs, issue, big=1_500_000, seed=issue)
    before = {p: p.read_bytes() for p in logs.rglob("*") if p.is_file()}
    ahead = kind(repository(), [1, 2, 3])
    wait_made(ahead, 1)
    wait_made(ahead, 2)
    assert copies(logs), "nothing was compressed ahead"
    ahead.close()  # the batch stopped before any issue was prepared

    assert copies(logs) == []
    after = {p: p.read_bytes() for p in logs.rglob("*") if p.is_file()}
    assert after == before  # the logs themselves untouched


def test_compressing_ahead_stops_at_a_number_of_issues_and_of_bytes(workspace, monkeypatch):
    from log_archiver.archive import ahead

    for issue in (1, 2, 3, 4):
        write_sample_logs(workspace / "logs", issue, big=1_200_000, seed=issue)
    one_issue = sum(f.size for f in collect_logs(workspace / "logs", 1)[0])

    def begun(lanes, expected: list[int]) -> list[int]:
        """The issues begun, once ``expected`` are, and time enough to begin one more."""
        def now():
            return [issue for issue, future in lanes.made.items()
                    if future.running() or future.done() and not future.cancelled()]

        deadline = time.monotonic() + 30
        while not set(expected) <= set(now()) and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.5)  # (were one more allowed, it would have begun by now)
        return now()

    lanes = ahead.Lanes(repository(), [1, 2, 3, 4], depth=2)
    try:
        assert begun(lanes, [1, 2]) == [1, 2]
        lanes.release(1)  # the batch is done with one: room for one more
        assert begun(lanes, [1, 2, 3]) == [1, 2, 3]
    finally:
        lanes.stop()
    monkeypatch.setattr(ahead, "AHEAD_BYTES", one_issue)  # room for one issue's logs
    lanes = ahead.Lanes(repository(), [1, 2, 3, 4], depth=8)
    try:
        assert begun(lanes, [1]) == [1]
        lanes.release(1)
        assert begun(lanes, [1, 2]) == [1, 2]
        lanes.release(3)  # (passed by before its turn: never begun, it holds no bytes)
        lanes.release(2)
        assert begun(lanes, [1, 2, 4]) == [1, 2, 4]
    finally:
        lanes.stop()
    for copy in copies(workspace / "logs"):  # (what a batch would delete: none took them)
        copy.unlink()


@KINDS
def test_a_copy_the_index_records_is_kept(workspace, kind):
    logs = workspace / "logs"
    for issue in (1, 2):
        write_sample_logs(logs, issue, big=1_500_000, seed=issue)
    repo = Repository(config=load_config().with_overrides(commit=False))
    ahead = kind(repo, [1, 2])
    try:
        wait_made(ahead, 1)
        from log_archiver.archive.prepare import prepare

        plan = prepare(repo, 1, ahead=ahead)
    finally:
        ahead.done_with(1)
        ahead.close()
    recorded = [logs / log["stored_path"] for log in repo.index.find(1)["logs"]
                if log["compressed"]]
    assert plan["files"] and recorded
    assert all(path.is_file() for path in recorded)  # prepared, to be uploaded next
    assert copies(logs) == recorded


def test_a_batch_compresses_ahead_in_a_child_process_and_cleanup_trusts_its_hashes(
        workspace, monkeypatch):
    from log_archiver.util import hashing

    logs = workspace / "logs"
    for issue in (1, 2, 3):
        write_sample_logs(logs, issue, big=1_500_000, seed=issue)
    time.sleep(hashing.RACY_SECONDS + 0.05)  # old enough that a hash of them is remembered
    repo = repository()
    ahead = CompressAheadInChild(repo, [1, 2, 3])
    child = ahead._child
    assert child.pid != os.getpid()
    wait_made(ahead, 2)
    # what the child hashed is remembered here: cleanup reads no log again
    found = collect_logs(logs, 2)[0]
    assert all(hashing.remembered_digest(f.path, f.path.stat()) == sha256_file(f.path)
               for f in found)
    reads = []
    real = hashing.sha256_and_size
    monkeypatch.setattr("log_archiver.util.hashing.sha256_and_size",
                        lambda path, *a, **k: reads.append(path) or real(path, *a, **k))
    try:
        for issue in (1, 2, 3):
            assert archive(repo, issue, commit=False, ahead=ahead)["status"] == "ok"
            ahead.done_with(issue)
    finally:
        ahead.close()
    assert child.returncode == 0  # stopped when told
    assert not [path for path in reads if Path(path) in {f.path for f in found}]
    assert copies(logs) == []
    assert all(log["upload_status"] == "cleaned" for log in repo.index.find(2)["logs"])


def test_a_child_that_dies_costs_only_time(workspace):
    logs = workspace / "logs"
    for issue in (1, 2, 3):
        write_sample_logs(logs, issue, big=1_500_000, seed=issue)
    expected = {f.relative: f"sha256:{sha256_file(f.path)}" for issue in (1, 2, 3)
                for f in collect_logs(logs, issue)[0]}
    repo = repository()
    ahead = CompressAheadInChild(repo, [1, 2, 3])
    wait_made(ahead, 1)
    ahead._child.kill()
    try:
        results = []
        for issue in (1, 2, 3):  # 1 from the child, 2 and 3 compressed by prepare itself
            results.append(archive(repo, issue, commit=False, ahead=ahead)["status"])
            ahead.done_with(issue)
    finally:
        ahead.close()
    assert results == ["ok", "ok", "ok"]
    recorded = {log["local_path"]: log["original_checksum"]
                for issue in (1, 2, 3) for log in repo.index.find(issue)["logs"]}
    assert recorded == expected
    assert copies(logs) == []


def test_a_child_whose_batch_is_killed_stops_at_once(workspace):
    logs = workspace / "logs"
    for issue in range(1, 9):
        write_sample_logs(logs, issue, big=1_500_000, seed=issue)
    script = (
        "import sys, time\n"
        "from log_archiver.archive.ahead_child import CompressAheadInChild\n"
        "from log_archiver.config import load_config\n"
        "from log_archiver.repository import Repository\n"
        "ahead = CompressAheadInChild(Repository(config=load_config()), list(range(1, 9)))\n"
        "print(ahead._child.pid, flush=True)\n"
        "time.sleep(60)\n")
    batch = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                             cwd=workspace, text=True)
    try:
        child = int(batch.stdout.readline())
        os.kill(batch.pid, signal.SIGKILL)
        batch.wait()
        deadline = time.monotonic() + 10
        while _alive(child):
            assert time.monotonic() < deadline, "the child outlived its batch"
            time.sleep(0.02)
    finally:
        batch.kill()
        batch.wait()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_pools_are_kept_for_the_batch_and_shut_down_after(workspace):
    repo = repository()
    with repo.keeping_pools():
        with repo.pool("upload", 2, most=4) as first:
            pass
        with repo.pool("upload", 3, most=4) as second:
            assert second.submit(lambda: 7).result() == 7
    assert first is second
    assert first._shutdown
    with repo.pool("upload", 2) as alone:
        assert alone is not first
    assert alone._shutdown


def test_kept_pools_are_the_keeping_threads_alone(workspace):
    import threading

    repo = repository()
    seen = {}
    with repo.keeping_pools():
        with repo.pool("upload", 2) as kept:
            pass

        def other():
            with repo.pool("upload", 2) as pool:
                seen["pool"] = pool
        thread = threading.Thread(target=other)
        thread.start()
        thread.join()
    assert seen["pool"] is not kept and seen["pool"]._shutdown


def _grams_by_hand(data: bytes) -> set[int]:
    return {gram_of(data[i:i + 3]) for i in range(len(data) - 2)}


def test_block_grams_match_the_grams_of_the_text_whatever_the_cut():
    rng = random.Random(5)
    for _ in range(400):
        tail = bytes(rng.choice(b"ab\n\xe9") for _ in range(rng.choice([0, 1, 2])))
        block = bytes(rng.choice(b"abc\n\x80\xff") for _ in range(rng.choice([0, 1, 2, 5, 40])))
        grams = block_grams(tail, block)
        data = tail + block
        cut = block.rfind(b"\n")
        if cut < 0:
            assert set(grams.rest.tolist()) == _grams_by_hand(data)
            assert len(grams.head) == 0
        else:
            upto = len(tail) + cut + 1  # grams ending at or before the newline
            assert set(grams.head.tolist()) == _grams_by_hand(data[:upto])
            assert set(grams.rest.tolist()) == {gram_of(data[i:i + 3])
                                                for i in range(max(upto - 2, 0), len(data) - 2)}
        for found in (grams.head, grams.rest):
            assert list(found) == sorted(set(found.tolist()))  # sorted and distinct
        assert grams.lines == block.count(b"\n")


def test_a_large_block_and_a_small_one_give_the_same_chunks():
    line = b"2026-12-01 build step 12 passed in 3.2 s\n"
    text = line * 60_000  # ~2.5 MB: blocks of a megabyte take the bitmap path
    whole, pieces = Indexer(), Indexer()
    whole.feed(text)
    for start in range(0, len(text), 4096):  # small feeds take the sorting path
        pieces.feed(text[start:start + 4096])
    a, b = whole.finish(), pieces.finish()
    assert a.size == b.size == len(text) and a.lines == b.lines
    union_a = set().union(*(set(c.grams.tolist()) for c in a.chunks))
    union_b = set().union(*(set(c.grams.tolist()) for c in b.chunks))
    assert union_a == union_b == _grams_by_hand(text[:100_000])


def test_block_grams_over_several_pieces_match_the_grams_by_hand():
    from log_archiver.search.grams import PIECE

    rng = random.Random(9)
    for size, newlines in ((3 * PIECE + 123, True), (PIECE + 7, False), (2 * PIECE, True)):
        alphabet = b"abcdefgh \x80\xfe" + (b"\n" if newlines else b"")
        block = bytes(rng.choice(alphabet) for _ in range(size))
        tail = b"x\n"
        grams = block_grams(tail, block)
        data = tail + block
        cut = block.rfind(b"\n")
        upto = len(tail) + cut + 1 if cut >= 0 else 0
        assert set(grams.head.tolist()) == (_grams_by_hand(data[:upto]) if cut >= 0 else set())
        assert set(grams.rest.tolist()) == {gram_of(data[i:i + 3])
                                            for i in range(max(upto - 2, 0), len(data) - 2)}
        assert grams.lines == block.count(b"\n")


@pytest.mark.parametrize("words, batch", [
    (["archive", "--all-closed"], True),
    (["archive", "3", "4", "-q"], True),
    (["archive", "3"], False),
    (["archive", "3", "4", "--dry-run"], False),
    (["archive", "--all-closed", "--force"], False),
    (["archive", "--all-closed", "--help"], False),
    (["list", "3", "4"], False),
    ([], False),
])
def test_only_a_batch_that_compresses_ahead_starts_its_child_early(words, batch):
    from log_archiver.archive.early_child import is_batch

    assert is_batch(words) is batch


def test_a_child_started_early_is_the_one_the_batch_uses(workspace):
    from log_archiver.archive import early_child

    logs = workspace / "logs"
    for issue in (1, 2, 3):
        write_sample_logs(logs, issue, big=1_500_000, seed=issue)
    early_child.start_early()
    early = early_child._early
    assert early is not None and early.poll() is None  # waiting for its orders
    result = archive_issues(repository(), [1, 2, 3], commit=False)
    assert result["status"] == "ok", result
    assert early_child._early is None  # taken by the batch
    assert early.returncode == 0  # and stopped by it when done
    assert copies(logs) == []


def test_a_child_started_early_that_no_batch_takes_is_ended(workspace, monkeypatch, capsys):
    from log_archiver.archive import early_child
    from log_archiver.cli import main

    for issue in (1, 2):
        write_sample_logs(workspace / "logs", issue, big=1_500_000, seed=issue)
    started = []
    real = early_child.spawn_child
    monkeypatch.setattr(early_child, "spawn_child", lambda: started.append(real()) or started[-1])
    monkeypatch.setenv("LOG_ARCHIVER_COMPRESSION_LEVEL", "99")  # the batch never begins
    with pytest.raises(SystemExit) as exit_:
        main(["archive", "1", "2", "-q"])
    assert exit_.value.code != 0
    assert "99" in json.dumps(json.loads(capsys.readouterr().out))
    assert len(started) == 1
    assert started[0].returncode is not None  # ended, not left waiting for orders
    assert early_child._early is None


def test_the_batch_commits_while_its_child_finishes_and_then_ends_it(
        workspace, isolated_git, monkeypatch, run_cli):
    from gitutil import first_commit, git, init_repo
    from log_archiver.archive import early_child
    from log_archiver.queue import batch

    init_repo(workspace)
    first_commit(workspace)
    for issue in (1, 2, 3):
        write_sample_logs(workspace / "logs", issue, big=1_500_000, seed=issue)
    children, at_commit = [], []
    real_spawn, real_commit = early_child.spawn_child, batch._commit
    monkeypatch.setattr(early_child, "spawn_child",
                        lambda: children.append(real_spawn()) or children[-1])
    monkeypatch.setattr(batch, "_commit", lambda repo, issues: at_commit.append(
        children[0].poll()) or real_commit(repo, issues))
    result = run_cli("archive", "1", "2", "3", "-q")
    assert result.exit_code == 0, result.stdout
    assert len(children) == 1  # the one started with the command line did the work
    assert at_commit == [None]  # still running when the index was committed
    assert children[0].returncode == 0  # and ended by the batch before it returned
    committed = json.loads(git(workspace, "show", "HEAD:logs/.archive-index.json"))
    assert sorted(e["issue_number"] for e in committed["archives"]) == [1, 2, 3]
    assert copies(workspace / "logs") == []


def test_a_copy_handed_over_outside_the_logs_folder_is_never_deleted(workspace, tmp_path):
    from log_archiver.archive.ahead import _Made
    from log_archiver.archive.compress import StoredFile

    logs = workspace / "logs"
    write_sample_logs(logs, 1, big=1_500_000, seed=1)
    write_sample_logs(logs, 2, big=1_500_000, seed=2)
    outside = tmp_path / "precious.txt"
    outside.write_text("keep me")
    beside = logs / "elsewhere.txt"
    beside.write_text("keep me too")
    found = collect_logs(logs, 1)[0]
    source = found[0].path
    forged = [StoredFile(source, outside, 7, "0" * 64, 7, "0" * 64, "gzip"),
              StoredFile(source, beside if beside.parent != source.parent else outside,
                         7, "0" * 64, 7, "0" * 64, "gzip")]
    ahead = CompressAhead(repository(), [1, 2])
    try:
        ahead._discard(1, _Made(found, forged, []))
    finally:
        ahead.close()
    assert outside.read_text() == "keep me"
    assert beside.read_text() == "keep me too"
    assert source.exists()

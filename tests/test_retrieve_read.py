"""`log-archiver read` on both stores (a folder, and SeaweedFS S3): byte-exact content,
exact line ranges at block boundaries, only the blocks needed fetched, nothing
unverified ever printed, and the same from a second clone with no local logs."""

from __future__ import annotations

import shutil

import pytest

from retrieve_helpers import (  # noqa: F401 (place_fixture: the fixture "place")
    BIG,
    MIB,
    SMALL,
    lines_of,
    place_fixture,
    run_raw,
    write_logs,
)


@pytest.fixture
def archived(place, run_cli):
    logs = write_logs(place)
    result = run_cli("archive", "7", "--no-commit", "-q")
    assert result.exit_code == 0, result.stdout
    for name in logs:  # cleanup deleted them: every read below comes from the store
        assert not (place.logs / name).exists()
    return place, logs


def test_the_record_says_where_each_log_is(archived, run_cli):
    place, logs = archived
    result = run_cli("read", "7")
    assert result.exit_code == 0, result.stdout
    doc = result.json
    assert doc["state"] == "complete" and doc["storage_url"] == place.index()["archives"][0][
        "storage_url"]
    by_path = {log["local_path"]: log for log in doc["logs"]}
    assert set(by_path) == set(logs)
    big, small = by_path[BIG], by_path[SMALL]
    assert big["compression"] == "gzip" and big["ranged"] is True
    assert small["compression"] is None and small["ranged"] is False
    assert big["original_size_bytes"] == len(logs[BIG])
    assert all(log["on_disk"] is False and log["readable"] for log in doc["logs"])
    assert big["cloud_url"].endswith(big["remote_path"])


@pytest.mark.parametrize("name", [BIG, SMALL])
def test_read_is_byte_exact(archived, name):
    place, logs = archived
    result = run_raw("read", "7", name)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == logs[name]
    doc = result.envelope
    assert doc["status"] == "ok" and doc["verified"] == "whole"
    assert doc["bytes_written"] == len(logs[name])
    assert doc["source"] == ("blocks" if name == BIG else "object")


def test_a_unique_file_name_is_enough(archived):
    place, logs = archived
    result = run_raw("read", "7", "7-deploy.log")
    assert result.exit_code == 0 and result.stdout == logs[SMALL]


def test_an_unknown_file_is_a_usage_error_on_stderr(archived):
    result = run_raw("read", "7", "nope.log")
    assert result.exit_code == 2 and result.stdout == b""
    doc = result.envelope
    assert doc["errors"][0]["type"] == "usage" and "nope.log" in doc["errors"][0]["message"]


def boundary_ranges(data: bytes) -> list[tuple[int, int]]:
    """Line ranges (1-based, inclusive) around every block boundary, plus the ends."""
    lines = lines_of(data)
    starts, at = [], 0
    for line in lines:
        starts.append(at)
        at += len(line)
    ranges = [(1, 1), (1, 3), (len(lines), len(lines)), (len(lines) - 2, len(lines))]
    for boundary in range(MIB, len(data), MIB):
        # the line holding the boundary's first byte (1-based)
        holder = max(i for i, start in enumerate(starts) if start <= boundary) + 1
        ranges += [(holder, holder), (holder - 1, holder), (holder, holder + 1),
                   (holder - 2, holder + 2)]
    return ranges


def test_lines_are_exact_at_block_boundaries(archived):
    place, logs = archived
    data = logs[BIG]
    lines = lines_of(data)
    for first, last in boundary_ranges(data):
        result = run_raw("read", "7", BIG, "--lines", f"{first}:{last}")
        assert result.exit_code == 0, result.stderr
        assert result.stdout == b"".join(lines[first - 1:last]), (first, last)
        doc = result.envelope
        assert doc["verified"] == "blocks" and doc["returned_lines"] == last - first + 1
        assert doc["lines"] == {"first": first, "last": last}
        assert doc["bytes_fetched"] < 3 * MIB  # a block or two and the table, never all


def test_block_zero_and_one_end_exactly_at_a_newline(archived):
    place, logs = archived
    lines = lines_of(logs[BIG])
    per_block = MIB // 64
    for line in (per_block, per_block + 1, 2 * per_block, 2 * per_block + 1):
        result = run_raw("read", "7", BIG, "--lines", f"{line}:{line}")
        assert result.stdout == lines[line - 1], line


def test_open_ranges_and_past_the_end(archived):
    place, logs = archived
    lines = lines_of(logs[BIG])
    tail = run_raw("read", "7", BIG, "--lines", f"{len(lines) - 4}:")
    assert tail.stdout == b"".join(lines[-5:])
    assert tail.stdout.endswith(b"no newline")
    head = run_raw("read", "7", BIG, "--lines", ":3")
    assert head.stdout == b"".join(lines[:3])
    past = run_raw("read", "7", BIG, "--lines", f"{len(lines) + 1}:{len(lines) + 50}")
    assert past.exit_code == 0 and past.stdout == b""
    assert past.envelope["returned_lines"] == 0
    small = run_raw("read", "7", SMALL, "--lines", "1999:5000")
    assert small.stdout == b"deploy step 1999\ndeploy step 2000\n"


@pytest.mark.parametrize("spec", ["0:3", "5:4", "a:b", ":", "3", "-1:2"])
def test_bad_line_ranges_are_usage_errors(archived, spec):
    result = run_raw("read", "7", BIG, "--lines", spec)
    assert result.exit_code == 2 and result.stdout == b""
    assert spec in result.envelope["errors"][0]["message"]


def test_json_lines_are_capped_and_say_so(archived, run_cli):
    place, logs = archived
    lines = lines_of(logs[BIG])
    result = run_cli("read", "7", BIG, "--lines", "32000:32002", "--json")
    assert result.exit_code == 0, result.stdout
    doc = result.json
    assert [item["line"] for item in doc["content"]] == [32000, 32001, 32002]
    assert [item["text"] for item in doc["content"]] == \
        [line.decode().rstrip("\n") for line in lines[31999:32002]]
    assert doc["truncated"] is False
    whole = run_cli("read", "7", BIG, "--json").json
    assert whole["truncated"] is True and whole["returned_lines"] == whole["max_lines"]
    assert whole["content"][0]["text"] == lines[0].decode().rstrip("\n")


def test_a_flipped_byte_in_the_first_block_prints_nothing(archived):
    place, logs = archived
    log = place.log(BIG)
    place.flip(log["remote_path"], 100)
    for args in ((), ("--lines", "1:10")):
        result = run_raw("read", "7", BIG, *args)
        assert result.exit_code == 1, result.stderr
        assert result.stdout == b""
        error = result.envelope["errors"][0]
        assert error["type"] == "integrity" and log["remote_path"] in error["message"]
        assert "log-archiver" in error["hint"]


def test_a_flipped_byte_later_stops_before_the_damaged_block(archived):
    place, logs = archived
    log = place.log(BIG)
    from log_archiver.retrieve.blocks import parse_region

    stored = place.stored(log["remote_path"])
    blocks = parse_region(stored[log["blocks"]["offset"]:], log["blocks"]["offset"])
    place.flip(log["remote_path"], blocks[3].offset + blocks[3].length // 2)
    result = run_raw("read", "7", BIG)
    assert result.exit_code == 1
    assert result.stdout == logs[BIG][:3 * MIB]  # blocks 0-2, each verified; not block 3
    assert "block 3" in result.envelope["errors"][0]["message"]


def test_a_flipped_byte_in_a_plain_object_prints_nothing(archived):
    place, logs = archived
    log = place.log(SMALL)
    place.flip(log["remote_path"], len(logs[SMALL]) - 3)
    result = run_raw("read", "7", SMALL)
    assert result.exit_code == 1 and result.stdout == b""
    assert result.envelope["errors"][0]["type"] == "integrity"


def test_a_damaged_table_is_refused(archived):
    place, logs = archived
    log = place.log(BIG)
    place.flip(log["remote_path"], log["blocks"]["offset"] + 30)
    result = run_raw("read", "7", BIG, "--lines", "5:6")
    assert result.exit_code == 1 and result.stdout == b""
    assert "block table" in result.envelope["errors"][0]["message"]


def test_a_second_clone_reads_what_another_machine_archived(archived, tmp_path, monkeypatch):
    place, logs = archived
    clone = tmp_path / "clone"
    (clone / "logs").mkdir(parents=True)
    shutil.copy(place.logs / ".archive-index.json", clone / "logs" / ".archive-index.json")
    if (place.root / ".log-archiver.json").exists():
        shutil.copy(place.root / ".log-archiver.json", clone / ".log-archiver.json")
    monkeypatch.chdir(clone)
    monkeypatch.setenv("LOG_ARCHIVER_LOGS_DIR", str(clone / "logs"))
    assert run_raw("read", "7", BIG).stdout == logs[BIG]
    lines = lines_of(logs[BIG])
    assert run_raw("read", "7", SMALL, "--lines", "10:11").stdout == b"".join(
        lines_of(logs[SMALL])[9:11])
    assert run_raw("read", "7", BIG, "--lines", "40000:40100").stdout == b"".join(
        lines[39999:40100])


def test_the_local_file_is_read_while_it_matches(archived, run_cli):
    place, logs = archived
    assert run_cli("restore", "7", "--file", BIG).exit_code == 0
    result = run_raw("read", "7", BIG, "--lines", "2:3")
    assert result.envelope["source"] == "local"
    assert result.stdout == b"".join(lines_of(logs[BIG])[1:3])
    (place.logs / BIG).write_bytes(b"changed since" + logs[BIG][13:])  # same size
    again = run_raw("read", "7", BIG, "--lines", "2:3")
    assert again.envelope["source"] == "blocks"  # the store, since the file no longer matches
    assert again.stdout == b"".join(lines_of(logs[BIG])[1:3])

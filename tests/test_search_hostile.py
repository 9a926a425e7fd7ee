"""search against hostile input: huge or catastrophic queries, a damaged search index,
records naming keys and checksums that are not theirs; and the pieces that decide what is
read (the literals a regex needs, the grams a query needs, where the index lives)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from log_archiver.search import patterns
from log_archiver.search.grams import Indexer, gram_ids
from log_archiver.search.patterns import build_query
from search_helpers import planted_log


@pytest.fixture
def archived(workspace, run_cli):
    planted_log(workspace / "logs/builds/51-build.log", 2_500_000, 8, {"zqxhostile": 0.6})
    (workspace / "logs/builds/51-aaaa.log").write_bytes(b"a" * 5000 + b"\n" + b"x" * 3000 + b"\n")
    assert run_cli("archive", "51", "-q").exit_code == 0
    return workspace


def test_a_damaged_search_index_is_rebuilt_not_a_crash(archived, run_cli):
    first = run_cli("search", "zqxhostile").json
    path = Path(first["index_path"])
    for name in list(path.parent.iterdir()):
        name.unlink()
    path.write_bytes(b"SQLite format 3\x00" + b"\xff" * 5000)  # a header, then garbage
    result = run_cli("search", "zqxhostile")
    assert result.exit_code == 0, result.stdout
    doc = result.json
    assert doc["matches"] == first["matches"] and doc["synced_logs"] == 2
    assert any("rebuilt" in warning for warning in doc["warnings"])
    assert run_cli("search", "zqxhostile").json["warnings"] == []


def test_damaged_postings_are_rebuilt(archived, run_cli):
    import sqlite3

    first = run_cli("search", "zqxhostile").json
    db = sqlite3.connect(first["index_path"])
    db.execute("UPDATE postings SET chunks = x'00ff00ff'")
    db.commit()
    db.close()
    doc = run_cli("search", "zqxhostile").json
    assert doc["matches"] == first["matches"]
    assert doc["warnings"] and doc["synced_logs"] == 2


@pytest.mark.parametrize("query, words", [
    ("x" * 1001, "1001 characters"), ("ab", "shorter than 3"), ("a\nb c", "line break"),
])
def test_queries_it_refuses(archived, run_cli, query, words):
    result = run_cli("search", query)
    assert result.exit_code == 2 and result.json["errors"][0]["type"] == "usage"
    assert words in result.json["errors"][0]["message"]


def test_an_invalid_regex_is_a_usage_error_naming_it(archived, run_cli):
    result = run_cli("search", "(unclosed", "--regex")
    assert result.exit_code == 2
    assert "'(unclosed'" in result.json["errors"][0]["message"]


def test_a_catastrophic_regex_stops_at_the_time_limit(archived, run_cli, monkeypatch):
    from log_archiver.search import query

    monkeypatch.setattr(query, "TIME_BUDGET_SECONDS", 1.0)
    result = run_cli("search", r"(a+a+)+b", "--regex")
    assert result.exit_code == 3, result.stdout
    doc = result.json
    assert doc["errors"][0]["type"] == "search_timeout"
    assert doc["elapsed_ms"] < 10_000


def test_a_record_naming_another_issues_key_is_not_read(archived, run_cli):
    index = archived / "logs/.archive-index.json"
    document = json.loads(index.read_text())
    [log] = [log for log in document["archives"][0]["logs"]
             if log["local_path"] == "builds/51-build.log"]
    log["remote_path"] = log["remote_path"].replace("/51/", "/52/")
    index.write_text(json.dumps(document, indent=2))
    result = run_cli("search", "zqxhostile")
    assert result.exit_code == 1 and "matches" not in result.json  # the strict reader
    assert "/52/" in result.json["errors"][0]["message"]
    # and search itself never reads such a record, whatever reader it is handed
    from log_archiver.search.sync import refusal

    refused = refusal(document["archives"][0], log)
    assert refused["type"] == "index_invalid" and "/52/" in refused["message"]
    assert refusal(document["archives"][0], {**log, "remote_path": "../../etc/passwd"})
    good = {**log, "remote_path": log["remote_path"].replace("/52/", "/51/")}
    assert refusal(document["archives"][0], good) is None
    assert refusal(document["archives"][0], {**good, "checksum": "sha256:../x"})


def test_the_search_index_lives_outside_the_repository(archived, run_cli):
    path = Path(run_cli("search", "zqxhostile").json["index_path"])
    assert not path.is_relative_to(archived)
    assert path.is_relative_to(Path.home() / ".cache" / "log-archiver" / "search")


# --- what the index is asked ---------------------------------------------------------


def literals(pattern: str) -> list[list[str]]:
    return sorted(sorted(text for text, _ in clause)
                  for clause in patterns._required(patterns.sre_parse.parse(pattern), False))


@pytest.mark.parametrize("pattern, expected", [
    (r"connection refused", [["connection refused"]]),
    (r"timeout after \d+ retries", [[" retries"], ["timeout after "]]),
    (r"(ERROR|FATAL): disk", [[": disk"], ["ERROR", "FATAL"]]),
    (r"a.b", []),
    (r"(?:abc)?xyz", [["xyz"]]),
    (r"(abc)+", [["abc"]]),
    (r"(abc|d)ef", []),
])
def test_the_literals_a_regex_needs(pattern, expected):
    assert literals(pattern) == expected


def test_ignore_case_grams_skip_letters_python_folds_beyond_ascii():
    query = build_query("Disk-Kill", ignore_case=True)
    [[alternative]] = query.needs
    # windows holding i, s or k say nothing ("Dis", "isk", ... are skipped)
    assert len(alternative) < len("Disk-Kill") - 2
    assert re.search(query.text, "disk-\u212aill", re.IGNORECASE)  # Kelvin sign K


def test_every_line_lies_in_one_chunk_whatever_the_feed_sizes():
    text = b"".join(b"line %d %s\n" % (n, b"y" * (n * 37 % 3000)) for n in range(4000))
    for size in (3001, 65536, 1 << 20):  # odd sizes that straddle every block edge
        indexer = Indexer()
        for at in range(0, len(text), size):
            indexer.feed(text[at:at + size])
        found = indexer.finish()
        assert found.lines == 4000 and found.size == len(text)
        ends = [c.offset for c in found.chunks[1:]] + [len(text)]
        for chunk, end in zip(found.chunks, ends, strict=True):
            assert chunk.offset == 0 or text[chunk.offset - 1] == ord("\n")
            assert text[:chunk.offset].count(b"\n") + 1 == chunk.first_line
            grams = set(chunk.grams.tolist())
            for line in text[chunk.offset:end].split(b"\n"):
                assert set(gram_ids(line).tolist()) <= grams


def test_block_jobs_run_on_other_threads_give_each_chunk_exactly_its_grams():
    """A gram belongs to the chunk that holds its last byte, however the blocks are fed
    and whichever thread computed them."""
    from concurrent.futures import ThreadPoolExecutor

    from log_archiver.search.grams import gram_of

    text = b"".join(b"row %d \xc3\xa9 %s\n" % (n, b"q" * (n * 53 % 700)) for n in range(300))
    text += b"no newline at the end"
    for size in (97, 4099, 1 << 16):
        by_jobs, by_feed = Indexer(), Indexer()
        with ThreadPoolExecutor(max_workers=4) as pool:
            futures = [pool.submit(by_jobs.job(text[at:at + size]))
                       for at in range(0, len(text), size)]
            for future in futures:
                by_jobs.take(future.result())
        for at in range(0, len(text), size):
            by_feed.feed(text[at:at + size])
        jobs, fed = by_jobs.finish(), by_feed.finish()
        assert (jobs.size, jobs.lines) == (fed.size, fed.lines) == (len(text), 301)
        ends = [c.offset for c in fed.chunks[1:]] + [len(text)]
        assert [c.offset for c in jobs.chunks] == [c.offset for c in fed.chunks]
        for chunk, other, end in zip(fed.chunks, jobs.chunks, ends, strict=True):
            expected = sorted({gram_of(text[p - 2:p + 1])
                               for p in range(max(chunk.offset, 2), end)})
            assert chunk.grams.tolist() == other.grams.tolist() == expected

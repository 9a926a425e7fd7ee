"""search on both stores: planted words in big logs found at the right file and line, with
every filter, after the local files are gone, from a second clone with an empty cache;
nothing but verified, really matching lines is ever reported."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from log_archiver.util.samples import log_text
from search_helpers import grep_n, lines_of, planted_log

BIG = 3_300_000  # four blocks


class Place(type(Path())):
    """The workspace folder, with the S3 bucket it archives to (None: a file:// store)."""

    s3 = None


@pytest.fixture(params=["file", "s3"])
def place(request, workspace):
    """The workspace on a file:// store or on a SeaweedFS bucket."""
    root = Place(workspace)
    if request.param == "s3":
        root.s3 = request.getfixturevalue("s3_workspace")
    return root


@pytest.fixture
def archived(place, run_cli):
    """Two issues archived (local files cleaned up): their contents by local path."""
    logs = place / "logs"
    contents = {
        (41, "builds/41-build.log"): planted_log(
            logs / "builds/41-build.log", BIG, 1, {"zqxalpha": 0.5, "zqxomega": 0.97},
            across_block="zqxbridge"),
        (41, "sessions/session-41-a.md"): planted_log(
            logs / "sessions/session-41-a.md", 200_000, 2, {"zqxalpha": 0.3}),
        (42, "deployments/42-deploy.log"): planted_log(
            logs / "deployments/42-deploy.log", BIG, 3, {"zqxalpha": 0.75, "ZQXALPHA": 0.1}),
    }
    for issue in (41, 42):
        result = run_cli("archive", str(issue), "-q")
        assert result.exit_code == 0, result.stdout
    assert not any(logs.rglob("*.log")) and not any(logs.rglob("*.md")), "not cleaned up"
    return contents


def expected(contents, needle, **grep):
    return sorted((issue, path, n) for (issue, path), data in contents.items()
                  for n, _ in grep_n(data, needle, **grep))


def found(document):
    return sorted((m["issue_number"], m["local_path"], m["line"]) for m in document["matches"])


def test_planted_words_are_found_at_their_file_and_line(archived, run_cli):
    result = run_cli("search", "zqxalpha")
    assert result.exit_code == 0, result.stdout
    doc = result.json
    assert found(doc) == expected(archived, "zqxalpha") and len(found(doc)) == 3
    assert doc["total"] == 3 and doc["truncated"] is False and doc["narrowed"] is True
    assert doc["searched_logs"] == 3
    assert doc["synced_logs"] == 0  # indexed while archiving
    for match in doc["matches"]:
        data = archived[(match["issue_number"], match["local_path"])]
        assert lines_of(data)[match["line"] - 1] == match["text"]
        assert "zqxalpha" in match["text"]
    # a rare word reads a block or two, not the logs
    assert doc["read_bytes"] < 3 * (2 << 20)


def test_a_line_across_a_block_boundary_and_context_across_blocks(archived, run_cli):
    doc = run_cli("search", "zqxbridge", "--context", "3").json
    data = archived[(41, "builds/41-build.log")]
    [(number, text)] = grep_n(data, "zqxbridge")
    [match] = doc["matches"]
    assert (match["line"], match["text"]) == (number, text)
    lines = lines_of(data)
    assert match["before"] == lines[number - 4:number - 1]
    assert match["after"] == lines[number:number + 3]


def test_filters_issue_type_dates_and_limit(archived, run_cli):
    only_41 = run_cli("search", "zqxalpha", "--issue", "41").json
    assert {m["issue_number"] for m in only_41["matches"]} == {41}
    assert len(only_41["matches"]) == 2
    builds = run_cli("search", "zqxalpha", "--type", "build").json
    assert [m["local_path"] for m in builds["matches"]] == ["builds/41-build.log"]
    assert run_cli("search", "zqxalpha", "--since", "2999-01-01").json["total"] == 0
    assert run_cli("search", "zqxalpha", "--until", "2000-01-01").json["total"] == 0
    assert run_cli("search", "zqxalpha", "--since", "2000-01-01").json["total"] == 3
    limited = run_cli("search", "zqxalpha", "--limit", "1").json
    assert len(limited["matches"]) == 1 and limited["total"] == 3
    assert limited["truncated"] is True
    assert run_cli("search", "zqxalpha", "--issue", "4").json["total"] == 0  # 4 is not 41


def test_ignore_case_and_regex(archived, run_cli):
    folded = run_cli("search", "ZqXaLpHa", "--ignore-case").json
    assert found(folded) == expected(archived, "zqxalpha", ignore_case=True)
    assert len(found(folded)) == 4
    assert run_cli("search", "ZQXALPHA").json["total"] == 1
    pattern = r"planted zqx(alpha|omega) h[e]re$"
    regex = run_cli("search", pattern, "--regex").json
    assert found(regex) == expected(archived, pattern, regex=True)
    assert len(found(regex)) == 4 and regex["narrowed"] is True
    # no literal to narrow with: every log is read, the answer is the same as grep's
    bare = r"Z [A-Z]{5} [a-z]{7} [a-z]{3}o"
    scan = run_cli("search", bare, "--regex").json
    assert scan["narrowed"] is False
    assert found(scan) == expected(archived, bare, regex=True) and scan["total"] >= 1


def test_second_clone_with_an_empty_cache_syncs_from_the_store(archived, place, run_cli,
                                                               tmp_path, monkeypatch):
    before = run_cli("search", "zqxomega").json
    clone = tmp_path / "clone"
    (clone / "logs").mkdir(parents=True)
    shutil.copy(place / "logs/.archive-index.json", clone / "logs/.archive-index.json")
    if (place / ".log-archiver.json").exists():
        shutil.copy(place / ".log-archiver.json", clone / ".log-archiver.json")
    monkeypatch.chdir(clone)
    monkeypatch.setenv("LOG_ARCHIVER_LOGS_DIR", str(clone / "logs"))
    monkeypatch.setenv("HOME", str(tmp_path / "other-home"))
    after = run_cli("search", "zqxomega")
    assert after.exit_code == 0, after.stdout
    assert after.json["synced_logs"] == 3
    assert after.json["index_path"] != before["index_path"]
    assert found(after.json) == found(before) == expected(archived, "zqxomega")
    assert run_cli("search", "zqxomega").json["synced_logs"] == 0  # kept for next time


def test_rebuild_from_nothing_gives_the_same_results(archived, run_cli):
    first = run_cli("search", "zqxalpha", "--context", "1").json
    shutil.rmtree(Path(first["index_path"]).parent)
    rebuilt = run_cli("search", "--rebuild")
    assert rebuilt.exit_code == 0, rebuilt.stdout
    assert rebuilt.json["rebuild"]["indexed_logs"] == 3
    again = run_cli("search", "zqxalpha", "--context", "1").json
    assert again["synced_logs"] == 0
    assert again["matches"] == first["matches"]


def test_a_flipped_byte_in_a_stored_object_is_never_a_match(archived, place, run_cli):
    document = run_cli("search", "zqxalpha").json
    key = _record(place, 42, "deployments/42-deploy.log")["remote_path"]
    _flip_byte(place, key)
    result = run_cli("search", "zqxalpha")
    assert result.exit_code == 3, result.stdout
    doc = result.json
    assert doc["status"] == "partial"
    assert {m["issue_number"] for m in doc["matches"]} == {41}
    [error] = doc["errors"]
    assert error["file"] == "deployments/42-deploy.log"
    assert error["type"] == "integrity"
    assert key.rsplit("/", 1)[-1] in error["message"]
    assert len(doc["matches"]) == len(document["matches"]) - 1


def test_a_false_candidate_is_never_reported(place, run_cli):
    # every gram of the query is in the log, on one line, but the query is not
    log = place / "logs/builds/43-build.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_bytes(log_text(1_500_000, 9) + b"grams of zqxab and xabcd but never the word\n")
    assert run_cli("archive", "43", "-q").exit_code == 0
    doc = run_cli("search", "zqxabcd").json
    assert doc["read_logs"] == 1 and doc["read_bytes"] > 0  # a candidate...
    assert doc["matches"] == [] and doc["total"] == 0       # ...that the text rejects


def test_a_log_archived_again_under_a_new_checksum_replaces_its_postings(place, run_cli):
    log = place / "logs/builds/44-build.log"
    planted_log(log, 1_500_000, 4, {"zqxoldword": 0.5})
    assert run_cli("archive", "44", "-q").exit_code == 0
    assert run_cli("search", "zqxoldword").json["total"] == 1
    planted_log(log, 1_500_000, 5, {"zqxnewword": 0.5})
    result = run_cli("archive", "44", "--force", "-q")
    assert result.exit_code == 0, result.stdout
    assert run_cli("search", "zqxoldword").json["total"] == 0
    new = run_cli("search", "zqxnewword").json
    assert new["total"] == 1 and new["matches"][0]["local_path"] == "builds/44-build.log"
    from log_archiver.search.index_db import SearchIndex

    index = SearchIndex(Path(new["index_path"]))
    assert len(index.logs()) == 1  # the old content's postings are gone
    index.close()


def _record(place, issue, local_path):
    import json

    document = json.loads((place / "logs/.archive-index.json").read_text())
    entry = next(e for e in document["archives"] if e["issue_number"] == issue)
    return next(log for log in entry["logs"] if log["local_path"] == local_path)


def _flip_byte(place, key):
    """Change one byte of the stored object at ``key``, behind the store's back."""
    if place.s3 is None:
        path = Path(os.environ["LOG_ARCHIVER_STORAGE"][len("file://"):]) / key
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0x01
        path.chmod(0o644)
        path.write_bytes(bytes(data))
        return
    s3 = place.s3
    client = s3.server.client()
    name = f"{s3.prefix}/{key}"
    body = bytearray(client.get_object(Bucket=s3.bucket, Key=name)["Body"].read())
    body[len(body) // 2] ^= 0x01
    client.put_object(Bucket=s3.bucket, Key=name, Body=bytes(body))

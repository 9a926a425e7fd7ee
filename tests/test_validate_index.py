"""validate-index: the schema and every rule a schema cannot say, on hand-broken indexes.

The valid index these tests break is made by the real workflow (two issues archived to
a local store); each test breaks one thing and asserts the exact JSON path reported.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys

import pytest

from conftest import script
from log_archiver.index.rules import validate_index_document, validate_index_file
from log_archiver.model.records import recompute_entry
from log_archiver.util.samples import write_sample_logs

ISSUES = (30, 7)


@pytest.fixture(scope="module")
def archived_index(tmp_path_factory) -> dict:
    """The index after archiving issues 30 and 7 with the real scripts."""
    root = tmp_path_factory.mktemp("validate") / "work"
    logs = root / "logs"
    logs.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("LOG_ARCHIVER_", "GITHUB_", "GH_", "AWS_"))}
    env.update(LOG_ARCHIVER_STORAGE=f"file://{root.parent / 'store'}",
               LOG_ARCHIVER_LOGS_DIR=str(logs), HOME=str(root.parent / "home"))
    for issue in ISSUES:
        write_sample_logs(logs, issue, big=1_200_000, seed=issue)
        done = subprocess.run([*script("archive-issue-logs"), str(issue), "--quiet"],
                              cwd=root, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr
    return json.loads((logs / ".archive-index.json").read_text())


@pytest.fixture
def index(archived_index) -> dict:
    return copy.deepcopy(archived_index)


def found(doc) -> list[tuple[str, str]]:
    return [(v["path"], v["rule"]) for v in validate_index_document(doc)]


def test_an_index_the_workflow_wrote_is_valid(index):
    assert [e["issue_number"] for e in index["archives"]] == list(ISSUES)
    assert all(len(e["logs"]) == 4 and e["upload_complete"] for e in index["archives"])
    assert validate_index_document(index) == []


def test_unsorted_archives(index):
    index["archives"].reverse()
    assert found(index) == [("$.archives[1].issue_number", "sorted")]
    [problem] = validate_index_document(index)
    assert "issue 30 comes after issue 7" in problem["message"]


def test_duplicate_issue(index):
    twin = copy.deepcopy(index["archives"][1])
    for log in twin["logs"]:  # a second entry for issue 7 whose objects differ from the first's
        log["remote_path"] = log["remote_path"] + ".copy"
    index["archives"].append(twin)
    assert found(index) == [("$.archives[2].issue_number", "duplicate_issue")]
    assert "first entry is $.archives[1]" in validate_index_document(index)[0]["message"]


def test_duplicate_file_in_an_entry(index):
    entry = index["archives"][0]
    twin = copy.deepcopy(entry["logs"][0])
    twin["remote_path"] = twin["remote_path"].rsplit("/", 1)[0] + "/another-name.log"
    entry["logs"].append(twin)
    recompute_entry(entry)  # the totals agree: only the duplicate is wrong
    assert found(index) == [("$.archives[0].logs[4].local_path", "duplicate_file")]


def test_two_records_claim_one_stored_object(index):
    entry = index["archives"][0]
    twin = copy.deepcopy(entry["logs"][1])
    twin["local_path"] = "debug/30-other.log"
    entry["logs"].append(twin)
    recompute_entry(entry)
    assert found(index) == [("$.archives[0].logs[4].remote_path", "duplicate_file")]
    assert entry["logs"][1]["remote_path"] in validate_index_document(index)[0]["message"]


def test_object_in_another_issue_folder(index):
    log = index["archives"][1]["logs"][2]
    log["remote_path"] = log["remote_path"].replace("/7/", "/8/")
    assert found(index) == [("$.archives[1].logs[2].remote_path", "remote_path")]



def test_kept_object_in_another_issue_folder(index):
    """gc deletes an expired entry's kept versions by their keys: one that names another
    issue's object (a held one, say) must never pass as this entry's."""
    entry = index["archives"][1]
    victim = index["archives"][0]["logs"][0]
    entry["kept_objects"] = [{
        "local_path": entry["logs"][0]["local_path"], "remote_path": victim["remote_path"],
        "checksum": victim["checksum"], "size_bytes": victim["size_bytes"],
        "reason": "replaced_by_newer_version", "kept_at": entry["archived_at"]}]
    assert found(index) == [("$.archives[1].kept_objects[0].remote_path", "remote_path")]
    entry["kept_objects"][0]["remote_path"] = entry["logs"][0]["remote_path"] + "-old"
    assert found(index) == []

@pytest.mark.parametrize("key, change", [
    ("total_logs", lambda v: v + 1),
    ("total_size_bytes", lambda v: v - 1),
    ("total_original_size_bytes", lambda v: v * 2),
    ("compression_ratio", lambda v: round(v + 0.01, 4)),
    ("retry_count", lambda v: v + 2),
])
def test_totals_add_up(index, key, change):
    entry = index["archives"][1]
    wrong = change(entry[key])
    expected = entry[key]
    entry[key] = wrong
    assert found(index) == [(f"$.archives[1].{key}", "totals")]
    message = validate_index_document(index)[0]["message"]
    assert message.startswith(f"is {json.dumps(wrong)}, but") and json.dumps(expected) in message


def test_compression_ratio_rounding_is_not_a_violation(index):
    entry = index["archives"][0]
    entry["compression_ratio"] = entry["total_size_bytes"] / entry["total_original_size_bytes"]
    assert found(index) == []


def test_upload_complete_while_a_file_failed(index):
    index["archives"][0]["logs"][2]["upload_status"] = "failed"
    assert found(index) == [("$.archives[0].upload_complete", "upload_complete"),
                            ("$.archives[0].partial_archive", "partial_archive")]
    message = validate_index_document(index)[0]["message"]
    assert "$.archives[0].logs[2]" in message and "is failed" in message


def test_upload_incomplete_while_every_file_is_stored(index):
    index["archives"][1]["upload_complete"] = False
    assert found(index) == [("$.archives[1].upload_complete", "upload_complete")]


def test_partial_reason_makes_the_archive_partial(index):
    index["archives"][1]["partial_reason"] = "index update failed"
    assert found(index) == [("$.archives[1].partial_archive", "partial_archive")]
    assert "index update failed" in validate_index_document(index)[0]["message"]


def test_schema_violation_does_not_hide_rule_violations(index):
    index["archives"][0]["logs"][1]["checksum"] = "md5:abc"
    del index["archives"][0]["logs"][3]["type"]
    index["archives"][1]["total_logs"] = 99
    assert found(index) == [("$.archives[0].logs[1].checksum", "schema"),
                            ("$.archives[0].logs[3]", "schema"),
                            ("$.archives[1].total_logs", "totals")]


def test_top_level_schema_violations(index):
    index["schema_version"] = 2
    index["archives"] = {"30": index["archives"][0]}
    paths = found(index)
    assert ("$.schema_version", "schema") in paths and ("$.archives", "schema") in paths
    assert {rule for _, rule in paths} == {"schema"}


def test_not_json_and_missing_file(tmp_path):
    broken = tmp_path / ".archive-index.json"
    broken.write_text('{"schema_version": 1,\n  "archives": [}\n')
    [problem] = validate_index_file(broken)
    assert (problem["path"], problem["rule"]) == ("$", "json")
    assert "line 2" in problem["message"]
    [missing] = validate_index_file(tmp_path / "nowhere.json")
    assert (missing["path"], missing["rule"]) == ("$", "file")
    assert "nowhere.json" in missing["message"]


def write(path, doc):
    path.write_text(json.dumps(doc, indent=2))
    return path


def test_cli_lists_every_violation_and_exits_1(workspace, run_cli, index):
    index["archives"].reverse()
    index["archives"][0]["total_size_bytes"] += 1
    path = write(workspace / "broken.json", index)
    result = run_cli("validate-index", path)
    assert result.exit_code == 1
    doc = result.json
    assert doc["status"] == "error" and doc["path"] == str(path)
    assert [(v["path"], v["rule"]) for v in doc["violations"]] == [
        ("$.archives[1].issue_number", "sorted"), ("$.archives[0].total_size_bytes", "totals")]
    assert all(v["file"] == str(path) for v in doc["violations"])
    assert [e["type"] for e in doc["errors"]] == ["index_invalid"] * 2
    assert doc["errors"][0]["hint"] == "reorder the archives by issue_number, largest first"
    assert "$.archives[0].total_size_bytes" in result.stderr


def test_cli_valid_folder_and_several_paths(workspace, run_cli, index):
    good = write(workspace / "logs" / ".archive-index.json", index)
    result = run_cli("validate-index", workspace / "logs")
    assert result.exit_code == 0 and result.json["status"] == "ok"
    assert result.json["path"] == str(good) and result.json["violations"] == []
    default = run_cli("validate-index")  # the configured logs dir's index
    assert default.exit_code == 0 and default.json["path"] == str(good)
    index["archives"][1]["logs"][0]["upload_status"] = "pending"
    bad = write(workspace / "other.json", index)
    both = run_cli("validate-index", good, bad)
    assert both.exit_code == 1 and both.json["paths"] == [str(good), str(bad)]
    assert {v["file"] for v in both.json["violations"]} == {str(bad)}


def test_cli_missing_index_is_an_error(workspace, run_cli):
    result = run_cli("validate-index", workspace / "absent.json")
    assert result.exit_code == 1
    assert [(v["path"], v["rule"]) for v in result.json["violations"]] == [("$", "file")]


def test_a_valid_index_is_checked_by_the_compiled_schema_alone(tmp_path, archived_index):
    """jsonschema (slow on a big index) is loaded only to describe a rejection."""
    path = write(tmp_path / ".archive-index.json", archived_index)
    probe = ("import sys; from log_archiver.index.rules import validate_index_file; "
             f"assert validate_index_file({str(path)!r}) == []; "
             "print('jsonschema' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


# --- the block table of a gzip copy -----------------------------------------------------

def table_log(index) -> tuple[str, dict]:
    """The JSON path and record of a log the workflow stored with a block table."""
    for i, entry in enumerate(index["archives"]):
        for j, log in enumerate(entry["logs"]):
            if log.get("blocks"):
                return f"$.archives[{i}].logs[{j}]", log
    raise AssertionError("the workflow wrote no block table")


def test_the_workflow_s_block_table_passes_the_rules(index):
    at, log = table_log(index)
    blocks = log["blocks"]
    assert log["compression"] == "gzip" and blocks["count"] == 2  # 1.2 MB in 1 MiB blocks
    assert blocks["offset"] + blocks["length"] == log["size_bytes"]
    assert validate_index_document(index) == []


def _set(**values):
    def change(log):
        log["blocks"].update(values)
    return change


def _shift(offset: int = 0, length: int = 0, count: int = 0):
    def change(log):
        blocks = log["blocks"]
        blocks["offset"] += offset
        blocks["length"] += length
        blocks["count"] += count
    return change


@pytest.mark.parametrize("change, where, rule, quoted", [
    (lambda log: log["blocks"].update(offset=float(log["blocks"]["offset"])), ".blocks.offset",
     "blocks", "not a whole number"),
    (lambda log: log["blocks"].update(length=float(log["blocks"]["length"])), ".blocks.length",
     "blocks", "not a whole number"),
    (lambda log: log["blocks"].update(count=2.0), ".blocks.count", "blocks", "2.0"),
    (_set(offset=-1), ".blocks.offset", "schema", "-1"),
    (_set(length=-5), ".blocks.length", "schema", "-5"),
    (_set(count=-1), ".blocks.count", "schema", "-1"),
    (_set(offset="0"), ".blocks.offset", "schema", "'0'"),
    (_set(sha256="ABC"), ".blocks.sha256", "schema", "'ABC'"),
    (_set(sha256="F" * 64), ".blocks.sha256", "schema", "'" + "F" * 64),
    (_shift(offset=1), ".blocks", "blocks", "but the stored object is"),  # past the end
    (_shift(offset=-1), ".blocks", "blocks", "the table is the object's last bytes"),  # a gap
    (_shift(offset=-1, length=1), ".blocks.length", "blocks", "blocks takes"),  # overlaps
    (_shift(count=1), ".blocks.length", "blocks", "a table of 3 blocks takes"),
])
def test_a_hostile_block_table_is_reported(index, change, where, rule, quoted):
    at, log = table_log(index)
    change(log)
    problems = validate_index_document(index)
    assert [(p["path"], p["rule"]) for p in problems] == [(at + where, rule)]
    message = problems[0]["message"]
    assert message.startswith(f"issue 30's log {json.dumps(log['local_path'])}: ")
    assert quoted in message


def test_a_block_table_far_beyond_the_object_is_reported(index):
    at, log = table_log(index)
    log["blocks"]["length"] = 10 ** 12
    assert found(index) == [(f"{at}.blocks", "blocks"), (f"{at}.blocks.length", "blocks")]
    assert "ends at byte 1000000" in validate_index_document(index)[0]["message"]


def test_more_blocks_than_the_bytes_before_the_table_can_hold(index):
    from log_archiver.model.block_table import MIN_MEMBER, region_length

    at, log = table_log(index)
    count = 40
    offset = count * MIN_MEMBER - 1  # the region still ends the object and fits the count
    log["blocks"].update(offset=offset, length=region_length(count), count=count)
    log["size_bytes"] = offset + region_length(count)
    recompute_entry(index["archives"][0])
    problems = validate_index_document(index)
    assert [(p["path"], p["rule"]) for p in problems] == [(f"{at}.blocks.count", "blocks")]
    assert f"cannot fit in the {offset} bytes" in problems[0]["message"]


def test_a_block_table_on_a_copy_that_is_not_gzip_is_reported(index):
    at, log = table_log(index)
    log["compression"] = "zstd"
    assert found(index) == [(f"{at}.blocks", "blocks")]
    assert "its stored copy is zstd" in validate_index_document(index)[0]["message"]
    entry = index["archives"][1]
    plain = next(j for j, log in enumerate(entry["logs"]) if not log["compressed"])
    entry["logs"][plain]["blocks"] = {"offset": 0, "length": 79, "sha256": "0" * 64,
                                      "count": 0}
    assert (f"$.archives[1].logs[{plain}].blocks", "blocks") in found(index)


def test_a_block_table_with_another_field_is_a_schema_violation(index):
    at, log = table_log(index)
    log["blocks"]["start"] = 0
    assert found(index) == [(f"{at}.blocks", "schema")]


def test_cli_and_every_reader_refuse_a_hostile_block_table(workspace, run_cli, index):
    at, log = table_log(index)
    log["blocks"]["offset"] += 4096
    path = write(workspace / "logs" / ".archive-index.json", index)
    result = run_cli("validate-index", path)
    assert result.exit_code == 1
    (error,) = result.json["errors"]
    assert error["type"] == "index_invalid" and f"{at}.blocks" in error["message"]
    assert str(log["blocks"]["offset"]) in error["message"]
    assert "--reindex-only" in error["hint"]
    read = run_cli("read", "30", log["local_path"], "--json")
    assert read.exit_code == 1
    assert read.json["errors"][0]["type"] == "index_corrupt"
    assert "blocks" in read.json["errors"][0]["message"]


@pytest.mark.parametrize("count", [0, 1, 2, 1364, 1365, 1366, 4103])
def test_the_length_the_rules_expect_is_what_the_writer_writes(count):
    import hashlib

    from log_archiver.model.block_table import PER_MEMBER, region_length
    from log_archiver.retrieve.blocks import TableBuilder, parse_region

    assert PER_MEMBER == 1365  # the counts above straddle a table member's edge
    builder = TableBuilder()
    for _ in range(count):
        builder.raw_block(b"line\n")
        builder.member(25, hashlib.sha256(b"m").digest())
    region, blocks = builder.finish(25 * count)
    assert blocks["length"] == len(region) == region_length(count)
    assert len(parse_region(region, 25 * count)) == count

"""The archive-index merge driver: unit rules, and real `git merge` runs through it."""

from __future__ import annotations

import copy
import io
import json
import sys
from pathlib import Path

import pytest

from gitutil import init_repo, run_git
from log_archiver.index.file import dumps, validate_document
from log_archiver.index.merge import (
    DRIVER_NAME,
    Conflict,
    install_merge_driver,
    main,
    merge_documents,
    merge_index_files,
)
from log_archiver.model.records import recompute_entry

INDEX = "logs/.archive-index.json"
DRIVER = f'"{sys.executable}" -m log_archiver.index.merge %O %A %B'


def sha(char: str) -> str:
    return "sha256:" + char * 64


def make_log(issue: int, name: str, status: str = "verified", *, attempt: int = 1,
             ts: str = "2025-01-15T14:00:00Z", checksum: str = "a") -> dict:
    key = f"archive/logs/2025/01/{issue}/{name}"
    return {
        "type": "build", "filename": name, "local_path": f"builds/{name}",
        "stored_path": f"builds/{name}", "remote_path": key, "cloud_url": f"s3://b/{key}",
        "public_url": None, "size_bytes": 100, "original_size_bytes": 100, "compressed": False,
        "compression": None, "checksum": sha(checksum), "original_checksum": sha(checksum),
        "created": "2025-01-15T09:00:00Z", "archived": None, "upload_status": status,
        "upload_timestamp": ts, "upload_attempt": attempt,
        "last_error": "HTTP 503" if status == "failed" else None,
    }


def make_entry(issue: int, logs: list, archived_at: str = "2025-01-15T14:00:00Z") -> dict:
    return recompute_entry({
        "issue_number": issue, "issue_url": f"https://github.com/o/r/issues/{issue}",
        "issue_title": f"Issue {issue}", "archived_at": archived_at,
        "archive_reason": "issue_closed", "logs": logs, "total_size_bytes": 0,
        "total_original_size_bytes": 0, "total_logs": 0, "compression_ratio": None,
        "partial_archive": False, "upload_complete": True, "retry_count": 0,
        "storage_url": "s3://b", "partial_reason": None})


def make_doc(*entries, updated: str = "2025-01-15T14:00:00Z") -> dict:
    doc = {"schema_version": 1, "last_updated": updated,
           "archives": sorted(entries, key=lambda e: -e["issue_number"])}
    validate_document(doc)
    return doc


def issues(doc: dict) -> list[int]:
    return [e["issue_number"] for e in doc["archives"]]


# --- merge rules ------------------------------------------------------------------------

def test_entries_from_both_sides_are_kept_and_sorted():
    base = make_doc(make_entry(1, [make_log(1, "1-a.log")]))
    ours = make_doc(*base["archives"], make_entry(2, [make_log(2, "2-a.log")]),
                    updated="2025-01-16T00:00:00Z")
    theirs = make_doc(*base["archives"], make_entry(10, [make_log(10, "10-a.log")]),
                      updated="2025-01-15T20:00:00Z")
    merged, conflicts = merge_documents(base, ours, theirs)
    assert conflicts == [] and issues(merged) == [10, 2, 1]  # numeric, not text order
    assert merged["last_updated"] == "2025-01-16T00:00:00Z"
    validate_document(merged)


def test_the_same_file_keeps_its_further_state_and_totals_are_recomputed():
    base_entry = make_entry(5, [make_log(5, "5-a.log", "failed"),
                                make_log(5, "5-b.log", "uploaded")])
    base_entry["partial_reason"] = "upload failed"
    recompute_entry(base_entry)
    ours_entry, theirs_entry = copy.deepcopy(base_entry), copy.deepcopy(base_entry)
    ours_entry["logs"][0] = make_log(5, "5-a.log", "verified", attempt=2,
                                     ts="2025-01-16T10:00:00Z")
    ours_entry["partial_reason"] = None
    theirs_entry["logs"][1] = make_log(5, "5-b.log", "cleaned", ts="2025-01-16T09:00:00Z")
    theirs_entry["logs"].append(make_log(5, "5-c.log", "verified", checksum="c"))
    merged, conflicts = merge_documents(make_doc(base_entry), make_doc(recompute_entry(ours_entry)),
                                        make_doc(recompute_entry(theirs_entry)))
    assert conflicts == []
    entry = merged["archives"][0]
    assert [(log["filename"], log["upload_status"]) for log in entry["logs"]] == [
        ("5-a.log", "verified"), ("5-b.log", "cleaned"), ("5-c.log", "verified")]
    assert entry["total_logs"] == 3 and entry["total_size_bytes"] == 300
    assert entry["upload_complete"] and not entry["partial_archive"]
    assert entry["partial_reason"] is None and entry["retry_count"] == 1


def test_equal_states_prefer_the_newer_timestamp_even_with_fractions():
    older = make_log(5, "5-a.log", "retrying", ts="2025-01-15T14:00:00Z", attempt=3)
    newer = make_log(5, "5-a.log", "retrying", ts="2025-01-15T14:00:00.5Z", attempt=2)
    for ours, theirs in ((older, newer), (newer, older)):  # whichever side holds it
        merged, _ = merge_documents(make_doc(), make_doc(make_entry(5, [ours])),
                                    make_doc(make_entry(5, [theirs])))
        assert merged["archives"][0]["logs"][0]["upload_timestamp"] == "2025-01-15T14:00:00.5Z"


def test_same_file_with_different_checksums_is_a_conflict():
    ours = make_doc(make_entry(5, [make_log(5, "5-a.log", "verified", checksum="a")]))
    theirs = make_doc(make_entry(5, [make_log(5, "5-a.log", "pending", checksum="b")]))
    _, conflicts = merge_documents(make_doc(), ours, theirs)
    assert conflicts == [Conflict(5, "builds/5-a.log", sha("a"), sha("b"),
                                  "the same log has a different checksum on each side")]
    assert sha("a") in str(conflicts[0]) and "issue #5" in str(conflicts[0])


def test_removal_against_an_untouched_side_stays_removed_but_against_a_change_conflicts():
    one, two = make_entry(1, [make_log(1, "1-a.log")]), make_entry(2, [make_log(2, "2-a.log")])
    base = make_doc(one, two)
    merged, conflicts = merge_documents(base, make_doc(two), base)
    assert conflicts == [] and issues(merged) == [2]
    changed = copy.deepcopy(one)
    changed["issue_title"] = "renamed"
    _, conflicts = merge_documents(base, make_doc(two), make_doc(changed, two))
    assert [(c.issue, c.reason) for c in conflicts] == [
        (1, "removed on ours side, changed on the other")]


def test_fields_changed_on_both_sides_follow_the_later_archive():
    base = make_entry(4, [make_log(4, "4-a.log")])
    ours, theirs = copy.deepcopy(base), copy.deepcopy(base)
    ours["issue_title"], ours["archived_at"] = "ours title", "2025-02-01T00:00:00Z"
    theirs["issue_title"], theirs["archived_at"] = "theirs title", "2025-01-20T00:00:00Z"
    theirs["issue_url"] = "https://github.com/o/r/issues/4#moved"  # only theirs changed it
    merged, _ = merge_documents(make_doc(base), make_doc(ours), make_doc(theirs))
    entry = merged["archives"][0]
    assert entry["issue_title"] == "ours title" and entry["archived_at"] == "2025-02-01T00:00:00Z"
    assert entry["issue_url"].endswith("#moved")


def files(tmp_path: Path, base, ours, theirs) -> tuple[Path, Path, Path]:
    paths = []
    for name, doc in (("O", base), ("A", ours), ("B", theirs)):
        path = tmp_path / name
        path.write_bytes(doc if isinstance(doc, bytes) else dumps(doc))
        paths.append(path)
    return tuple(paths)


def test_files_merge_writes_ours_and_conflict_leaves_it_untouched(tmp_path):
    base, ours, theirs = files(tmp_path, b"", make_doc(make_entry(2, [])),
                               make_doc(make_entry(3, [])))
    assert merge_index_files(base, ours, theirs) is True
    assert issues(json.loads(ours.read_bytes())) == [3, 2]
    bad = b'{"schema_version": 1, "archives": [}'
    base, ours, theirs = files(tmp_path, b"", make_doc(make_entry(2, [])), bad)
    before = ours.read_bytes()
    report: list = []
    assert merge_index_files(base, ours, theirs, report=report) is False
    assert ours.read_bytes() == before and "theirs side" in report[0].reason


def test_main_exit_codes(tmp_path):
    err = io.StringIO()
    assert main(["only-one"], stderr=err) == 2 and "usage" in err.getvalue()
    ours = make_doc(make_entry(5, [make_log(5, "5-a.log", checksum="a")]))
    theirs = make_doc(make_entry(5, [make_log(5, "5-a.log", checksum="b")]))
    paths = [str(p) for p in files(tmp_path, b"", ours, theirs)]
    assert main(paths, stderr=err) == 1
    assert "issue #5, builds/5-a.log" in err.getvalue() and sha("b") in err.getvalue()


# --- installing the driver and real git merges ------------------------------------------

@pytest.fixture
def repo(tmp_path, isolated_git):
    return init_repo(tmp_path / "repo")


def save(root: Path, doc: dict, message: str) -> None:
    path = root / INDEX
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(dumps(doc))
    run_git(root, "add", "-A")
    run_git(root, "commit", "-q", "-m", message)


def branches(root: Path, base: dict, ours: dict, theirs: dict) -> None:
    save(root, base, "base")
    run_git(root, "checkout", "-q", "-b", "theirs")
    save(root, theirs, "theirs")
    run_git(root, "checkout", "-q", "main")
    save(root, ours, "ours")


def test_install_is_idempotent_and_keeps_other_attributes(repo):
    attributes = repo / ".gitattributes"
    attributes.write_text(f"*.png binary\n/{INDEX} -diff merge=union\n")
    first = install_merge_driver(repo, INDEX)
    assert first["gitattributes_changed"]
    assert attributes.read_text() == f"*.png binary\n/{INDEX} -diff merge={DRIVER_NAME}\n"
    assert install_merge_driver(repo, INDEX)["gitattributes_changed"] is False
    assert attributes.read_text() == f"*.png binary\n/{INDEX} -diff merge={DRIVER_NAME}\n"
    driver = run_git(repo, "config", "--get", f"merge.{DRIVER_NAME}.driver").stdout.strip()
    assert driver == "log-archiver merge-index %O %A %B"
    assert run_git(repo, "config", "--get", f"merge.{DRIVER_NAME}.name").stdout.strip()
    attr = run_git(repo, "check-attr", "merge", "--", INDEX).stdout
    assert attr.strip() == f"{INDEX}: merge: {DRIVER_NAME}"
    elsewhere = run_git(repo, "check-attr", "merge", "--", "other/" + INDEX).stdout
    assert DRIVER_NAME not in elsewhere  # anchored to this one index


def test_branches_archiving_different_issues_merge_cleanly(repo):
    base = make_doc(make_entry(1, [make_log(1, "1-a.log")]))
    ours = make_doc(*base["archives"], make_entry(2, [make_log(2, "2-a.log")]))
    theirs = make_doc(*base["archives"], make_entry(3, [make_log(3, "3-a.log")]))
    branches(repo, base, ours, theirs)
    plain = run_git(repo, "merge", "--no-edit", "theirs", check=False)
    assert plain.returncode != 0  # a plain text merge of the JSON conflicts
    run_git(repo, "merge", "--abort")

    install_merge_driver(repo, INDEX, command=DRIVER)
    merged = run_git(repo, "merge", "--no-edit", "theirs", check=False)
    assert merged.returncode == 0, merged.stdout + merged.stderr
    doc = json.loads((repo / INDEX).read_text())
    validate_document(doc)
    assert issues(doc) == [3, 2, 1]
    assert run_git(repo, "status", "--porcelain").stdout.strip() == "?? .gitattributes"


def test_retries_of_the_same_issue_merge_to_the_newer_states(repo):
    base_entry = make_entry(5, [make_log(5, "5-a.log", "failed"),
                                make_log(5, "5-b.log", "pending", attempt=0)])
    ours_entry, theirs_entry = copy.deepcopy(base_entry), copy.deepcopy(base_entry)
    ours_entry["logs"][0] = make_log(5, "5-a.log", "verified", attempt=2,
                                     ts="2025-01-16T10:00:00Z")
    theirs_entry["logs"][1] = make_log(5, "5-b.log", "uploaded", ts="2025-01-16T11:00:00Z")
    install_merge_driver(repo, INDEX, command=DRIVER)
    branches(repo, make_doc(base_entry), make_doc(recompute_entry(ours_entry)),
             make_doc(recompute_entry(theirs_entry)))
    merged = run_git(repo, "merge", "--no-edit", "theirs", check=False)
    assert merged.returncode == 0, merged.stdout + merged.stderr
    entry = json.loads((repo / INDEX).read_text())["archives"][0]
    assert [log["upload_status"] for log in entry["logs"]] == ["verified", "uploaded"]
    assert entry["upload_complete"] and not entry["partial_archive"]


def test_different_checksums_are_left_as_a_conflict_for_a_person(repo):
    ours = make_doc(make_entry(5, [make_log(5, "5-a.log", checksum="a")]))
    theirs = make_doc(make_entry(5, [make_log(5, "5-a.log", checksum="b")]))
    install_merge_driver(repo, INDEX, command=DRIVER)
    branches(repo, make_doc(), ours, theirs)
    merged = run_git(repo, "merge", "--no-edit", "theirs", check=False)
    assert merged.returncode != 0
    assert "log-archiver merge conflict: issue #5, builds/5-a.log" in merged.stderr
    assert sha("a") in merged.stderr and sha("b") in merged.stderr
    assert INDEX in run_git(repo, "ls-files", "-u").stdout  # git marks it unmerged
    assert (repo / INDEX).read_bytes() == dumps(ours)  # ours left as it was, not a pick


# --- legal holds ------------------------------------------------------------------------

HOLD = {"reason": "litigation 2025-17", "by": "Counsel <c@example.com>",
        "at": "2025-01-20T00:00:00Z"}


def held(entry: dict, hold: dict | None = HOLD) -> dict:
    entry = copy.deepcopy(entry)
    entry["hold"] = copy.deepcopy(hold)
    return entry


def test_a_release_on_one_side_never_drops_the_hold_the_other_side_keeps():
    base = held(make_entry(7, [make_log(7, "7-a.log")]))
    released = held(base, None)
    for ours, theirs, other in ((released, base, "ours"), (base, released, "theirs")):
        decisions: list = []
        merged, conflicts = merge_documents(make_doc(base), make_doc(ours), make_doc(theirs),
                                            decisions=decisions)
        assert conflicts == []
        assert merged["archives"][0]["hold"] == HOLD
        validate_document(merged)
        (decision,) = decisions
        assert decision.issue == 7 and decision.decision == "kept the legal hold"
        assert f"the {other} side released it" in decision.reason
        assert "log-archiver release 7" in str(decision) and HOLD["reason"] in str(decision)


def test_a_hold_placed_against_a_concurrent_release_and_rehold_keeps_a_hold():
    base = held(make_entry(7, [make_log(7, "7-a.log")]))
    ours = held(base, None)  # released, and archived again later: the later side
    ours["archived_at"] = "2025-03-01T00:00:00Z"
    rehold = dict(HOLD, reason="new matter", at="2025-02-01T00:00:00Z")
    theirs = held(base, rehold)
    decisions: list = []
    merged, _ = merge_documents(make_doc(base), make_doc(ours), make_doc(theirs),
                                decisions=decisions)
    assert merged["archives"][0]["hold"] == rehold
    assert [d.issue for d in decisions] == [7]


def test_a_hold_on_one_side_of_a_two_way_merge_stays_even_when_the_other_is_later():
    entry = make_entry(7, [make_log(7, "7-a.log")])
    ours = held(entry, None)
    ours["archived_at"] = "2025-03-01T00:00:00Z"
    merged, _ = merge_documents(make_doc(), make_doc(ours), make_doc(held(entry)))
    assert merged["archives"][0]["hold"] == HOLD


def test_a_hold_only_one_side_records_is_kept_when_the_other_side_changed_the_entry():
    base = make_entry(7, [make_log(7, "7-a.log")])  # no hold field at all
    ours = copy.deepcopy(base)
    ours["issue_title"] = "renamed"
    decisions: list = []
    merged, conflicts = merge_documents(make_doc(base), make_doc(ours),
                                        make_doc(held(base)), decisions=decisions)
    entry = merged["archives"][0]
    assert conflicts == [] and entry["hold"] == HOLD and entry["issue_title"] == "renamed"
    assert decisions == []  # placed on one side, untouched on the other: nothing to override


def test_both_sides_releasing_leave_no_hold_and_no_decision():
    base = held(make_entry(7, [make_log(7, "7-a.log")]))
    decisions: list = []
    merged, _ = merge_documents(make_doc(base), make_doc(held(base, None)),
                                make_doc(held(base, None)), decisions=decisions)
    assert merged["archives"][0]["hold"] is None and decisions == []


def test_a_held_entry_removed_on_one_side_stays():
    other = make_entry(8, [make_log(8, "8-a.log")])
    base = make_doc(held(make_entry(7, [make_log(7, "7-a.log")])), other)
    decisions: list = []
    merged, conflicts = merge_documents(base, make_doc(other), base, decisions=decisions)
    assert conflicts == [] and issues(merged) == [8, 7]
    assert merged["archives"][1]["hold"] == HOLD
    assert [(d.issue, "removed the entry" in d.reason) for d in decisions] == [(7, True)]


@pytest.mark.parametrize("released_side", ["ours", "theirs"])
def test_git_merge_of_a_release_against_a_held_branch_keeps_the_hold(repo, released_side):
    entry = held(make_entry(7, [make_log(7, "7-a.log")]))
    base = make_doc(entry)
    sides = {"ours": [entry, make_entry(2, [make_log(2, "2-a.log")])],
             "theirs": [entry, make_entry(3, [make_log(3, "3-a.log")])]}
    sides[released_side][0] = held(entry, None)
    install_merge_driver(repo, INDEX, command=DRIVER)
    branches(repo, base, make_doc(*sides["ours"]), make_doc(*sides["theirs"]))
    merged = run_git(repo, "merge", "--no-edit", "theirs", check=False)
    assert merged.returncode == 0, merged.stdout + merged.stderr
    doc = json.loads((repo / INDEX).read_text())
    validate_document(doc)
    assert issues(doc) == [7, 3, 2]
    assert doc["archives"][0]["hold"] == HOLD
    assert "log-archiver merge: issue #7: kept the legal hold" in merged.stderr
    assert f"the {released_side} side released it" in merged.stderr
    assert "log-archiver release 7" in merged.stderr
    assert run_git(repo, "ls-files", "-u").stdout == ""  # merged, not left conflicted

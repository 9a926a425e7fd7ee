"""`log-archiver list`: newest first, filters, and a keyset cursor that returns every entry
exactly once while archives are added between pages; hostile cursors are refused."""

from __future__ import annotations

import base64
import copy
import json

import pytest

from log_archiver.index.file import ArchiveIndex
from log_archiver.model.states import archive_state
from log_archiver.util.samples import write_sample_logs


@pytest.fixture
def index(workspace, run_cli):
    """One real archive, cloned into 60 entries over two months (some sharing a second)."""
    write_sample_logs(workspace / "logs", 1)
    assert run_cli("archive", "1", "--no-commit", "-q").exit_code == 0
    archive_index = ArchiveIndex(workspace / "logs" / ".archive-index.json")
    with archive_index.transaction() as txn:
        template = txn.get(1)
        for issue in range(2, 61):
            entry = copy.deepcopy(template)
            entry["issue_number"] = issue
            day = 1 + issue % 28
            entry["archived_at"] = f"2025-{1 + issue % 2:02d}-{day:02d}T10:00:00Z"
            if issue % 7 == 0:
                entry["archive_reason"] = "issue_closed"
            if issue % 11 == 0:
                entry["partial_archive"], entry["partial_reason"] = True, "index update failed"
            for log in entry["logs"]:
                log["remote_path"] = log["remote_path"].replace("/1/", f"/{issue}/")
            txn.put(entry)
    return archive_index


def walk(run_cli, *args, limit=7, between=None):
    seen, cursor, pages = [], None, 0
    while True:
        extra = ["--cursor", cursor] if cursor else []
        result = run_cli("list", "--limit", str(limit), *args, *extra)
        assert result.exit_code == 0, result.stdout
        doc = result.json
        seen += [item["issue_number"] for item in doc["archives"]]
        pages += 1
        cursor = doc["next_cursor"]
        if cursor is None:
            return seen, pages
        if between:
            between(pages)


def order_key(entry):
    from log_archiver.retrieve.listing import instant

    return instant(entry["archived_at"]), entry["issue_number"]


def test_every_entry_once_newest_first(index, run_cli):
    entries = index.read()["archives"]
    seen, pages = walk(run_cli)
    expected = [e["issue_number"] for e in sorted(entries, key=order_key, reverse=True)]
    assert seen == expected and pages == -(-len(entries) // 7)


def test_archives_added_between_pages_never_repeat_or_hide_others(index, run_cli):
    before = {e["issue_number"] for e in index.read()["archives"]}
    added = iter(range(1000, 1100))

    def add(_page):
        with index.transaction() as txn:
            template = txn.get(2)
            for _ in range(3):
                entry = copy.deepcopy(template)
                entry["issue_number"] = next(added)
                entry["archived_at"] = "2026-06-01T00:00:00Z"  # newer than the cursor
                for log in entry["logs"]:
                    log["remote_path"] = log["remote_path"].replace(
                        "/2/", f"/{entry['issue_number']}/", 1)
                txn.put(entry)

    seen, _pages = walk(run_cli, between=add)
    assert len(seen) == len(set(seen))
    assert before <= set(seen)


def test_filters(index, run_cli):
    entries = index.read()["archives"]
    doc = run_cli("list", "--reason", "issue_closed", "--limit", "1000").json
    assert {a["issue_number"] for a in doc["archives"]} == \
        {e["issue_number"] for e in entries if e["archive_reason"] == "issue_closed"}
    doc = run_cli("list", "--state", "partial", "--limit", "1000").json
    assert {a["issue_number"] for a in doc["archives"]} == set(range(11, 61, 11))
    assert all(a["state"] == "partial" for a in doc["archives"])
    doc = run_cli("list", "--since", "2025-02-01", "--until", "2025-02-10",
                  "--limit", "1000").json
    assert doc["archives"] and all("2025-02-01" <= a["archived_at"][:10] <= "2025-02-10"
                                   for a in doc["archives"])
    doc = run_cli("list", "--type", "deployment", "--limit", "1000").json
    assert len(doc["archives"]) == len(entries)
    doc = run_cli("list", "--type", "build", "--reason", "issue_closed", "--state", "complete",
                  "--limit", "1000").json
    assert {a["issue_number"] for a in doc["archives"]} == \
        {n for n in range(7, 61, 7) if n % 11}


def test_the_list_cache_follows_the_index(index, run_cli, workspace):
    from log_archiver.retrieve.list_cache import cache_path

    first = run_cli("list", "--limit", "5").json
    cache = cache_path(index.file)
    assert cache.is_file()
    assert run_cli("list", "--limit", "5").json == first  # from the cache
    with index.transaction() as txn:  # a newer archive: the cache no longer describes it
        entry = copy.deepcopy(txn.get(3))
        entry["issue_number"], entry["archived_at"] = 777, "2027-01-01T00:00:00Z"
        for log in entry["logs"]:
            log["remote_path"] = log["remote_path"].replace("/3/", "/777/", 1)
        txn.put(entry)
    assert run_cli("list", "--limit", "1").json["archives"][0]["issue_number"] == 777
    cache.write_text('{"v": 1, "identity": "garbage"')  # damaged: built again
    assert run_cli("list", "--limit", "1").json["archives"][0]["issue_number"] == 777
    seen, _ = walk(run_cli, "--reason", "issue_closed", limit=3)
    assert sorted(seen) == list(range(7, 61, 7))


def test_label_and_hold_filters_read_the_fields_lifecycle_records():
    from log_archiver.retrieve.listing import Filters, instant

    entry = {"issue_number": 5, "archived_at": "2025-01-02T00:00:00Z", "logs": [],
             "archive_reason": "manual", "partial_archive": False, "upload_complete": True,
             "labels": ["flaky", "ci"]}
    moment = instant(entry["archived_at"])
    assert Filters(label="flaky").keeps(entry, moment)
    assert not Filters(label="flak").keeps(entry, moment)
    assert not Filters(label="flaky").keeps({**entry, "labels": None}, moment)
    held = {**entry, "hold": {"reason": "legal", "by": "a", "at": "2025-01-03T00:00:00Z"}}
    assert Filters(state="held").keeps(held, moment)
    assert not Filters(state="complete").keeps(held, moment)
    assert Filters(state="complete").keeps({**entry, "hold": None}, moment)


def test_archive_states():
    entry = {"logs": [{"upload_status": "cleaned"}], "partial_archive": False,
             "upload_complete": True}
    assert archive_state(entry) == "complete"
    assert archive_state({**entry, "partial_archive": True}) == "partial"
    assert archive_state({**entry, "upload_complete": False}) == "partial"
    assert archive_state({**entry, "logs": [{"upload_status": "expired"}]}) == "expired"
    assert archive_state({**entry, "hold": {"reason": "legal", "by": "a", "at": "x"}}) == "held"


def forged(data) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


@pytest.mark.parametrize("cursor", [
    "not a cursor", "@@@", "a" * 500, forged({"v": 2, "at": "2025-01-01T00:00:00.000000000Z",
                                             "issue": 3}),
    forged({"v": 1, "at": "yesterday", "issue": 3}),
    forged({"v": 1, "at": "2025-01-01T00:00:00.000000000Z", "issue": -3}),
    forged({"v": 1, "at": "2025-01-01T00:00:00.000000000Z", "issue": True}),
    forged({"v": 1, "at": "2025-01-01T00:00:00.000000000Z", "issue": 3, "x": 1}),
    forged([1, 2]), base64.urlsafe_b64encode(b"\xff\xfe").decode().rstrip("="),
])
def test_hostile_cursors_are_usage_errors(index, run_cli, cursor):
    result = run_cli("list", "--cursor", cursor)
    assert result.exit_code == 2, result.stdout
    assert result.json["errors"][0]["type"] == "usage"
    assert "--cursor" in result.json["errors"][0]["message"]


@pytest.mark.parametrize("args", [["--limit", "0"], ["--limit", "1001"],
                                  ["--since", "2025-13-01"], ["--until", "soon"]])
def test_bad_options_are_usage_errors(index, run_cli, args):
    result = run_cli("list", *args)
    assert result.exit_code == 2 and result.json["errors"][0]["type"] == "usage"


def test_an_empty_index_is_a_noop(workspace, run_cli):
    doc = run_cli("list").json
    assert doc["status"] == "noop" and doc["archives"] == [] and doc["next_cursor"] is None

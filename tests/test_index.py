"""The index on disk: its exact layout, the entries parsed on demand, and validation that
is skipped only for bytes this tool wrote or already checked."""

from __future__ import annotations

import copy
import json
import os

import pytest

from log_archiver.errors import IndexCorruptError
from log_archiver.index.file import ArchiveIndex, dumps
from log_archiver.index.layout import IndexDocument
from log_archiver.util.samples import write_sample_logs


@pytest.fixture
def index(workspace, run_cli):
    """An index the workflow wrote: three issues, one titled in non-ASCII text."""
    logs = workspace / "logs"
    for issue in (7, 12, 300):
        write_sample_logs(logs, issue, big=1_200_000, seed=issue)
        assert run_cli("archive", issue, "--no-commit", "-q").exit_code == 0
    idx = ArchiveIndex(logs / ".archive-index.json")
    with idx.transaction() as txn:
        txn.edit(12)["issue_title"] = "Fix “quotes” — ünïcode 日本 \\ and \"escapes\""
    return ArchiveIndex(idx.path)


def test_the_file_is_json_dumps_indent_2(index):
    raw = index.path.read_bytes()
    doc = json.loads(raw)
    assert raw == (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode()
    assert [e["issue_number"] for e in doc["archives"]] == [300, 12, 7]


def test_split_entries_join_back_to_the_same_bytes(index):
    raw = index.path.read_bytes()
    document = IndexDocument.from_layout(raw)
    assert document is not None and document.issues() == [300, 12, 7]
    assert b"".join(document.to_parts(set())) == raw
    assert document.to_dict() == json.loads(raw)


def test_changing_one_entry_writes_what_a_full_dump_would(index):
    raw = index.path.read_bytes()
    document = IndexDocument.from_layout(raw)
    document.find(12)["logs"][0]["last_error"] = "changed"
    expected = json.loads(raw)
    expected["archives"][1]["logs"][0]["last_error"] = "changed"
    assert b"".join(document.to_parts({12})) == dumps(expected)


def test_puts_keep_newest_first_and_replace_in_place(index):
    document = IndexDocument.from_layout(index.path.read_bytes())
    template = document.find(12)
    for issue in (1, 13, 500, 12):
        document.put(dict(copy.deepcopy(template), issue_number=issue))
    assert document.issues() == [500, 300, 13, 12, 7, 1]
    doc = json.loads(b"".join(document.to_parts({500, 13, 12, 1})))
    assert [e["issue_number"] for e in doc["archives"]] == [500, 300, 13, 12, 7, 1]


@pytest.mark.parametrize("text", [
    b'{"schema_version": 1, "last_updated": "2025-01-01T00:00:00Z", "archives": []}\n',
    b'{\n  "last_updated": "x",\n  "schema_version": 1,\n  "archives": []\n}\n',
])
def test_other_layouts_are_not_split(text):
    assert IndexDocument.from_layout(text) is None


def test_unsorted_entries_are_read_the_slow_way(index):
    doc = json.loads(index.path.read_bytes())
    doc["archives"].reverse()
    assert IndexDocument.from_layout(dumps(doc)) is None


def test_a_hand_edit_is_validated_again(index, workspace, run_cli):
    """The validity record names the file it vouches for; an edit makes another file."""
    doc = json.loads(index.path.read_bytes())
    doc["archives"][2]["logs"][0]["size_bytes"] = -1  # issue 7, not the one archived next
    index.path.write_bytes(dumps(doc))
    before = index.path.read_bytes()
    write_sample_logs(workspace / "logs", 99)
    result = run_cli("archive", "99", "--no-commit")
    assert result.exit_code == 1
    assert result.json["errors"][0]["type"] == "index_corrupt"
    assert "$.archives[2].logs[0].size_bytes" in result.json["errors"][0]["message"]
    assert index.path.read_bytes() == before
    assert (workspace / "logs" / "sessions" / "session-99-2025-01-15.md").exists()


def test_a_validity_record_of_an_older_schema_is_ignored(index):
    record = index.valid_path.read_text().split()
    doc = json.loads(index.path.read_bytes())
    doc["archives"][0]["total_logs"] = "four"
    index.path.write_bytes(dumps(doc))
    stat = index.path.stat()
    identity = f"{stat.st_dev}:{stat.st_ino}:{stat.st_size}:{stat.st_mtime_ns}:{stat.st_ctime_ns}"
    index.valid_path.write_text(f"0.0.0:{record[0].split(':')[1]} {identity} - layout\n")
    with pytest.raises(IndexCorruptError, match="total_logs"):
        ArchiveIndex(index.path).find(300)
    index.valid_path.write_text(f"{record[0]} {identity} - layout\n")
    assert ArchiveIndex(index.path).find(300)["total_logs"] == "four"  # vouched for: trusted


def test_the_same_bytes_under_a_new_inode_are_trusted_by_their_digest(index):
    index.path.write_bytes(index.path.read_bytes())  # the same bytes, but not our file now
    ArchiveIndex(index.path).find(7)  # validates them whole and records their digest
    record = index.valid_path.read_text().split()
    assert len(record[2]) == 64
    copy_path = index.path.with_name("copy.json")
    copy_path.write_bytes(index.path.read_bytes())
    os.replace(copy_path, index.path)
    reread = ArchiveIndex(index.path)
    assert reread._known(_identity_of(index.path), index.path.read_bytes()) == "layout"


def _identity_of(path):
    stat = path.stat()
    return (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)


def test_an_invalid_change_is_refused_and_forgotten(index):
    before = index.path.read_bytes()
    with pytest.raises(IndexCorruptError, match="not written"), index.transaction() as txn:
        txn.edit(300)["logs"][0]["checksum"] = "md5:nope"
    assert index.path.read_bytes() == before
    assert index.find(300)["logs"][0]["checksum"].startswith("sha256:")


def test_another_writer_is_seen_by_a_long_lived_reader(index):
    reader = ArchiveIndex(index.path)
    assert reader.find(300)["issue_title"] is None
    with ArchiveIndex(index.path).transaction() as txn:
        txn.edit(300)["issue_title"] = "renamed"
    assert reader.find(300)["issue_title"] == "renamed"


def test_an_invalid_new_entry_is_refused(index):
    before = index.path.read_bytes()
    entry = dict(copy.deepcopy(index.find(7)), issue_number=8, archive_reason="bored")
    with pytest.raises(IndexCorruptError, match="archive_reason"), index.transaction() as txn:
        txn.put(entry)
    assert index.path.read_bytes() == before and index.find(8) is None


def test_another_layout_on_disk_is_read_and_rewritten_in_ours(index, workspace, run_cli):
    doc = json.loads(index.path.read_bytes())
    index.path.write_text(json.dumps(doc, indent=4))
    write_sample_logs(workspace / "logs", 41)
    assert run_cli("archive", "41", "--no-commit").exit_code == 0
    raw = index.path.read_bytes()
    assert IndexDocument.from_layout(raw) is not None
    assert [e["issue_number"] for e in json.loads(raw)["archives"]] == [300, 41, 12, 7]


def test_an_edited_entry_is_written_without_being_told(index):
    """The safe way is the only way: an entry taken for change is written back."""
    with index.transaction() as txn:
        txn.edit(7)["issue_title"] = "edited"
    assert ArchiveIndex(index.path).find(7)["issue_title"] == "edited"
    assert json.loads(index.path.read_text())["archives"][-1]["issue_title"] == "edited"


def test_what_readers_get_cannot_change_the_index(index):
    before = index.path.read_bytes()
    found = index.find(12)
    found["issue_title"] = "scribbled"
    found["logs"].clear()
    index.read()["archives"][0]["issue_title"] = "scribbled too"
    with index.transaction() as txn:
        txn.get(300)["issue_title"] = "looked at, not edited"
    assert index.find(12)["logs"] and index.find(12)["issue_title"] != "scribbled"
    assert index.find(300)["issue_title"] != "looked at, not edited"
    with index.transaction() as txn:  # another entry changes: the rest is written as it was
        txn.edit(7)["issue_title"] = "changed"
    after = json.loads(index.path.read_text())
    assert {e["issue_number"]: e for e in after["archives"]}[12] == \
        {e["issue_number"]: e for e in json.loads(before)["archives"]}[12]

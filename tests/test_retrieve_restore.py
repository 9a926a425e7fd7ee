"""`log-archiver restore` on both stores: verified originals back in place (or under
--to), nothing written for a damaged object, never a path outside the target folder,
other content left alone unless --force, and the index unchanged."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from retrieve_helpers import BIG, SMALL, place_fixture, write_logs  # noqa: F401


@pytest.fixture
def archived(place, run_cli):
    logs = write_logs(place)
    assert run_cli("archive", "7", "--no-commit", "-q").exit_code == 0
    return place, logs


def files_under(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def test_restore_writes_the_originals_back_and_changes_no_index(archived, run_cli):
    place, logs = archived
    index_before = (place.logs / ".archive-index.json").read_bytes()
    events = []
    from log_archiver.events import Events

    original_init = Events.__init__

    def listening(self):  # every Repository's events: record what restore emits
        original_init(self)
        self.subscribe(events.append)

    Events.__init__ = listening
    try:
        result = run_cli("restore", "7")
    finally:
        Events.__init__ = original_init
    assert result.exit_code == 0, result.stdout
    doc = result.json
    assert sorted(doc["restored"]) == sorted(logs)
    assert doc["restored_bytes"] == sum(map(len, logs.values()))
    for name, data in logs.items():
        assert (place.logs / name).read_bytes() == data
    assert (place.logs / ".archive-index.json").read_bytes() == index_before
    restored = [e for e in events if e.name == "file.restored"]
    assert sorted(e.path for e in restored) == sorted(logs)
    big = next(e for e in restored if e.path == BIG)
    assert big.bytes == len(logs[BIG]) and big.fields["checksum"].startswith("sha256:")
    assert big.fields["target"] == str(place.logs / BIG)
    assert not [p for p in files_under(place.logs) if ".la-restore-" in p]
    again = run_cli("restore", "7").json
    assert again["status"] == "noop" and sorted(again["unchanged"]) == sorted(logs)


def test_cleanup_frees_restored_files_again(archived, run_cli):
    place, logs = archived
    assert run_cli("restore", "7").exit_code == 0
    cleanup = run_cli("cleanup-local", "7")
    assert cleanup.exit_code == 0, cleanup.stdout
    assert not any((place.logs / name).exists() for name in logs)


def test_restore_into_another_folder_from_a_second_clone(archived, run_cli, tmp_path,
                                                         monkeypatch):
    place, logs = archived
    clone = tmp_path / "clone"
    (clone / "logs").mkdir(parents=True)
    shutil.copy(place.logs / ".archive-index.json", clone / "logs" / ".archive-index.json")
    if (place.root / ".log-archiver.json").exists():
        shutil.copy(place.root / ".log-archiver.json", clone / ".log-archiver.json")
    monkeypatch.chdir(clone)
    monkeypatch.setenv("LOG_ARCHIVER_LOGS_DIR", str(clone / "logs"))
    target = tmp_path / "elsewhere"
    target.mkdir()
    result = run_cli("restore", "7", "--to", target, "--file", "7-build.log")
    assert result.exit_code == 0, result.stdout
    assert result.json["restored"] == [BIG]
    assert files_under(target) == [BIG]
    assert (target / BIG).read_bytes() == logs[BIG]


def test_other_content_is_kept_unless_forced(archived, run_cli):
    place, logs = archived
    mine = place.logs / SMALL
    mine.parent.mkdir(parents=True, exist_ok=True)
    mine.write_bytes(b"my own notes\n")
    result = run_cli("restore", "7", "--file", SMALL)
    assert result.exit_code == 3, result.stdout
    assert result.json["kept"][0]["local_path"] == SMALL
    assert mine.read_bytes() == b"my own notes\n"
    forced = run_cli("restore", "7", "--file", SMALL, "--force")
    assert forced.exit_code == 0 and forced.json["restored"] == [SMALL]
    assert mine.read_bytes() == logs[SMALL]


@pytest.mark.parametrize("name", [BIG, SMALL])
def test_a_flipped_byte_restores_nothing(archived, run_cli, name):
    place, logs = archived
    log = place.log(name)
    place.flip(log["remote_path"], 200)
    result = run_cli("restore", "7", "--file", name)
    assert result.exit_code == 1, result.stdout
    error = result.json["errors"][0]
    assert error["type"] == "integrity" and log["remote_path"] in error["message"]
    assert not (place.logs / name).exists()
    assert not [p for p in files_under(place.logs) if ".la-restore-" in p]


@pytest.mark.parametrize("hostile", ["../../x", "/tmp/evil-restore", "builds/../../y",
                                     "builds/./z"])
def test_names_that_escape_the_folder_are_refused(archived, run_cli, tmp_path, hostile):
    place, logs = archived
    index_path = place.logs / ".archive-index.json"
    document = json.loads(index_path.read_text())
    for log in document["archives"][0]["logs"]:
        if log["local_path"] == SMALL:
            log["local_path"] = hostile
    index_path.write_text(json.dumps(document, indent=2))
    target = tmp_path / "target"
    target.mkdir()
    before = set(os.listdir(tmp_path))
    result = run_cli("restore", "7", "--to", target)
    assert result.exit_code == 1, result.stdout
    doc = result.json
    failed = {item["local_path"] for item in doc["failed"]}
    assert failed == {hostile}
    assert doc["restored"] == [BIG]  # the sound log is still restored
    assert files_under(target) == [BIG]
    assert set(os.listdir(tmp_path)) == before
    assert not os.path.exists("/tmp/evil-restore")


def test_a_symlink_in_the_target_is_not_followed_out(archived, run_cli, tmp_path):
    place, logs = archived
    target, outside = tmp_path / "target", tmp_path / "outside"
    target.mkdir()
    outside.mkdir()
    (target / "builds").symlink_to(outside)
    result = run_cli("restore", "7", "--to", target, "--file", BIG)
    assert result.exit_code == 1, result.stdout
    assert list(outside.iterdir()) == []

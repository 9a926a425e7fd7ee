"""A reindex finds a gzip copy's block table from the object's tail, so a rebuilt entry
still reads line ranges by block; a copy without a table is still read whole."""

from __future__ import annotations

import gzip
import hashlib

from log_archiver.storage.local import LocalStore
from retrieve_helpers import BIG, SMALL, Place, lines_of, run_raw, write_logs


def test_reindex_recovers_the_block_table(workspace, tmp_path, run_cli):
    place = Place("file", workspace, tmp_path / "store")
    logs = write_logs(place)
    assert run_cli("archive", "7", "--no-commit", "-q").exit_code == 0
    before = place.log(BIG)["blocks"]
    (place.logs / ".archive-index.json").unlink()
    result = run_cli("archive", "7", "--reindex-only", "--no-commit")
    assert result.exit_code == 0, result.stdout
    assert place.log(BIG)["blocks"] == before
    assert "blocks" not in place.log(SMALL)
    lines = run_raw("read", "7", BIG, "--lines", "70000:70002")
    assert lines.stdout == b"".join(lines_of(logs[BIG])[69999:70002])
    assert lines.envelope["source"] == "blocks"


def test_a_copy_without_a_table_is_read_whole(workspace, tmp_path, run_cli):
    """An object written before tables: plain concatenated gzip, no ``blocks`` field."""
    place = Place("file", workspace, tmp_path / "store")
    logs = write_logs(place)
    assert run_cli("archive", "7", "--no-commit", "-q").exit_code == 0
    log = place.log(BIG)
    old_style = gzip.compress(logs[BIG], mtime=0)
    source = tmp_path / "old-style.gz"
    source.write_bytes(old_style)
    LocalStore(place.store_root).put(log["remote_path"], source, overwrite=True,
                                     sha256=hashlib.sha256(old_style).hexdigest(),
                                     size=len(old_style))
    (place.logs / ".archive-index.json").unlink()
    assert run_cli("archive", "7", "--reindex-only", "--no-commit").exit_code == 0
    assert "blocks" not in place.log(BIG)
    whole = run_raw("read", "7", BIG)
    assert whole.stdout == logs[BIG] and whole.envelope["source"] == "object"
    some = run_raw("read", "7", BIG, "--lines", "33000:33001")
    assert some.stdout == b"".join(lines_of(logs[BIG])[32999:33001])


def test_a_zstd_copy_is_read_whole_and_by_lines(workspace, tmp_path, run_cli, monkeypatch):
    monkeypatch.setenv("LOG_ARCHIVER_COMPRESSION", "zstd")
    place = Place("file", workspace, tmp_path / "store")
    logs = write_logs(place)
    assert run_cli("archive", "7", "--no-commit", "-q").exit_code == 0
    log = place.log(BIG)
    assert log["compression"] == "zstd" and "blocks" not in log
    whole = run_raw("read", "7", BIG)
    assert whole.stdout == logs[BIG] and whole.envelope["source"] == "object"
    lines = lines_of(logs[BIG])
    some = run_raw("read", "7", BIG, "--lines", f"{len(lines) - 1}:")
    assert some.stdout == b"".join(lines[-2:])
    place.flip(log["remote_path"], 50)
    damaged = run_raw("read", "7", BIG)
    assert damaged.exit_code == 1 and damaged.stdout == b""
    assert damaged.envelope["errors"][0]["type"] == "integrity"

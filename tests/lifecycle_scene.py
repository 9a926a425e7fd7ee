"""A scene for the lifecycle tests: archived issues of every kind, aged, with retention."""

from __future__ import annotations

import json
from pathlib import Path

from log_archiver.index.file import ArchiveIndex
from log_archiver.util.samples import write_sample_logs

OLD = "2020-01-01T00:00:00Z"


def index_of(root: Path) -> ArchiveIndex:
    return ArchiveIndex(root / "logs" / ".archive-index.json")


def set_retention(root: Path, retention: dict | None) -> None:
    path = root / ".log-archiver.json"
    data = json.loads(path.read_text()) if path.exists() else {"logs_dir": "logs"}
    data["retention"] = retention
    path.write_text(json.dumps(data))


def archive(run_cli, root: Path, issue: int, *, seed: int = 0) -> dict:
    write_sample_logs(root / "logs", issue, big=3000, small=2000, seed=seed or issue)
    result = run_cli("archive", str(issue), "-q")
    assert result.exit_code == 0, result.stdout
    return result.json


def age(root: Path, *issues: int, at: str = OLD) -> None:
    with index_of(root).transaction() as txn:
        for issue in issues:
            txn.edit(issue)["archived_at"] = at


def keys_of(root: Path, *issues: int) -> set[str]:
    """Every key the index names for ``issues`` (logs and kept objects)."""
    found = set()
    for entry in index_of(root).read()["archives"]:
        if entry["issue_number"] in issues:
            found |= {log["remote_path"] for log in entry["logs"]}
            found |= {kept["remote_path"] for kept in entry.get("kept_objects", [])}
    return found


def build(run_cli, root: Path) -> dict:
    """Issues 11 (old: due), 12 (old, held), 13 (old, partial), 14 (old, pending: prepared,
    never uploaded), 15 (recent: not due); retention default 1y."""
    set_retention(root, {"default": "1y", "by_type": {"session": "forever"}})
    for issue in (11, 12, 13, 15):
        archive(run_cli, root, issue)
    write_sample_logs(root / "logs", 14, big=3000, small=2000, seed=14)
    assert run_cli("prepare-upload", "14", "-q").exit_code == 0
    age(root, 11, 12, 13, 14)
    assert run_cli("hold", "12", "--reason", "litigation hold 2025-17", "-q").exit_code == 0
    assert run_cli("mark-partial-archive", "13", "upload interrupted", "-q").exit_code == 0
    return {"due": {k for k in keys_of(root, 11) if "/session-" not in k}}

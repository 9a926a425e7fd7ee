"""metrics: the exposition parses with prometheus-client's own parser, and every figure
is what the index and the audit trail say (computed again here, by hand)."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime

from prometheus_client.parser import text_string_to_metric_families

from log_archiver.metrics.exposition import figures_of, render
from log_archiver.util.samples import write_sample_logs

STORED = {"uploaded", "verified", "cleaned"}


def samples(text: str) -> dict[tuple[str, tuple], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def seconds(stamp: str) -> float:
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()


def test_metrics_match_the_index_and_the_audit_trail(workspace, run_cli, tmp_path):
    for issue in (7, 8, 9):
        write_sample_logs(workspace / "logs", issue, seed=issue)
        assert run_cli("archive", issue, "--no-commit").exit_code == 0
    assert run_cli("mark-partial-archive", 8, "comment not posted").exit_code == 0
    os.unlink(tmp_path / "store" / json.loads(
        (workspace / "logs/.archive-index.json").read_text())["archives"][0]["logs"][0][
        "remote_path"])
    assert run_cli("verify").exit_code == 1          # failed: not a success
    assert run_cli("verify", "8").exit_code == 0     # this one is
    result = run_cli("metrics")
    assert result.exit_code == 0, result.stdout
    got = samples(result.json["exposition"])

    index = json.loads((workspace / "logs/.archive-index.json").read_text())
    lines = run_cli("audit").json["lines"]
    logs = [log for entry in index["archives"] for log in entry["logs"]]
    stored = [log for log in logs if log["upload_status"] in STORED]
    partial = sum(e["partial_archive"] or not e["upload_complete"] for e in index["archives"])
    assert partial == 1
    assert got[("log_archiver_archives", (("state", "partial"),))] == 1
    assert got[("log_archiver_archives", (("state", "complete"),))] == 2
    assert got[("log_archiver_archives", (("state", "held"),))] == 0
    for state, kind in {(log["upload_status"], log["type"]) for log in logs}:
        expected = sum(1 for log in logs if (log["upload_status"], log["type"]) == (state, kind))
        assert got[("log_archiver_logs", (("state", state), ("type", kind)))] == expected
    assert sum(v for (name, _), v in got.items() if name == "log_archiver_logs") == len(logs)
    size = sum(log["size_bytes"] for log in stored)
    raw = sum(log["original_size_bytes"] for log in stored)
    assert got[("log_archiver_stored_bytes", ())] == size
    assert got[("log_archiver_original_bytes", ())] == raw
    assert abs(got[("log_archiver_storage_efficiency_ratio", ())] - size / raw) < 1e-6
    assert got[("log_archiver_held_archives", ())] == 0
    last_archive = max(seconds(line["time"]) for line in lines if line["op"] == "archive")
    ok_verify = [line for line in lines if line["op"] == "verify" and line["outcome"] == "ok"]
    assert len(ok_verify) == 1
    assert got[("log_archiver_last_success_timestamp_seconds",
                (("operation", "archive"),))] == last_archive
    assert got[("log_archiver_last_success_timestamp_seconds",
                (("operation", "verify"),))] == seconds(ok_verify[0]["time"])
    assert ("log_archiver_last_success_timestamp_seconds", (("operation", "gc"),)) not in got
    assert got[("log_archiver_audit_failures", (("operation", "verify"),))] == 1
    assert got[("log_archiver_audit_skipped_lines", ())] == 0
    figures = result.json["figures"]
    assert figures["stored_bytes"] == size and figures["archives"]["partial"] == 1


def test_textfile_is_written_whole_by_a_rename(workspace, run_cli, tmp_path):
    write_sample_logs(workspace / "logs", 7)
    assert run_cli("archive", 7, "--no-commit").exit_code == 0
    folder = tmp_path / "textfile"
    folder.mkdir()
    target = folder / "log_archiver.prom"
    target.write_text("old contents\n")
    inode = target.stat().st_ino
    result = run_cli("metrics", "--textfile", target)
    assert result.exit_code == 0, result.stdout
    assert target.read_text() == result.json["exposition"]
    assert target.stat().st_ino != inode  # a new file renamed over, never rewritten
    assert sorted(p.name for p in folder.iterdir()) == ["log_archiver.prom"]
    assert samples(target.read_text())[("log_archiver_archives", (("state", "complete"),))] == 1
    missing = run_cli("metrics", "--textfile", tmp_path / "nowhere" / "x.prom")
    assert missing.exit_code == 2 and "nowhere" in missing.json["errors"][0]["message"]


def test_held_and_expired_entries_are_counted(tmp_path):
    def entry(issue, statuses, **extra):
        logs = [{"upload_status": s, "type": "build", "size_bytes": 10,
                 "original_size_bytes": 40} for s in statuses]
        return {"issue_number": issue, "logs": logs, "partial_archive": False,
                "upload_complete": True, **extra}

    doc = {"archives": [entry(1, ["cleaned"], hold={"reason": "r", "by": "b", "at": "t"}),
                        entry(2, ["expired", "expired"]), entry(3, ["cleaned", "failed"]),
                        entry(4, ["lost"], partial_archive=True)]}
    trail = [{"time": "2026-01-01T00:00:00.000000Z", "op": "delete_object", "outcome": "ok"},
             {"time": "2026-01-02T00:00:00.000000Z", "op": "gc", "outcome": "partial"}]
    figures = figures_of(doc, trail)
    got = samples(render(figures, 2))
    assert got[("log_archiver_archives", (("state", "held"),))] == 1
    assert got[("log_archiver_archives", (("state", "expired"),))] == 1
    assert got[("log_archiver_held_archives", ())] == 1
    assert got[("log_archiver_failed_logs", (("state", "failed"),))] == 1
    assert got[("log_archiver_failed_logs", (("state", "lost"),))] == 1
    assert got[("log_archiver_stored_bytes", ())] == 20  # the two cleaned logs
    assert got[("log_archiver_last_success_timestamp_seconds", (("operation", "gc"),))] == \
        seconds("2026-01-01T00:00:00.000000Z")
    assert got[("log_archiver_audit_failures", (("operation", "gc"),))] == 1
    assert got[("log_archiver_audit_skipped_lines", ())] == 2

"""A resumed batch and the breaker it shares with its issues: a log that appeared after the
killed run is archived, and a trial issue that never used the store does not keep the
breaker shut."""

from __future__ import annotations

import json

import pytest

from log_archiver.errors import StorageTransientError
from log_archiver.util.samples import log_text, write_sample_logs

INDEX = "logs/.archive-index.json"
CHECKPOINT = "logs/.archive-index.json.batch"


@pytest.fixture(autouse=True)
def no_retry_delays(monkeypatch):
    monkeypatch.setenv("LOG_ARCHIVER_RETRY_DELAY_SCALE", "0")


def _index(workspace) -> dict:
    return {e["issue_number"]: e for e in json.loads((workspace / INDEX).read_text())["archives"]}


def _killed_run_finished(workspace, issues: list[int], done: dict[int, str]) -> None:
    """The checkpoint a batch of ``issues`` leaves when killed once ``done`` finished."""
    (workspace / CHECKPOINT).write_text(json.dumps({
        "kind": "log-archiver batch checkpoint", "version": 1,
        "key": f"issues {','.join(map(str, sorted(issues)))} reason=manual force=False "
               "retry=False",
        "started_at": "2025-01-01T00:00:00Z", "planned": issues, "skipped": [],
        "github": {}, "done": {str(n): status for n, status in done.items()}}))


def test_a_resumed_batch_archives_a_log_that_appeared_after_the_killed_run(workspace,
                                                                           run_cli):
    for issue in (3, 5):
        write_sample_logs(workspace / "logs", issue, big=20_000, small=2_000, seed=issue)
    assert run_cli("archive", "3").exit_code == 0  # what the killed run finished
    _killed_run_finished(workspace, [3, 5], {3: "ok"})
    late = workspace / "logs" / "sessions" / "session-3-2025-01-17.md"
    late.write_bytes(log_text(3_000, 77))  # written after the run was killed

    result = run_cli("archive", "3", "5")
    assert result.exit_code == 0, result.stdout + result.stderr
    by_issue = {r["issue_number"]: r for r in result.json["issues"]}
    assert by_issue[3]["status"] == "ok" and not by_issue[3].get("resumed")
    assert by_issue[3]["new_logs"] == ["sessions/session-3-2025-01-17.md"]
    entry = _index(workspace)[3]
    assert "sessions/session-3-2025-01-17.md" in {log["local_path"] for log in entry["logs"]}
    assert entry["upload_complete"] and not late.exists()  # stored, verified, cleaned


def test_a_resumed_issue_with_nothing_new_is_still_skipped(workspace, run_cli):
    for issue in (3, 5):
        write_sample_logs(workspace / "logs", issue, big=20_000, small=2_000, seed=issue)
    assert run_cli("archive", "3").exit_code == 0
    _killed_run_finished(workspace, [3, 5], {3: "ok"})
    result = run_cli("archive", "3", "5")
    assert result.exit_code == 0, result.stdout
    by_issue = {r["issue_number"]: r for r in result.json["issues"]}
    assert by_issue[3]["status"] == "noop" and by_issue[3]["resumed"] is True
    assert by_issue[5]["status"] == "ok"


def test_a_trial_issue_that_never_used_the_store_lets_the_next_issue_try(workspace):
    from log_archiver.config import load_config
    from log_archiver.queue.batch import archive_batch
    from log_archiver.queue.breaker import CircuitBreaker
    from log_archiver.repository import Repository

    write_sample_logs(workspace / "logs", 9, big=20_000, small=2_000)
    now = [1000.0]
    breaker = CircuitBreaker(1, 10, clock=lambda: now[0])
    breaker.record_failure(StorageTransientError("connection refused", ""))
    now[0] = 1011  # the cooldown has passed: the next issue is the trial
    repo = Repository(config=load_config().with_overrides(commit=False))
    # issue 8 has no logs: a noop that never touches the store, then issue 9
    payload = archive_batch(repo, [8, 9], breaker=breaker, checkpoint=None)
    assert [(r["issue_number"], r["status"]) for r in payload["issues"]] == [
        (8, "noop"), (9, "ok")]
    assert payload["breaker"]["open"] is False

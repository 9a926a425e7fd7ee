"""What is read back from the broker is hostile until checked, on both brokers: bad job
records are skipped by every reader, a message past the largest issue number is set aside;
a lease owner in another PID namespace is never judged by kill(); `queue retry` keeps to
queue.max_pending as enqueue does."""

from __future__ import annotations

import json
import subprocess
import sys

from log_archiver.model.issues import MAX_ISSUE
from log_archiver.queue import jobs
from log_archiver.util.samples import write_sample_logs

HOSTILE = [
    {"id": "nostate", "issue": 5, "reason": "manual"},
    {"id": "abc", "issue": -1, "reason": "manual", "state": "pending"},
    {"id": "abd", "issue": True, "reason": "manual", "state": "pending"},
    {"id": "ab-c", "issue": 5, "reason": "manual", "state": "pending"},
    {"id": "abe", "issue": MAX_ISSUE + 1, "reason": "manual", "state": "pending"},
    {"id": "abf", "issue": 5, "reason": "manual", "state": "exploded"},
    {"id": "abg", "issue": 5, "reason": "manual", "state": "pending", "attempts": "x"},
    {"id": "abh", "issue": 5, "reason": "manual", "state": "pending",
     "enqueued_at": "yesterday"},
    {"id": "abi", "issue": 5, "reason": "nope", "state": "running"},
    {"id": "abj", "issue": 5, "reason": "manual", "state": "failed", "error": "boom"},
    {"id": "unreadable-12", "issue": 5, "reason": "manual", "state": "pending"},
    ["not", "a", "record"],
]


def _broker():
    from log_archiver.config import load_config
    from log_archiver.queue.broker import open_broker

    return open_broker(load_config())


def _status(run_cli) -> dict:
    result = run_cli("queue", "status")
    assert result.exit_code == 0, result.stdout + result.stderr
    return result.json


def test_bad_job_records_are_skipped_by_every_reader(backend, workspace, run_cli):
    write_sample_logs(workspace / "logs", 7, big=20_000, small=2_000)
    job = run_cli("enqueue", "7").json["jobs"][0]["id"]
    broker = _broker()
    for n, bad in enumerate(HOSTILE):  # written by whoever can write the queue
        key = bad["id"] if isinstance(bad, dict) else f"bad{n}"
        broker.storage.put_data(f"job:{key}", json.dumps(bad).encode())
    assert [r["id"] for r in broker.records()] == [job]
    assert broker.get_record("nostate") is None
    for _ in range(2):  # each look at the queue, as every worker's main loop does
        assert jobs.recover(broker) == []
    assert broker.waiting() == 1  # nothing was sent for them

    before = _status(run_cli)
    assert before["counts"] == {"pending": 1, "running": 0, "failed": 0, "done": 0}
    assert before["jobs_total"] == 1
    assert before["records_ignored"] == len(HOSTILE)
    worked = run_cli("worker", "--once")
    assert worked.exit_code == 0, worked.stdout + worked.stderr
    assert worked.json["counts"] == {"done": 1}
    after = _status(run_cli)
    assert after["counts"] == {"pending": 0, "running": 0, "failed": 0, "done": 1}
    assert after["jobs_total"] == 1 and after["waiting_messages"] == 0  # nothing grew


def test_a_message_past_the_largest_issue_number_is_set_aside(backend, workspace, run_cli):
    from log_archiver.queue.broker import UnreadableMessage
    from log_archiver.queue.sqlite_enqueue import message_bytes

    broker = _broker()
    broker.storage.enqueue(message_bytes("toobig", MAX_ISSUE + 1, "manual"), None)
    broker.storage.enqueue(message_bytes("largest", MAX_ISSUE, "manual"), None)
    assert isinstance(broker.take(), UnreadableMessage)
    assert broker.take().args == ("largest", MAX_ISSUE, "manual")

    broker.storage.enqueue(message_bytes("toobig", MAX_ISSUE + 1, "manual"), None)
    worked = run_cli("worker", "--once")
    assert [(j["outcome"], j["error"]["type"]) for j in worked.json["jobs"]] == [
        ("failed", "unreadable_message")]
    status = _status(run_cli)  # the record of what was set aside stays visible
    assert status["counts"]["failed"] == 1
    assert status["jobs"][0]["id"].startswith("unreadable-")


def test_a_lease_owner_in_another_pid_namespace_is_never_judged_by_kill(unshare, workspace):
    from log_archiver.queue.leases import HOST, owner_gone

    inside = subprocess.run(  # a worker in another container on this kernel
        [unshare, "-rpf", sys.executable, "-c",
         "from log_archiver.queue.leases import HOST; print(HOST)"],
        capture_output=True, text=True, timeout=60)
    assert inside.returncode == 0, inside.stderr
    other_host = inside.stdout.strip()
    assert other_host.split("/")[:2] == HOST.split("/")[:2]  # same host name and boot
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    assert owner_gone(f"{HOST}|{dead}|abc")  # in this namespace, the PID is judged
    assert not owner_gone(f"{other_host}|{dead}|abc")  # there, it means another process

    leases = _broker().leases
    owner = f"{other_host}|{dead}|abc"
    assert leases.acquire("issue:5", owner, ttl=60)
    assert leases.holder("issue:5") == owner
    assert not leases.acquire("issue:5", f"{HOST}|1|mine", ttl=60)


def test_a_retry_by_hand_puts_every_failed_job_back_past_the_bound_new_work_is_refused(
        backend, workspace, run_cli, monkeypatch):
    monkeypatch.setenv("LOG_ARCHIVER_QUEUE_MAX_PENDING", "3")
    for issue in (1, 2, 3):
        write_sample_logs(workspace / "logs", issue, big=3_000, small=1_000, seed=issue)
    run_cli("enqueue", "1", "2", "3", "--reason", "issue_closed")  # no GitHub known: fail
    assert run_cli("worker", "--once").json["counts"] == {"failed": 3}
    assert run_cli("enqueue", "4").exit_code == 0

    retried = run_cli("queue", "retry", "--all-failed")  # 1 waiting + 3 > 3: accepted once
    assert retried.exit_code == 0, retried.stdout
    after = _status(run_cli)
    assert after["counts"] == {"pending": 4, "running": 0, "failed": 0, "done": 0}
    assert after["waiting_messages"] == 4
    refused = run_cli("enqueue", "5")  # new work still meets the bound
    assert refused.exit_code == 1 and refused.json["errors"][0]["type"] == "queue_full"
    assert _status(run_cli)["waiting_messages"] == 4

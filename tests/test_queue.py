"""The job queue on both brokers: enqueue, worker --once, status, retry, purge, the bound,
hostile queue URLs and messages."""

from __future__ import annotations

import json

import pytest

from log_archiver.util.samples import write_sample_logs


def _issues_with_logs(workspace, *issues):
    for n, issue in enumerate(issues):
        write_sample_logs(workspace / "logs", issue, big=30_000, small=2_000, seed=n)


def _status(run_cli) -> dict:
    result = run_cli("queue", "status")
    assert result.exit_code == 0, result.stdout + result.stderr
    return result.json


def test_enqueue_then_a_worker_archives_each_job(backend, workspace, run_cli):
    _issues_with_logs(workspace, 12, 123)
    queued = run_cli("enqueue", "12", "123", "--reason", "manual")
    assert queued.exit_code == 0, queued.stdout
    jobs = queued.json["jobs"]
    assert [job["issue"] for job in jobs] == [12, 123] and len({j["id"] for j in jobs}) == 2
    assert queued.json["queue_url"].startswith(backend)
    before = _status(run_cli)
    assert before["counts"] == {"pending": 2, "running": 0, "failed": 0, "done": 0}
    assert before["oldest_age_seconds"]["pending"] >= 0

    worked = run_cli("worker", "--once")
    assert worked.exit_code == 0, worked.stdout + worked.stderr
    assert worked.json["counts"] == {"done": 2}
    assert {(j["job"], j["status"]) for j in worked.json["jobs"]} == {
        (job["id"], "ok") for job in jobs}
    index = json.loads((workspace / "logs" / ".archive-index.json").read_text())
    assert sorted(e["issue_number"] for e in index["archives"]) == [12, 123]
    assert all(e["upload_complete"] for e in index["archives"])

    after = _status(run_cli)
    assert after["counts"] == {"pending": 0, "running": 0, "failed": 0, "done": 2}
    assert {job["state"] for job in after["jobs"]} == {"done"}
    purged = run_cli("queue", "purge", "--done")
    assert purged.exit_code == 0 and len(purged.json["jobs"]) == 2
    assert _status(run_cli)["jobs_total"] == 0
    assert run_cli("queue", "purge", "--done").json["status"] == "noop"


def test_enqueue_past_the_bound_is_refused_and_changes_nothing(backend, workspace, run_cli,
                                                               monkeypatch):
    monkeypatch.setenv("LOG_ARCHIVER_QUEUE_MAX_PENDING", "3")
    first = run_cli("enqueue", "1", "2")
    assert first.exit_code == 0
    before = _status(run_cli)

    refused = run_cli("enqueue", "3", "4")
    assert refused.exit_code == 1
    assert refused.json["status"] == "error"
    error = refused.json["errors"][0]
    assert error["type"] == "queue_full" and "max_pending=3" in error["message"]
    assert "nothing was added" in error["message"]
    after = _status(run_cli)
    assert after["counts"] == before["counts"] == {"pending": 2, "running": 0, "failed": 0,
                                                   "done": 0}
    assert [j["id"] for j in after["jobs"]] == [j["id"] for j in before["jobs"]]
    assert after["waiting_messages"] == 2

    assert run_cli("enqueue", "3").exit_code == 0  # up to the bound itself
    assert run_cli("enqueue", "4").exit_code == 1


def test_a_failed_job_stays_visible_and_retry_completes_it(backend, workspace, run_cli,
                                                           monkeypatch):
    _issues_with_logs(workspace, 7)
    changed = workspace / "logs" / "builds" / "7-build.log"
    run_cli("enqueue", "7")
    assert run_cli("worker", "--once").json["counts"] == {"done": 1}
    changed.write_text("rewritten after it was archived\n")  # a permanent problem
    job = run_cli("enqueue", "7").json["jobs"][0]["id"]
    worked = run_cli("worker", "--once")
    assert worked.exit_code == 3 and worked.json["counts"] == {"failed": 1}
    failed = [j for j in _status(run_cli)["jobs"] if j["id"] == job][0]
    assert failed["state"] == "failed" and failed["attempts"] == 1  # permanent: no retry
    assert "changed since they were archived" in failed["error"]["message"]
    assert "--force" in failed["error"]["hint"]

    wrong = run_cli("queue", "retry", "nosuchjob")
    assert wrong.exit_code == 2 and "nosuchjob" in wrong.json["errors"][0]["message"]
    changed.unlink()  # the cause is fixed
    retried = run_cli("queue", "retry", job)
    assert retried.exit_code == 0 and retried.json["jobs"] == [{"id": job, "issue": 7}]
    assert run_cli("queue", "retry", job).json["errors"][0]["type"] == "job_state"
    assert run_cli("worker", "--once").json["counts"] == {"done": 1}
    assert _status(run_cli)["counts"]["failed"] == 0


@pytest.mark.parametrize("url", [
    "http://example.com/queue", "sqlite://", "sqlite:///", "redis://", "redis://host:99999/0",
    "redis://host:6379/0?x=1", "sqlite:///x\n.db", "mysql://db/queue",
])
def test_a_bad_queue_url_is_refused_by_name(workspace, run_cli, monkeypatch, url):
    monkeypatch.setenv("LOG_ARCHIVER_QUEUE_URL", url)
    result = run_cli("enqueue", "5")
    assert result.exit_code == 2, result.stdout
    assert "queue URL" in result.json["errors"][0]["message"]
    assert "sqlite:///" in result.json["errors"][0]["hint"]


def test_credentials_in_a_redis_url_are_refused_without_repeating_them(workspace, run_cli,
                                                                        monkeypatch):
    monkeypatch.setenv("LOG_ARCHIVER_QUEUE_URL", "redis://:s3cret-pw@db.example:6379/0")
    result = run_cli("enqueue", "5")
    assert result.exit_code == 2
    assert "s3cret" not in result.stdout + result.stderr
    assert "LOG_ARCHIVER_REDIS_PASSWORD" in result.json["errors"][0]["hint"]


def test_a_relative_sqlite_path_stays_in_the_repository(workspace, run_cli, monkeypatch):
    (workspace / ".log-archiver.json").write_text(json.dumps(
        {"queue": {"url": "sqlite:///var/jobs.sqlite3", "max_pending": 10}}))
    done = run_cli("enqueue", "5")
    assert done.exit_code == 0, done.stdout
    assert (workspace / "var" / "jobs.sqlite3").is_file()
    assert done.json["max_pending"] == 10
    (workspace / ".log-archiver.json").write_text(json.dumps(
        {"queue": {"url": "sqlite:///../outside.sqlite3"}}))
    refused = run_cli("enqueue", "5")
    assert refused.exit_code == 2 and "'..'" in refused.json["errors"][0]["message"]
    assert not (workspace.parent / "outside.sqlite3").exists()


def test_a_redis_that_is_down_is_a_clear_error(workspace, run_cli, monkeypatch, closed_port):
    monkeypatch.setenv("LOG_ARCHIVER_QUEUE_URL", f"redis://127.0.0.1:{closed_port}/0")
    result = run_cli("enqueue", "5")
    assert result.exit_code == 1
    assert result.json["errors"][0]["type"] == "queue_unavailable"
    assert "redis-server" in result.json["errors"][0]["hint"]


def test_a_foreign_message_is_set_aside_never_unpickled(workspace, run_cli, monkeypatch,
                                                        redis_url, redis_server, tmp_path):
    import pickle

    class Boom:
        def __reduce__(self):
            return (open, (str(tmp_path / "pwned"), "w"))

    monkeypatch.setenv("LOG_ARCHIVER_QUEUE_URL", redis_url)
    _issues_with_logs(workspace, 9)
    run_cli("enqueue", "9")
    redis_server.client().lpush("huey.redis.log_archiver", pickle.dumps(Boom()))
    worked = run_cli("worker", "--once")
    assert worked.exit_code == 3
    outcomes = sorted((j["outcome"], (j["error"] or {}).get("type")) for j in worked.json["jobs"])
    assert outcomes == [("done", None), ("failed", "unreadable_message")]
    assert not (tmp_path / "pwned").exists()


def _broker():
    from log_archiver.config import load_config
    from log_archiver.queue.broker import open_broker

    return open_broker(load_config())


def test_leases_expire_for_other_machines_and_free_at_once_for_dead_local_workers(
        backend, workspace):
    import subprocess
    import sys
    import time

    from log_archiver.queue.leases import HOST, new_owner

    leases = _broker().leases
    me, other_machine = new_owner(), "elsewhere/boot|4242|abc"
    assert leases.acquire("issue:5", other_machine, ttl=2.5)  # outlasts a slow fsync
    assert not leases.acquire("issue:5", me, ttl=5)
    assert leases.holder("issue:5") == other_machine
    assert not leases.renew("issue:5", me, ttl=5)
    leases.release("issue:5", me)  # not mine: nothing happens
    assert leases.holder("issue:5") == other_machine
    time.sleep(2.7)
    assert leases.acquire("issue:5", me, ttl=5)  # expired: another machine's worker died

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    assert leases.acquire("issue:6", f"{HOST}|{dead}|xyz", ttl=600)
    assert leases.holder("issue:6") is None  # its process is gone: free now, not in 10 min
    assert leases.acquire("issue:6", me, ttl=5)
    assert leases.renew("issue:6", me, ttl=5)
    leases.release("issue:6", me)
    assert leases.holder("issue:6") is None


def test_a_job_taken_by_a_worker_that_failed_before_starting_it_is_not_lost(
        backend, workspace, run_cli):
    _issues_with_logs(workspace, 8)
    job = run_cli("enqueue", "8").json["jobs"][0]["id"]
    broker = _broker()
    taken = broker.take()  # a worker took it, then its machine went away
    assert taken.id == job and broker.waiting() == 0
    worked = run_cli("worker", "--once")
    assert worked.exit_code == 0
    assert worked.json["recovered"] == [job]
    assert [(j["job"], j["outcome"]) for j in worked.json["jobs"]] == [(job, "done")]


def test_a_job_a_live_worker_is_just_taking_is_not_sent_twice(backend, workspace, run_cli):
    import threading

    from log_archiver.queue import jobs

    _issues_with_logs(workspace, 8)
    job = run_cli("enqueue", "8").json["jobs"][0]["id"]
    broker = _broker()
    assert broker.take().id == job  # a live worker took it and is about to start it

    def start():
        record = broker.get_record(job)
        record.update(state=jobs.RUNNING, worker="live")
        broker.put_record(record)
    starting = threading.Timer(0.1, start)
    starting.start()
    try:
        assert jobs.recover(broker) == []  # another worker's look at the queue meanwhile
    finally:
        starting.join()
    assert broker.waiting() == 0  # no second message of the job


def test_enqueue_loads_no_storage_git_github_or_redis_client(workspace):
    import subprocess
    import sys

    def imported() -> set[str]:
        done = subprocess.run([sys.executable, "-X", "importtime", "-m", "log_archiver",
                               "enqueue", "5", "-q"], capture_output=True, text=True)
        assert json.loads(done.stdout)["status"] == "ok", done.stdout
        return {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()
                if line.startswith("import time:")}

    first = imported()  # a new queue: huey makes its tables
    assert "huey" in first  # the check sees what is imported
    # a bare `redis` line is huey's import attempt, refused at once on the SQLite path
    heavy = {name for name in first - {"redis"}
             if name.split(".")[0] in ("boto3", "botocore", "git", "github", "redis")}
    assert not heavy, sorted(heavy)
    then = imported()
    assert "sqlite3" in then
    assert not {name for name in then if name.split(".")[0] in (
        "huey", "redis", "boto3", "botocore", "git", "github", "multiprocessing", "click",
        "dataclasses", "inspect", "traceback")}  # (a webhook waits for this process)


def test_the_direct_sqlite_enqueue_writes_what_huey_writes(workspace):
    from log_archiver.queue.sqlite_enqueue import message_bytes

    broker = _broker()
    ours = message_bytes("ab12", 5, "manual")
    assert ours == broker.huey.serialize_task(broker.new_message("ab12", 5, "manual"))
    broker.storage.enqueue(ours, None)
    taken = broker.take()
    assert (taken.id, taken.args) == ("ab12", ("ab12", 5, "manual"))


def test_racing_enqueuers_never_pass_the_bound(backend, workspace, run_cli, monkeypatch):
    import os
    import subprocess
    import sys

    monkeypatch.setenv("LOG_ARCHIVER_QUEUE_MAX_PENDING", "10")
    assert run_cli("enqueue", "1").exit_code == 0  # the queue exists
    racers = [subprocess.Popen([sys.executable, "-m", "log_archiver", "enqueue",
                                str(10 + 3 * n), str(11 + 3 * n), str(12 + 3 * n), "-q"],
                               stdout=subprocess.PIPE, text=True, env=dict(os.environ))
              for n in range(8)]
    results = [json.loads(racer.communicate(timeout=120)[0]) for racer in racers]
    accepted = [r for r in results if r["status"] == "ok"]
    assert len(accepted) == 3  # 1 + 3 * 3 = 10: the bound exactly, all or none each
    assert all(r["errors"][0]["type"] == "queue_full" for r in results if r not in accepted)
    status = _status(run_cli)
    assert status["counts"]["pending"] == status["waiting_messages"] == 10

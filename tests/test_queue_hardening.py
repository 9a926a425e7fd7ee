"""The worker under the review's cases, in this process on a real SQLite queue (and a
real redis-server where the lease is what is tested) and the real archive: two jobs of one
issue in one worker, a breaker trial that reports nothing, a store refusal that is no
outage, a lease lost mid-job, a slow repository build."""

from __future__ import annotations

import threading
import time

import pytest

from log_archiver.archive.pipeline import archive
from log_archiver.errors import StorageTransientError
from log_archiver.queue import jobs
from log_archiver.queue.breaker import CircuitBreaker
from log_archiver.util.samples import write_sample_logs


@pytest.fixture(autouse=True)
def no_retry_delays(monkeypatch):
    monkeypatch.setenv("LOG_ARCHIVER_RETRY_DELAY_SCALE", "0")


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def _broker():
    from log_archiver.config import load_config
    from log_archiver.queue.broker import open_broker

    return open_broker(load_config())


def _repository():
    from log_archiver.cli.options import build_repository

    return build_repository({"quiet": True, "logs_dir": None, "storage": None})


def _worker(broker, archive_call=archive, make_repository=_repository, **options):
    from log_archiver.queue.worker import Worker, WorkerOptions

    lines: list[str] = []
    worker = Worker(broker, make_repository, archive_call,
                    WorkerOptions(once=True, **options), threading.Event(), log=lines.append)
    return worker, lines


def _logs(workspace, *issues):
    for n, issue in enumerate(issues):
        write_sample_logs(workspace / "logs", issue, big=20_000, small=2_000, seed=n)


def _poll(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.02)


def test_two_jobs_of_one_issue_in_one_worker_never_archive_at_once(backend, workspace,
                                                                   run_cli):
    _logs(workspace, 5)
    ids = {job["id"] for job in run_cli("enqueue", "5", "5").json["jobs"]}
    guard = threading.Lock()
    active: list[int] = []
    peak: list[int] = []
    second = threading.Event()

    def archive_watched(repo, issue, **options):
        with guard:
            active.append(issue)
            peak.append(len(active))
            if len(active) > 1:
                second.set()
        try:
            second.wait(1.0)  # room for a second archive of the issue to begin meanwhile
            return archive(repo, issue, **options)
        finally:
            with guard:
                active.remove(issue)

    broker = _broker()
    worker, _ = _worker(broker, archive_watched, concurrency=2)
    summary = worker.run()
    assert max(peak) == 1, "two archives of issue #5 ran at once"
    finished = sorted((j["outcome"], j["status"]) for j in summary["jobs"]
                      if j["outcome"] != "deferred")
    assert finished == [("done", "noop"), ("done", "ok")]  # the second ran after the first
    assert any(j["outcome"] == "deferred" for j in summary["jobs"])
    assert {broker.get_record(job)["state"] for job in ids} == {jobs.DONE}
    assert broker.leases.holder("issue:5") is None


def test_a_breaker_trial_that_reports_nothing_expires_after_another_cooldown():
    clock = Clock()
    breaker = CircuitBreaker(2, 10, clock=clock)
    for _ in range(2):
        breaker.record_failure(StorageTransientError("connection refused", ""))
    clock.now = 1011
    assert breaker.allow()  # the trial, whose caller never says how it went
    assert not breaker.allow()
    clock.now = 1020
    assert not breaker.allow()  # still its turn
    clock.now = 1_000_000
    assert breaker.allow()  # a trial that never came back is not waited for for ever
    assert breaker.is_open


def test_a_trial_handed_back_lets_the_next_call_try():
    clock = Clock()
    breaker = CircuitBreaker(1, 10, clock=clock)
    breaker.record_failure(StorageTransientError("connection refused", ""))
    clock.now = 1011
    trial = breaker.admit()
    assert trial and not breaker.allow()
    breaker.release_trial(trial)
    assert breaker.admit() not in (None, trial)  # a new trial, at once
    breaker.release_trial(trial)  # an old trial's hand-back frees nothing
    assert not breaker.allow()
    closed = CircuitBreaker(1, 10, clock=clock)
    assert closed.admit() == 0 and closed.allow()


def test_a_trial_job_that_fails_for_another_reason_lets_the_next_job_try(workspace, run_cli):
    _logs(workspace, 8, 9)
    run_cli("enqueue", "8", "--reason", "issue_closed")  # no GitHub known: fails at once
    run_cli("enqueue", "9")
    worker, _ = _worker(_broker())
    clock = Clock()
    worker.breaker = CircuitBreaker(1, 10, clock=clock)
    worker.breaker.record_failure(StorageTransientError("connection refused", ""))
    clock.now = 1011  # the cooldown has passed: the next job is the trial
    summary = worker.run()
    outcomes = {j["issue"]: (j["outcome"], (j["error"] or {}).get("type"))
                for j in summary["jobs"]}
    assert outcomes == {8: ("failed", "trigger_not_met"), 9: ("done", None)}
    assert summary["breaker_open"] is False  # job 9's upload closed it


def test_a_store_that_refuses_one_key_is_not_a_store_that_is_down(workspace, run_cli,
                                                                   tmp_path):
    _logs(workspace, 6, 7)
    plan = run_cli("prepare-upload", "6").json
    build = next(f for f in plan["files"] if f["local_path"] == "builds/6-build.log")
    other = tmp_path / "store" / build["remote_path"]
    other.parent.mkdir(parents=True, exist_ok=True)
    other.write_bytes(b"another writer's bytes")
    run_cli("enqueue", "6", "7")
    worker, _ = _worker(_broker(), breaker_failures=1)
    summary = worker.run()
    outcomes = {j["issue"]: (j["outcome"], (j["error"] or {}).get("type"))
                for j in summary["jobs"]}
    assert outcomes == {6: ("failed", "storage_conflict"), 7: ("done", None)}
    assert summary["breaker_open"] is False
    assert other.read_bytes() == b"another writer's bytes"


def test_a_job_whose_lease_was_taken_meanwhile_leaves_the_new_holders_record(workspace,
                                                                             run_cli):
    _logs(workspace, 5)
    job = run_cli("enqueue", "5").json["jobs"][0]["id"]
    broker = _broker()
    began, go = threading.Event(), threading.Event()

    def archive_held(repo, issue, **options):
        began.set()
        go.wait(30)
        return archive(repo, issue, **options)

    worker, lines = _worker(broker, archive_held, lease_seconds=0.6)
    summaries: list[dict] = []
    runner = threading.Thread(target=lambda: summaries.append(worker.run()))
    runner.start()
    other = "elsewhere/boot|4242|other"
    try:
        assert began.wait(30)
        assert broker.leases.holder("issue:5") is not None
        # the worker stalled past its lease; another worker took the issue and the job
        with broker.storage.db(commit=True) as cursor:
            cursor.execute("update lease set owner = ? where name = 'issue:5'", (other,))
        record = broker.get_record(job)
        record.update(worker=other)
        broker.put_record(record)
        _poll(lambda: any("lost its lease" in line for line in lines), 10,
              "the worker says it lost the lease")
    finally:
        go.set()
        runner.join(60)
    assert summaries and not runner.is_alive()
    final = broker.get_record(job)
    assert (final["state"], final["worker"]) == (jobs.RUNNING, other)  # left to its holder
    assert broker.leases.holder("issue:5") == other
    [outcome] = summaries[0]["jobs"]
    assert outcome["job"] == job and outcome["status"] == "ok"


def test_a_slow_repository_build_never_lets_another_worker_send_the_job_again(workspace,
                                                                              run_cli):
    _logs(workspace, 8)
    job = run_cli("enqueue", "8").json["jobs"][0]["id"]
    broker, elsewhere = _broker(), _broker()
    seen: list[list] = []

    def build_slowly():
        seen.append(jobs.recover(elsewhere))  # another worker's look at the queue meanwhile
        return _repository()

    worker, _ = _worker(broker, make_repository=build_slowly)
    summary = worker.run()
    assert seen == [[]]
    assert [(j["job"], j["outcome"]) for j in summary["jobs"]] == [(job, "done")]
    assert broker.waiting() == 0

"""Two worker processes on one Redis queue: every job archived exactly once, and never two
archives of one issue at the same time (the per-issue lease in Redis)."""

from __future__ import annotations

import json
import os
import subprocess

from conftest import script
from log_archiver.util.samples import log_text
from log_archiver.util.schemas import violations


def _run(workspace, *args, env) -> dict:
    done = subprocess.run([*script("log-archiver"), *args], cwd=workspace, env=env,
                          capture_output=True, text=True, timeout=300)
    document = json.loads(done.stdout)
    assert violations(f"output/{document['command']}.json", document) == [], document
    return document


def _two_workers(workspace, env, *args) -> list[dict]:
    workers = [subprocess.Popen([*script("log-archiver"), "worker", "--once", *args],
                                cwd=workspace, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for _ in range(2)]
    documents = []
    for worker in workers:
        out, err = worker.communicate(timeout=600)
        assert worker.returncode == 0, err[-3000:]
        documents.append(json.loads(out))
        assert violations("output/worker.json", documents[-1]) == []
    return documents


def test_two_workers_archive_fifty_jobs_each_exactly_once(workspace, redis_url, tmp_path):
    env = {**os.environ, "LOG_ARCHIVER_QUEUE_URL": redis_url}
    issues = list(range(100, 150))
    for issue in issues:
        (workspace / "logs" / "builds").mkdir(exist_ok=True)
        (workspace / "logs" / "builds" / f"{issue}-build.log").write_bytes(
            log_text(3_000, issue))
    queued = _run(workspace, "enqueue", *map(str, issues), env=env)
    job_ids = {job["id"]: job["issue"] for job in queued["jobs"]}
    assert len(job_ids) == 50

    documents = _two_workers(workspace, env, "--concurrency", "2")
    done = [(job["job"], job["status"]) for doc in documents for job in doc["jobs"]
            if job["outcome"] == "done"]
    assert sorted(job for job, _ in done) == sorted(job_ids)  # each job once, none twice
    assert {status for _, status in done} == {"ok"}  # each one archived its issue
    assert all(doc["jobs"] for doc in documents), "both workers took jobs"
    mine = [{job["job"] for job in doc["jobs"] if job["outcome"] == "done"}
            for doc in documents]
    assert not mine[0] & mine[1]

    index = json.loads((workspace / "logs" / ".archive-index.json").read_text())
    assert sorted(e["issue_number"] for e in index["archives"]) == issues
    assert all(e["upload_complete"] and e["retry_count"] == 0 for e in index["archives"])
    stored = [p for p in (tmp_path / "store").rglob("*") if p.is_file()
              and not p.name.startswith(".")]
    assert len([p for p in stored if p.name.endswith("-build.log")]) == 50
    status = _run(workspace, "queue", "status", env=env)
    assert status["counts"] == {"pending": 0, "running": 0, "failed": 0, "done": 50}


def test_two_jobs_of_one_issue_never_run_at_once(workspace, redis_url):
    env = {**os.environ, "LOG_ARCHIVER_QUEUE_URL": redis_url,
           "LOG_ARCHIVER_TEST_JOB_PAUSE": "uploading:2"}
    (workspace / "logs" / "builds").mkdir()
    (workspace / "logs" / "builds" / "77-build.log").write_bytes(log_text(5_000, 1))
    _run(workspace, "enqueue", "77", "77", env=env)
    documents = _two_workers(workspace, env)
    outcomes = sorted((job["outcome"], job["status"]) for doc in documents
                      for job in doc["jobs"] if job["outcome"] != "deferred")
    assert outcomes == [("done", "noop"), ("done", "ok")]
    deferred = [job for doc in documents for job in doc["jobs"]
                if job["outcome"] == "deferred"]
    assert deferred, "the second job waited for the first one's lease"

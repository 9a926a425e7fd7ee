"""``enqueue`` on a SQLite queue in one transaction, without importing huey.

A webhook waits for ``enqueue``; huey's import alone (its consumer, multiprocessing) is a
third of the time budget. On SQLite the job is therefore written straight into huey's own
tables, in the exact bytes huey's storage would write (our JSON message, see
:mod:`.broker`): the bound is checked and every message and record added under one write
lock, fsynced once. The queue must exist (tables made by huey): if not, the caller opens
it through huey first. ``tests/test_queue.py`` checks that huey reads these messages.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

QUEUE_NAME = "log_archiver"  # = broker.QUEUE_NAME
TASK_STRING = "log_archiver.queue.broker.log_archiver.archive_issue"  # huey's registry name
RECORD_PREFIX = "job:"


def message_bytes(job_id: str, issue: int, reason: str) -> bytes:
    """The message huey's storage holds for a job (broker's JSON serializer, huey's
    Message fields in their order)."""
    return json.dumps({
        "id": job_id, "name": TASK_STRING, "eta": None, "retries": 0, "retry_delay": 0,
        "priority": None, "args": [job_id, issue, reason], "kwargs": {},
        "on_complete": None, "on_error": None, "expires": None, "expires_resolved": None,
        "timeout": None, "chord_config": None, "retry_backoff": 0}).encode()


def enqueue_sqlite(path: str, issues: list[int], reason: str, *, max_pending: int,
                   new_record, full_error) -> tuple[list[dict], int] | None:
    """The records added and the jobs now waiting; None when the queue does not exist
    yet. ``full_error(waiting)`` is the error raised past ``max_pending``."""
    if not Path(path).is_file():
        return None
    conn = sqlite3.connect(path, timeout=30, isolation_level=None)
    try:
        conn.execute("pragma synchronous=FULL")
        tables = {row[0] for row in conn.execute(
            "select name from sqlite_master where type = 'table'")}
        if not {"task", "schedule", "kv"} <= tables:
            return None
        conn.execute("begin immediate")
        try:
            waiting = sum(conn.execute(f"select count(*) from {table} where queue = ?",
                                       (QUEUE_NAME,)).fetchone()[0]
                          for table in ("task", "schedule"))
            if waiting + len(issues) > max_pending:
                raise full_error(waiting)
            added = []
            for issue in issues:
                job_id = os.urandom(16).hex()
                conn.execute("insert into task (queue, data, priority) values (?, ?, 0)",
                             (QUEUE_NAME, message_bytes(job_id, issue, reason)))
                record = new_record(job_id, issue, reason)
                conn.execute("insert or replace into kv (queue, key, value) values (?, ?, ?)",
                             (QUEUE_NAME, RECORD_PREFIX + job_id, json.dumps(record).encode()))
                added.append(record)
            conn.execute("commit")
        except BaseException:
            conn.execute("rollback")
            raise
        return added, waiting + len(added)
    finally:
        conn.close()

"""``enqueue`` on a SQLite queue in one transaction, without importing huey.

A webhook waits for ``enqueue``; huey's import alone (its consumer, multiprocessing) is a
third of the time budget. On SQLite the job is therefore written straight into huey's own
tables, in the exact bytes huey's storage would write (our JSON message, see
:mod:`.broker`): the bound is checked and every message and record added under one write
lock, fsynced once. The queue must exist (tables made by huey): if not, the caller opens
it through huey first. ``tests/test_queue.py`` checks that huey reads these messages.
``queue retry`` sends failed jobs again the same way, within the same bound.
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
    records = [new_record(os.urandom(16).hex(), issue, reason) for issue in issues]
    waiting = send_sqlite(path, records, max_pending=max_pending, full_error=full_error)
    return None if waiting is None else (records, waiting)


def send_sqlite(path: str, records: list[dict], *, max_pending: int,
                full_error) -> int | None:
    """Send each record's job and write the record, all of them or none (``full_error``
    raised past ``max_pending`` waiting jobs): the jobs now waiting, or None when the
    queue does not exist yet."""
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
            if waiting + len(records) > max_pending:
                raise full_error(waiting)
            for record in records:
                conn.execute("insert into task (queue, data, priority) values (?, ?, 0)",
                             (QUEUE_NAME, message_bytes(record["id"], record["issue"],
                                                        record["reason"])))
                conn.execute("insert or replace into kv (queue, key, value) values (?, ?, ?)",
                             (QUEUE_NAME, RECORD_PREFIX + record["id"],
                              json.dumps(record).encode()))
            conn.execute("commit")
        except BaseException:
            conn.execute("rollback")
            raise
        return waiting + len(records)
    finally:
        conn.close()

"""Jobs: one issue to archive, its record, and what people do with the queue.

A job's record (in the broker's key/value store, beside huey's messages) says where it
is: ``pending`` (a message waits in the queue or its schedule), ``running`` (a worker
holds its issue's lease), ``failed`` (kept with its error until ``queue retry``) or
``done``. The message is always written before the record, so a crash between the two
leaves a message the worker completes, never a record nothing will run.
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager

from log_archiver.errors import ArchiveError, UsageError

PENDING, RUNNING, FAILED, DONE = "pending", "running", "failed", "done"
STATES = (PENDING, RUNNING, FAILED, DONE)
REASONS = ("issue_closed", "pr_merged", "manual", "retention")
ENQUEUE_LEASE = "enqueue"
TAKING_SECONDS = 0.5  # a live worker marks a job it took running well within this


class QueueFullError(ArchiveError):
    type = "queue_full"
    retryable = True


class QueueUnavailableError(ArchiveError):
    type = "queue_unavailable"
    retryable = True


class JobStateError(ArchiveError):
    type = "job_state"


@contextmanager
def broker_errors(url: str):
    """The broker's own failures (Redis down, SQLite locked or unwritable), named."""
    import sqlite3

    try:
        yield
    except ArchiveError:
        raise
    except (sqlite3.Error, OSError) as error:
        raise QueueUnavailableError(f"the job queue {url} cannot be used: {error}",
                                    "check the queue's file and folder (queue.url) and try "
                                    "again") from error
    except Exception as error:
        if type(error).__module__.split(".")[0] != "redis":
            raise
        raise QueueUnavailableError(f"the job queue {url} cannot be reached: {error}",
                                    "start redis-server or fix queue.url, then try again"
                                    ) from error


def new_record(job_id: str, issue: int, reason: str) -> dict:
    return {"id": job_id, "issue": issue, "reason": reason, "state": PENDING,
            "enqueued_at": time.time(), "started_at": None, "finished_at": None,
            "attempts": 0, "worker": None, "error": None, "result_status": None,
            "note": None}


@contextmanager
def _enqueue_turn(broker, owner: str, wait: float = 10.0):
    """One enqueuer at a time checks the bound and adds its jobs (a strict bound)."""
    deadline = time.monotonic() + wait
    while not broker.leases.acquire(ENQUEUE_LEASE, owner, ttl=wait):
        if time.monotonic() > deadline:
            raise QueueUnavailableError(f"the job queue {broker.target.url} stayed busy for "
                                        f"{wait:.0f} s", "try again")
        time.sleep(0.002)
    try:
        yield
    finally:
        broker.leases.release(ENQUEUE_LEASE, owner)


def queue_full(waiting: int, count: int, max_pending: int) -> QueueFullError:
    return QueueFullError(
        f"the job queue is full: {waiting} job(s) wait and {count} more would pass "
        f"queue.max_pending={max_pending}; nothing was added",
        "let a worker drain it (`log-archiver worker --once`), see `log-archiver queue "
        "status`, or raise queue.max_pending in .log-archiver.json")


def _check_reason(reason: str) -> None:
    if reason not in REASONS:
        raise UsageError(f"reason {reason!r} is not one of {', '.join(REASONS)}",
                         "pass --reason issue_closed, pr_merged, manual or retention")


def enqueue_jobs(config, issues: list[int], reason: str) -> tuple[str, list[dict], int]:
    """``enqueue`` as the command runs it: the queue's URL, the records added and the
    jobs now waiting. On SQLite one transaction that never imports huey (a webhook
    waits for it); on Redis through huey's storage."""
    from log_archiver.queue.broker import open_broker, queue_target
    from log_archiver.queue.sqlite_enqueue import enqueue_sqlite

    _check_reason(reason)
    target = queue_target(config)
    max_pending = config.queue_max_pending
    with broker_errors(target.url):
        if target.kind == "sqlite":
            def full(waiting):
                return queue_full(waiting, len(issues), max_pending)

            for _ in range(2):
                done = enqueue_sqlite(target.location, issues, reason,
                                      max_pending=max_pending, new_record=new_record,
                                      full_error=full)
                if done is not None:
                    return target.url, *done
                open_broker(config).close()  # a new queue: huey makes its tables
            raise QueueUnavailableError(f"the job queue {target.url} has no tables after "
                                        "it was made", "check the file (queue.url)")
        broker = open_broker(config)
        added = enqueue(broker, issues, reason, max_pending=max_pending)
        return target.url, added, broker.waiting()


def enqueue(broker, issues: list[int], reason: str, *, max_pending: int) -> list[dict]:
    """Add one job per issue, all or none of them: past ``max_pending`` waiting jobs
    the queue is left as it was."""
    _check_reason(reason)
    # (an id as uuid4().hex, without importing uuid)
    added = [new_record(os.urandom(16).hex(), issue, reason) for issue in issues]
    _send_bounded(broker, added, max_pending)
    return added


def _send_bounded(broker, records: list[dict], max_pending: int | None) -> None:
    """Send each record's job, then write the record; all of them or none: past
    ``max_pending`` waiting jobs the queue is left as it was (no bound when None)."""
    from log_archiver.queue.leases import new_owner
    from log_archiver.queue.sqlite_enqueue import send_sqlite

    def full(waiting: int) -> QueueFullError:
        return queue_full(waiting, len(records), max_pending)

    # on SQLite one transaction, as enqueue's, so that no enqueuer passes the bound meanwhile
    if broker.target.kind == "sqlite" and max_pending is not None and send_sqlite(
            broker.target.location, records, max_pending=max_pending,
            full_error=full) is not None:
        return
    with _enqueue_turn(broker, new_owner()):
        waiting = broker.waiting()
        if max_pending is not None and waiting + len(records) > max_pending:
            raise full(waiting)
        for record in records:
            broker.send(broker.new_message(record["id"], record["issue"], record["reason"]))
            broker.put_record(record)


def describe(record: dict, now: float) -> dict:
    """A record as status shows it, with its age in the state it is in."""
    since = {PENDING: record.get("enqueued_at"), RUNNING: record.get("started_at")}.get(
        record["state"], record.get("finished_at"))
    shown = {key: record.get(key) for key in ("id", "issue", "reason", "state", "attempts",
                                              "error", "note", "worker", "result_status")}
    shown["age_seconds"] = round(max(now - since, 0.0), 3) if since else None
    shown["enqueued_at"] = _iso(record.get("enqueued_at"))
    shown["finished_at"] = _iso(record.get("finished_at"))
    return shown


def _iso(seconds: float | None) -> str | None:
    from log_archiver.util.clock import from_timestamp

    return None if seconds is None else from_timestamp(seconds)


def status(broker, *, limit: int = 100) -> dict:
    now = time.time()
    records, ignored = broker.records_and_ignored()
    records.sort(key=lambda r: r.get("enqueued_at") or 0)
    counts = {state: 0 for state in STATES}
    oldest: dict = {state: None for state in STATES}
    for record in records:
        state = record["state"] if record["state"] in counts else FAILED
        counts[state] += 1
        age = describe(record, now)["age_seconds"]
        if age is not None and (oldest[state] is None or age > oldest[state]):
            oldest[state] = age
    stale = [r["id"] for r in records if r["state"] == RUNNING and _stale(broker, r)]
    shown = [describe(r, now) for r in records if r["state"] != DONE][:limit]
    shown += [describe(r, now) for r in records if r["state"] == DONE][-max(
        limit - len(shown), 0):] if limit > len(shown) else []
    return {"counts": counts, "oldest_age_seconds": oldest, "waiting_messages":
            broker.waiting(), "stale_running": stale, "jobs": shown,
            "jobs_shown": len(shown), "jobs_total": len(records), "records_ignored": ignored}


def _stale(broker, record: dict) -> bool:
    return broker.leases.holder(f"issue:{record['issue']}") != record.get("worker")


def retry(broker, *, job_id: str | None = None, all_failed: bool = False) -> list[dict]:
    """Send failed jobs again (the message first, then the record). Not held to
    ``max_pending``: the bound refuses new work, and these jobs were accepted once (an
    outage of the store fails them all, and this is how they go back)."""
    from log_archiver.queue.records import runnable

    if (job_id is None) == (not all_failed):
        raise UsageError("give one JOB id or --all-failed", "see `log-archiver queue status`")
    if job_id is not None:
        record = broker.get_record(job_id)
        if record is None:
            raise UsageError(f"no job {job_id!r} in the queue {broker.target.url}",
                             "see `log-archiver queue status` for the job ids")
        if record["state"] != FAILED:
            raise JobStateError(f"job {job_id} is {record['state']}, not failed: only a "
                                "failed job is retried", "see `log-archiver queue status`")
        chosen = [record]
    else:
        chosen = [r for r in broker.records() if r["state"] == FAILED]
    chosen = [r for r in chosen if runnable(r)]  # (an unreadable message's: nothing to run)
    for record in chosen:
        record.update(state=PENDING, attempts=0, note="retried by hand",
                      last_error=record.get("error"), error=None, enqueued_at=time.time(),
                      finished_at=None)
    if chosen:
        _send_bounded(broker, chosen, None)
    return chosen


def purge_done(broker) -> list[dict]:
    done = [r for r in broker.records() if r["state"] == DONE]
    for record in done:
        broker.delete_record(record["id"])
    return done


def _queued_ids(broker) -> set[str]:
    ids = set()
    for data in [*broker.storage.enqueued_items(), *broker.storage.scheduled_items()]:
        try:
            ids.add(broker.huey.deserialize_task(data).id)
        except (ValueError, TypeError, KeyError):
            continue
    return ids


def recover(broker) -> list[dict]:
    """Put back in the queue the jobs whose worker is gone (killed, or its machine lost):
    marked running, their issue's lease is no longer theirs; or still pending while no
    message of theirs is left (taken by a worker that failed before it could start)."""
    from log_archiver.queue.records import runnable

    recovered = []
    records = broker.records()
    queued = _queued_ids(broker) if any(r["state"] == PENDING for r in records) else set()
    unsent = [r for r in records if r["state"] == PENDING and r["id"] not in queued
              and runnable(r)]
    if unsent:
        # A live worker holds a message it just took for a moment before it marks the job
        # running (or sends it back for later): look again once that moment is past.
        time.sleep(TAKING_SECONDS)
        queued = _queued_ids(broker)
    for record in unsent:
        again = broker.get_record(record["id"])
        if again is None or again["state"] != PENDING or again["id"] in queued:
            continue
        broker.send(broker.new_message(again["id"], again["issue"], again["reason"]))
        recovered.append(again)
    for record in records:
        if record["state"] != RUNNING or not runnable(record) or not _stale(broker, record):
            continue
        again = broker.get_record(record["id"])  # it may have finished meanwhile
        if again is None or again["state"] != RUNNING or again.get("worker") != \
                record.get("worker"):
            continue
        broker.send(broker.new_message(again["id"], again["issue"], again["reason"]))
        again.update(state=PENDING, note=f"put back: its worker {again.get('worker')} "
                                         "stopped mid-job")
        broker.put_record(again)
        recovered.append(again)
    return recovered

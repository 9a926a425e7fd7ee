"""The worker: takes jobs from the queue and archives each issue through the same library
call as ``log-archiver archive`` (:func:`archive.pipeline.archive`).

Graceful shutdown: once ``stop`` is set no new job is taken; the running ones get
``shutdown_timeout`` seconds to finish. A job cut off then is put back in the queue (the
archive's own crash safety makes its rerun finish it). A job whose worker was killed
outright is put back by the next worker (:func:`jobs.recover`), since its issue's lease is
no longer held by a live process.

A transient error retries the job as the retry policy says (its delays, in huey's
schedule); after that, or at once for a permanent error, the job is failed with its error
and waits for ``queue retry``. After ``threshold`` consecutive store failures the circuit
breaker opens: jobs are failed at once, with the time to retry them, until it closes.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from log_archiver.errors import ArchiveError, StorageError
from log_archiver.queue import jobs
from log_archiver.queue.breaker import CircuitBreaker
from log_archiver.queue.broker import UnreadableMessage
from log_archiver.queue.leases import new_owner
from log_archiver.util.retry import RetryPolicy, delay_scale_from_environment

# Tests only: "STAGE:SECONDS" makes each job sleep when the archive reaches STAGE, so a
# test can kill a worker mid-job.
PAUSE_ENV = "LOG_ARCHIVER_TEST_JOB_PAUSE"


@dataclass
class WorkerOptions:
    concurrency: int = 1
    once: bool = False
    shutdown_timeout: float = 30.0
    poll_seconds: float = 0.05
    lease_seconds: float = 60.0
    breaker_failures: int = 5
    breaker_cooldown_seconds: float = 300.0


@dataclass
class Outcome:
    job: str
    issue: int | None
    outcome: str  # done, failed, retrying, deferred, cut_off, skipped
    status: str | None = None
    error: dict | None = None
    seconds: float = 0.0


@dataclass
class Running:
    issue: int
    message: object
    started: float = field(default_factory=time.monotonic)


class Worker:
    def __init__(self, broker, make_repository: Callable[[], object], archive: Callable,
                 options: WorkerOptions, stop: threading.Event,
                 log: Callable[[str], None] = lambda line: None):
        self.broker, self.make_repository, self.archive = broker, make_repository, archive
        self.options, self.stop, self.log = options, stop, log
        self.owner = new_owner()
        self.breaker = CircuitBreaker(options.breaker_failures,
                                      options.breaker_cooldown_seconds)
        self.policy = RetryPolicy()
        self.scale = delay_scale_from_environment()
        self.outcomes: list[Outcome] = []
        self.running: dict[str, Running] = {}
        self.recovered: list[str] = []
        self._lock = threading.Lock()
        self._busy = 0
        self.broker_errors: list[str] = []

    # the main thread
    def run(self) -> dict:
        started = time.monotonic()
        self.recovered += [r["id"] for r in jobs.recover(self.broker)]
        threads = [threading.Thread(target=self._loop, name=f"job-{n + 1}", daemon=True)
                   for n in range(self.options.concurrency)]
        for thread in threads:
            thread.start()
        deadline = None
        last_care = time.monotonic()
        while any(t.is_alive() for t in threads):
            for thread in threads:
                thread.join(0.05)
            if self.stop.is_set() and deadline is None:
                deadline = time.monotonic() + self.options.shutdown_timeout
                if self.running:
                    self.log(f"stopping: waiting up to {self.options.shutdown_timeout:g} s for "
                             f"{len(self.running)} running job(s)")
            if deadline is not None and time.monotonic() >= deadline:
                self._cut_off()
                break
            if time.monotonic() - last_care >= self.options.lease_seconds / 3:
                last_care = time.monotonic()
                try:
                    self._renew_leases()
                    if not self.stop.is_set():
                        self.recovered += [r["id"] for r in jobs.recover(self.broker)]
                except Exception as error:  # the job threads meet it too, and report it
                    self.log(f"the job queue failed: {type(error).__name__}: {error}")
        return self._summary(time.monotonic() - started, deadline is not None)

    def _renew_leases(self) -> None:
        with self._lock:
            issues = [running.issue for running in self.running.values()]
        for issue in issues:
            self.broker.leases.renew(f"issue:{issue}", self.owner, self.options.lease_seconds)

    def _cut_off(self) -> None:
        """The shutdown timeout passed: the jobs still running go back to the queue."""
        with self._lock:
            cut = dict(self.running)
        for job_id, running in cut.items():
            self.broker.send(running.message)
            record = self.broker.get_record(job_id) or jobs.new_record(
                job_id, running.issue, running.message.args[2])
            record.update(state=jobs.PENDING, note="put back: cut off by the worker's "
                          f"shutdown after {self.options.shutdown_timeout:g} s")
            self.broker.put_record(record)
            self.outcomes.append(Outcome(job_id, running.issue, "cut_off",
                                         seconds=time.monotonic() - running.started))
            self.log(f"job {job_id} (issue #{running.issue}) cut off by the shutdown timeout; "
                     "it is back in the queue")

    # the job threads
    def _loop(self) -> None:
        repo = None
        while not self.stop.is_set():
            try:
                with self._lock:
                    message = self.broker.take()
                    if message is not None:
                        self._busy += 1
            except Exception as error:  # the broker is down: say so, and wait for it
                if not self._broker_failed(error):
                    return
                continue
            if message is None:
                if self.options.once and self._drained():
                    return
                self.stop.wait(self.options.poll_seconds)
                continue
            try:
                repo = repo or self.make_repository()
                self._handle(message, repo)
            except Exception as error:  # the broker failed mid-job: the job is recovered
                if not self._broker_failed(error):
                    return
            finally:
                with self._lock:
                    self._busy -= 1

    def _broker_failed(self, error: Exception) -> bool:
        """Note a broker failure; True when the worker waits and tries again."""
        text = f"the job queue {self.broker.target.url} failed: {type(error).__name__}: " \
               f"{error}"
        with self._lock:
            first = not self.broker_errors or self.broker_errors[-1] != text
            self.broker_errors.append(text)
        if first:
            self.log(text)
        if self.options.once:
            self.stop.set()
            return False
        self.stop.wait(min(0.5 * len(self.broker_errors), 10.0))
        return True

    def _drained(self) -> bool:
        with self._lock:
            return self._busy == 0 and self.broker.waiting() == 0

    def _handle(self, message, repo) -> None:
        if isinstance(message, UnreadableMessage):
            record = jobs.new_record(f"unreadable-{time.time_ns()}", None, None)
            self._finish(record, jobs.FAILED, {
                "type": "unreadable_message", "retryable": False,
                "message": f"a message in the queue is not a log-archiver job: "
                           f"{message.error}", "hint": "it was set aside, not run; check who "
                           "else writes to this queue"}, seconds=0.0)
            return
        job_id, issue, reason = message.args
        record = self.broker.get_record(job_id) or jobs.new_record(job_id, issue, reason)
        if record["state"] == jobs.DONE:
            self.outcomes.append(Outcome(job_id, issue, "skipped", status="done"))
            return
        if not self.breaker.allow():
            self._finish(record, jobs.FAILED, self._breaker_error(), seconds=0.0)
            return
        lease = f"issue:{issue}"
        if not self.broker.leases.acquire(lease, self.owner, self.options.lease_seconds):
            holder = self.broker.leases.holder(lease)
            self.broker.send_later(message, 1.0)
            record.update(state=jobs.PENDING, note=f"waiting: issue #{issue} is being "
                                                   f"archived by {holder}")
            self.broker.put_record(record)
            self.outcomes.append(Outcome(job_id, issue, "deferred"))
            return
        try:
            self._run_job(message, record, repo)
        finally:
            with self._lock:
                self.running.pop(job_id, None)
            self.broker.leases.release(lease, self.owner)

    def _run_job(self, message, record: dict, repo) -> None:
        job_id, issue, reason = message.args
        record.update(state=jobs.RUNNING, worker=self.owner, started_at=time.time(),
                      attempts=record.get("attempts", 0) + 1, note=None)
        self.broker.put_record(record)
        with self._lock:
            self.running[job_id] = Running(issue, message)
        self.log(f"job {job_id}: archiving issue #{issue} (attempt {record['attempts']})")
        started = time.monotonic()
        unpause = _pause_hook(repo)
        try:
            result = self.archive(repo, issue, reason=reason, retry=True)
        except ArchiveError as error:
            self._failed(message, record, error.to_dict(), error, started)
            return
        except Exception as error:  # a bug must fail the job visibly, not kill the worker
            self._failed(message, record, {
                "type": "internal", "retryable": False,
                "message": f"internal error: {type(error).__name__}: {error}",
                "hint": f"run `log-archiver archive {issue}` to see it"}, None, started)
            return
        finally:
            unpause()
        if result["status"] in ("ok", "noop"):
            self.breaker.record_success()
            self._finish(record, jobs.DONE, None, seconds=time.monotonic() - started,
                         result_status=result["status"])
            return
        errors = result.get("errors") or []
        failed = (result.get("upload") or {}).get("failed") or []
        first = (failed or errors or [{}])[0]
        error = {"type": first.get("type", "partial"),
                 "retryable": bool(failed) and all(f.get("retryable") for f in failed),
                 "message": f"issue #{issue} archived partly: " + (
                     first.get("message") or "; ".join(result.get("warnings") or [])
                     or "see `log-archiver archive` output"),
                 "hint": result.get("hint") or f"run `log-archiver archive {issue} --retry`"}
        store_down = bool(failed) and all(str(f.get("type", "")).startswith("storage")
                                          for f in failed)
        self._failed(message, record, error, "store" if store_down else None, started,
                     result_status=result["status"])

    def _failed(self, message, record: dict, error: dict, cause, started: float,
                result_status: str | None = None) -> None:
        if isinstance(cause, StorageError) or cause == "store":
            self.breaker.record_failure(error["message"])
        delay = None
        if error.get("retryable") and record["attempts"] <= self.policy.max_retries:
            probe = ArchiveError(error["message"], retryable=True)
            probe.kind = {"storage_throttled": "throttle", "github_throttled": "throttle",
                          "storage_timeout": "timeout"}.get(error["type"], "network")
            delay = self.policy.delay_for(probe, record["attempts"])
        seconds = time.monotonic() - started
        if delay is not None and self.breaker.allow():
            delay *= self.scale
            self.broker.send_later(message, delay)
            record.update(state=jobs.PENDING, error=None, last_error=error,
                          note=f"retry {record['attempts']} in {delay:g} s: {error['message']}")
            self.broker.put_record(record)
            self.outcomes.append(Outcome(record["id"], record["issue"], "retrying",
                                         result_status, error, seconds))
            self.log(f"job {record['id']}: {error['message']}; retrying in {delay:g} s")
            return
        if not self.breaker.allow():
            error = {**error, "hint": self._breaker_error()["hint"]}
        self._finish(record, jobs.FAILED, error, seconds=seconds, result_status=result_status)

    def _breaker_error(self) -> dict:
        from log_archiver.util.clock import from_timestamp

        at = self.breaker.open_until or from_timestamp(time.time())
        return {"type": "store_unavailable", "retryable": True,
                "message": f"not tried: the store failed {self.breaker.threshold} times in "
                           f"a row (last: {self.breaker.last_error}); the worker stopped "
                           f"trying it until {at}",
                "hint": f"once the store is back (after {at}), run `log-archiver queue retry "
                        "--all-failed` and a worker"}

    def _finish(self, record: dict, state: str, error: dict | None, *, seconds: float,
                result_status: str | None = None) -> None:
        record.update(state=state, error=error, finished_at=time.time(),
                      result_status=result_status)
        self.broker.put_record(record)
        self.outcomes.append(Outcome(record["id"], record.get("issue"),
                                     "done" if state == jobs.DONE else "failed",
                                     result_status, error, round(seconds, 3)))
        word = "done" if state == jobs.DONE else f"failed: {error['message']}"
        self.log(f"job {record['id']} (issue #{record.get('issue')}): {word}")

    def _summary(self, seconds: float, signalled: bool) -> dict:
        counts: dict[str, int] = {}
        for outcome in self.outcomes:
            counts[outcome.outcome] = counts.get(outcome.outcome, 0) + 1
        trouble = counts.get("failed", 0) + counts.get("cut_off", 0)
        status = "partial" if trouble else ("ok" if self.outcomes or self.recovered
                                            else "noop")
        errors = []
        if self.broker_errors:
            status = "error" if not self.outcomes else "partial"
            errors.append({"type": "queue_unavailable", "retryable": True,
                           "message": self.broker_errors[-1],
                           "hint": "fix the broker (queue.url), then start the worker again: "
                                   "jobs it had taken are put back by the next worker"})
        return {"status": status, "errors": errors, "queue_url": self.broker.target.url,
                "stopped_by": "signal" if signalled else (
                    "broker_error" if self.broker_errors else "drained"),
                "seconds": round(seconds, 3), "counts": counts,
                "recovered": self.recovered,
                "jobs": [vars(o) for o in self.outcomes],
                "breaker_open": not self.breaker.allow()}


def _pause_hook(repo) -> Callable[[], None]:
    spec = os.environ.get(PAUSE_ENV, "")
    stage, _, seconds = spec.partition(":")
    if not stage or not seconds.replace(".", "", 1).isdigit():
        return lambda: None

    def listener(event) -> None:
        if event.name == "stage" and event.fields.get("stage") == stage:
            time.sleep(float(seconds))

    return repo.events.subscribe(listener)

"""The worker: takes jobs from the queue and archives each issue through the same library
call as ``log-archiver archive`` (:func:`archive.pipeline.archive`).

Graceful shutdown: once ``stop`` is set no new job is taken; the running ones get
``shutdown_timeout`` seconds to finish. A job cut off then is put back in the queue (the
archive's own crash safety makes its rerun finish it). A job whose worker was killed
outright is put back by the next worker (:func:`jobs.recover`), since its issue's lease is
no longer held by a live process.

Each job holds its issue's lease under an owner of its own, so two jobs of one issue never
run at once, in one worker or in two; a thread of its own renews the leases. A job whose
lease was lost meanwhile (the worker stalled past ``lease_seconds``) says so, and leaves
its record alone once another worker has taken the job over.

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

from log_archiver.errors import ArchiveError
from log_archiver.queue import jobs
from log_archiver.queue.breaker import CircuitBreaker, record_upload, store_is_down
from log_archiver.queue.broker import UnreadableMessage
from log_archiver.queue.leases import new_owner
from log_archiver.queue.records import UNREADABLE_PREFIX
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
    owner: str  # the job's own hold on its issue's lease
    started: float = field(default_factory=time.monotonic)
    lost: str | None = None  # who held the lease when a renewal found it gone


class Worker:
    def __init__(self, broker, make_repository: Callable[[], object], archive: Callable,
                 options: WorkerOptions, stop: threading.Event,
                 log: Callable[[str], None] = lambda line: None):
        self.broker, self.make_repository, self.archive = broker, make_repository, archive
        self.options, self.stop, self.log = options, stop, log
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
        finished = threading.Event()
        renewer = threading.Thread(target=self._renew_until, args=(finished,),
                                   name="leases", daemon=True)
        renewer.start()
        try:
            signalled = self._watch(threads)
        finally:
            finished.set()
        return self._summary(time.monotonic() - started, signalled)

    def _watch(self, threads: list[threading.Thread]) -> bool:
        """Until the job threads end (or the shutdown timeout cuts them off); True when
        stopped by a signal."""
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
            if time.monotonic() - last_care >= self.options.lease_seconds / 3 \
                    and not self.stop.is_set():
                last_care = time.monotonic()
                try:
                    self.recovered += [r["id"] for r in jobs.recover(self.broker)]
                except Exception as error:  # the job threads meet it too, and report it
                    self.log(f"the job queue failed: {type(error).__name__}: {error}")
        return deadline is not None

    # the lease thread: a slow recover() or a busy main thread never delays a renewal
    def _renew_until(self, finished: threading.Event) -> None:
        while not finished.wait(self.options.lease_seconds / 3):
            try:
                self._renew_leases()
            except Exception as error:  # the job threads meet it too, and report it
                self.log(f"the job queue failed: {type(error).__name__}: {error}")

    def _renew_leases(self) -> None:
        leases, ttl = self.broker.leases, self.options.lease_seconds
        with self._lock:
            running = [(job_id, job) for job_id, job in self.running.items() if not job.lost]
        for job_id, job in running:
            lease = f"issue:{job.issue}"
            if leases.renew(lease, job.owner, ttl):
                continue
            if leases.acquire(lease, job.owner, ttl):  # lapsed, taken by no one: held again
                with self._lock:
                    ended = self.running.get(job_id) is not job
                if ended:  # (the job ended meanwhile and let go of it: so does this)
                    leases.release(lease, job.owner)
                continue
            job.lost = leases.holder(lease) or "no one"
            self.log(f"job {job_id} (issue #{job.issue}) lost its lease to {job.lost}: "
                     "another worker may be archiving the issue at the same time")

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
                # built before a job is taken: a job taken is marked running at once
                # (within jobs.TAKING_SECONDS), or another worker sends it again
                repo = repo or self.make_repository()
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
            record = jobs.new_record(f"{UNREADABLE_PREFIX}{time.time_ns()}", None, None)
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
        trial = self.breaker.admit()  # the job's one look at the breaker
        if trial is None:
            self._finish(record, jobs.FAILED, self._breaker_error(), seconds=0.0)
            return
        try:
            self._leased(message, record, repo, new_owner())
        finally:
            self.breaker.release_trial(trial)  # a trial that told nothing (no-op if it did)

    def _leased(self, message, record: dict, repo, owner: str) -> None:
        """Run the job under its issue's lease, or send it back for later."""
        job_id, issue, _ = message.args
        lease = f"issue:{issue}"
        if not self.broker.leases.acquire(lease, owner, self.options.lease_seconds):
            holder = self.broker.leases.holder(lease)
            self.broker.send_later(message, 1.0)
            record.update(state=jobs.PENDING, note=f"waiting: issue #{issue} is being "
                                                   f"archived by {holder}")
            self.broker.put_record(record)
            self.outcomes.append(Outcome(job_id, issue, "deferred"))
            return
        try:
            record = self.broker.get_record(job_id) or record  # as it is, now the issue is ours
            if record["state"] == jobs.DONE:  # (a copy of its message ran it meanwhile)
                self.outcomes.append(Outcome(job_id, issue, "skipped", status="done"))
                return
            self._run_job(message, record, repo, owner)
        finally:
            with self._lock:
                self.running.pop(job_id, None)
            self.broker.leases.release(lease, owner)

    def _run_job(self, message, record: dict, repo, owner: str) -> None:
        job_id, issue, reason = message.args
        record.update(state=jobs.RUNNING, worker=owner, started_at=time.time(),
                      attempts=record.get("attempts", 0) + 1, note=None)
        self.broker.put_record(record)
        with self._lock:
            self.running[job_id] = Running(issue, message, owner)
        self.log(f"job {job_id}: archiving issue #{issue} (attempt {record['attempts']})")
        started = time.monotonic()
        unpause = _pause_hook(repo)
        try:
            result = self.archive(repo, issue, reason=reason, retry=True)
        except ArchiveError as error:
            if store_is_down(error):
                self.breaker.record_failure(error)
            self._failed(message, record, error.to_dict(), started)
            return
        except Exception as error:  # a bug must fail the job visibly, not kill the worker
            self._failed(message, record, {
                "type": "internal", "retryable": False,
                "message": f"internal error: {type(error).__name__}: {error}",
                "hint": f"run `log-archiver archive {issue}` to see it"}, started)
            return
        finally:
            unpause()
        record_upload(self.breaker, result)  # what the batch tells its breaker, the same way
        if result["status"] in ("ok", "noop"):
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
        self._failed(message, record, error, started, result_status=result["status"])

    def _failed(self, message, record: dict, error: dict, started: float,
                result_status: str | None = None) -> None:
        delay = None
        if error.get("retryable") and record["attempts"] <= self.policy.max_retries:
            probe = ArchiveError(error["message"], retryable=True)
            probe.kind = {"storage_throttled": "throttle", "github_throttled": "throttle",
                          "storage_timeout": "timeout"}.get(error["type"], "network")
            delay = self.policy.delay_for(probe, record["attempts"])
        seconds = time.monotonic() - started
        if delay is not None and not self.breaker.is_open and self._still_ours(record):
            delay *= self.scale
            self.broker.send_later(message, delay)
            record.update(state=jobs.PENDING, error=None, last_error=error,
                          note=self._lost_note(record) or
                          f"retry {record['attempts']} in {delay:g} s: {error['message']}")
            self.broker.put_record(record)
            self.outcomes.append(Outcome(record["id"], record["issue"], "retrying",
                                         result_status, error, seconds))
            self.log(f"job {record['id']}: {error['message']}; retrying in {delay:g} s")
            return
        if self.breaker.is_open:
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

    def _still_ours(self, record: dict) -> bool:
        """No other worker has taken the job over (after its lease was lost to it)."""
        current = self.broker.get_record(record["id"])
        return current is None or current.get("worker") == record.get("worker")

    def _lost_note(self, record: dict) -> str | None:
        with self._lock:
            running = self.running.get(record["id"])
        if running is None or running.lost is None:
            return None
        return (f"its lease was lost mid-job to {running.lost}: another worker may have "
                "archived the issue at the same time")

    def _finish(self, record: dict, state: str, error: dict | None, *, seconds: float,
                result_status: str | None = None) -> None:
        if record["state"] == jobs.RUNNING and not self._still_ours(record):
            self.log(f"job {record['id']} (issue #{record.get('issue')}): its record is "
                     "another worker's now (the lease was lost); left as it is")
        else:
            record.update(state=state, error=error, finished_at=time.time(),
                          result_status=result_status,
                          note=self._lost_note(record) or record.get("note"))
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
                "breaker_open": self.breaker.is_open}


def _pause_hook(repo) -> Callable[[], None]:
    spec = os.environ.get(PAUSE_ENV, "")
    stage, _, seconds = spec.partition(":")
    if not stage or not seconds.replace(".", "", 1).isdigit():
        return lambda: None

    def listener(event) -> None:
        if event.name == "stage" and event.fields.get("stage") == stage:
            time.sleep(float(seconds))

    return repo.events.subscribe(listener)

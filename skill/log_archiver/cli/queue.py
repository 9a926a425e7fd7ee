"""The job queue: enqueue, worker, queue status / retry / purge.

``enqueue`` is what a webhook calls, so it imports as little as it can: no boto3, git or
GitHub client, and huey without the redis client on the SQLite path.
"""

from __future__ import annotations

import click

from log_archiver.cli import output
from log_archiver.cli.options import CommandGroup, _issue_callback
from log_archiver.queue.jobs import REASONS


def _issues_callback(ctx, param, values):
    return [_issue_callback(ctx, param, value) for value in values]


def _quiet_option(function):
    return click.option("--quiet", "-q", is_flag=True, help="Print nothing on stderr.")(function)


def _open(config):
    from log_archiver.queue.broker import open_broker, queue_target
    from log_archiver.queue.jobs import broker_errors

    target = queue_target(config)
    with broker_errors(target.url):
        return open_broker(config), broker_errors(target.url)


def _config():
    from log_archiver.config import load_config

    return load_config()


@click.command("enqueue")
@click.argument("issues", nargs=-1, required=True, callback=_issues_callback,
                metavar="ISSUE [ISSUE...]")
@click.option("--reason", type=click.Choice(REASONS), default="manual", show_default=True,
              help="Why the logs are archived (as for archive).")
@_quiet_option
def enqueue_command(issues, reason, quiet):
    """Queue ISSUE(s) for a worker to archive; returns at once with the job ids.

    The job is written durably (SQLite with fsync, or Redis). Past queue.max_pending
    waiting jobs it refuses (exit 1) and changes nothing."""
    from log_archiver.cli.enqueue import run_enqueue

    run_enqueue(list(issues), reason, quiet)


@click.command("worker")
@click.option("--concurrency", type=click.IntRange(1, 32), default=1, show_default=True,
              help="Jobs archived at once (threads).")
@click.option("--once", is_flag=True, help="Drain what is queued, then exit (cron, CI).")
@click.option("--shutdown-timeout", type=click.FloatRange(0, 3600), default=30.0,
              show_default=True, metavar="SECONDS",
              help="On SIGTERM/SIGINT, how long running jobs may take to finish; a job cut "
                   "off is put back in the queue.")
@_quiet_option
def worker_command(concurrency, once, shutdown_timeout, quiet):
    """Take jobs from the queue and archive them, as `archive ISSUE` would.

    SIGTERM or SIGINT: take no new job, let the running ones finish within the timeout,
    then stop. Prints one JSON object (what it did) when it stops."""
    import signal
    import threading

    from log_archiver.cli.options import build_repository
    from log_archiver.cli.render_queue import worker_summary

    stop = threading.Event()

    def body():
        from log_archiver.archive.pipeline import archive
        from log_archiver.queue.worker import Worker, WorkerOptions

        config = _config()
        broker, guard = _open(config)
        options = WorkerOptions(
            concurrency=concurrency, once=once, shutdown_timeout=shutdown_timeout,
            lease_seconds=config.queue_lease_seconds,
            breaker_failures=config.breaker_failures,
            breaker_cooldown_seconds=config.breaker_cooldown_seconds)
        settings = {"quiet": quiet, "logs_dir": None, "storage": None}
        log = (lambda line: None) if quiet else output.to_stderr
        worker = Worker(broker, lambda: build_repository(settings), archive, options, stop,
                        log=log)
        previous = {signum: signal.signal(signum, lambda *_: stop.set())
                    for signum in (signal.SIGTERM, signal.SIGINT)}
        log(f"worker on {broker.target.url}: {concurrency} at a time"
            + (", until the queue is empty" if once else "; SIGTERM or Ctrl-C stops it"))
        try:
            with guard:
                return worker.run()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    output.run("worker", body, quiet=quiet, human=worker_summary)


@click.group("queue", cls=CommandGroup)
def queue_group():
    """See and manage the job queue: status, retry, purge."""


@queue_group.command("status")
@click.option("--limit", type=click.IntRange(0, 100000), default=100, show_default=True,
              help="Jobs listed at most (waiting, running and failed first).")
@_quiet_option
def queue_status(limit, quiet):
    """Pending, running, failed and done jobs, with their ages."""
    from log_archiver.cli.render_queue import status_summary
    from log_archiver.queue.jobs import status

    def body():
        broker, guard = _open(_config())
        with guard:
            return {"status": "ok", "queue_url": broker.target.url,
                    **status(broker, limit=limit)}

    output.run("queue", body, quiet=quiet, human=status_summary)


@queue_group.command("retry")
@click.argument("job", required=False, metavar="[JOB]")
@click.option("--all-failed", is_flag=True, help="Retry every failed job.")
@_quiet_option
def queue_retry(job, all_failed, quiet):
    """Put failed jobs back in the queue (a worker then runs them)."""
    from log_archiver.cli.render_queue import changed_summary
    from log_archiver.queue.jobs import retry

    def body():
        broker, guard = _open(_config())
        with guard:
            chosen = retry(broker, job_id=job, all_failed=all_failed)
        return {"status": "ok" if chosen else "noop", "queue_url": broker.target.url,
                "action": "retry", "jobs": [{"id": r["id"], "issue": r["issue"]}
                                            for r in chosen]}

    output.run("queue", body, quiet=quiet, human=changed_summary)


@queue_group.command("purge")
@click.option("--done", is_flag=True, required=True, help="Remove the records of done jobs.")
@_quiet_option
def queue_purge(done, quiet):
    """Forget the jobs that are done (failed and waiting jobs are kept)."""
    from log_archiver.cli.render_queue import changed_summary
    from log_archiver.queue.jobs import purge_done

    def body():
        broker, guard = _open(_config())
        with guard:
            removed = purge_done(broker)
        return {"status": "ok" if removed else "noop", "queue_url": broker.target.url,
                "action": "purge", "jobs": [{"id": r["id"], "issue": r["issue"]}
                                            for r in removed]}

    output.run("queue", body, quiet=quiet, human=changed_summary)

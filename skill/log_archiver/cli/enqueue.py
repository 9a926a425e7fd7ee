"""``enqueue``, the command a webhook waits for, runnable without click.

Importing click and the command group costs about as much as the whole enqueue, so a
command line of plain words (issue numbers, ``--reason R``, ``-q``) is read here and
run straight away. Anything else (``--help``, a bad issue number, an unknown option)
goes to the click command, which gives the usual usage error; both run
:func:`run_enqueue`, so the output is the same either way.
"""

from __future__ import annotations

from log_archiver.queue.jobs import REASONS


def plain_enqueue(words: list[str]) -> tuple[list[int], str, bool] | None:
    """(issues, reason, quiet) of ``enqueue``'s words; None when click must read them."""
    from log_archiver.errors import UsageError
    from log_archiver.model.issues import parse_issue

    issues, reason, quiet = [], "manual", False
    rest = iter(words)
    for word in rest:
        if word in ("-q", "--quiet"):
            quiet = True
        elif word == "--reason" or word.startswith("--reason="):
            reason = word.partition("=")[2] if "=" in word else next(rest, None)
            if reason not in REASONS:
                return None
        elif word.startswith("-"):
            return None
        else:
            try:
                issues.append(parse_issue(word))
            except UsageError:
                return None
    return (issues, reason, quiet) if issues else None


def run_enqueue(issues: list[int], reason: str, quiet: bool) -> None:
    """Queue the issues and print the one JSON object; exits."""
    from log_archiver.cli import output
    from log_archiver.cli.render_queue import enqueue_summary

    def body():
        from log_archiver.config import load_config
        from log_archiver.queue.jobs import enqueue_jobs

        config = load_config()
        url, added, waiting = enqueue_jobs(config, list(issues), reason)
        return {"status": "ok", "queue_url": url, "reason": reason,
                "jobs": [{"id": r["id"], "issue": r["issue"]} for r in added],
                "waiting": waiting, "max_pending": config.queue_max_pending}

    output.reset()
    try:
        output.run("enqueue", body, quiet=quiet, human=enqueue_summary)
    except KeyboardInterrupt as stop:
        output.interrupted("enqueue", quiet=quiet, cause=stop)
    except Exception as error:  # (SystemExit, the way out, passes)
        output.crash("enqueue", error, quiet=quiet)

"""Many issues in one process: ``archive ISSUE ISSUE...`` and ``archive --all-closed``.

Each issue goes through :func:`.archive.pipeline.archive` as ``archive ISSUE`` would take
it, without its commit and its cleanup: the local files of up to :data:`CLEAN_EVERY`
archived issues (fewer when the first of them was archived :data:`CLEAN_SECONDS` ago) are
freed as one step (one pool of checks, one index transaction), then those issues finish;
one commit at the end names them all. An issue that fails never
stops the others. A circuit breaker (:mod:`.breaker`) watches the store: after
``queue.breaker_failures`` issues in a row whose uploads found it down, the rest are
``not_attempted`` and the output says when to try again.

Resumable: a checkpoint beside the index (:mod:`.checkpoint`) records what GitHub said
and which issues finished, after each issue; a batch killed half way and run again
skips what the index shows archived and asks GitHub nothing it already answered. The
checkpoint is removed when the batch ends.

Events: ``issues.planned`` (``fields["issues"]``: how many) before the first issue, and
``issue.done`` after each (``bytes``: its logs' stored size, ``fields["status"]``).
"""

from __future__ import annotations

import time
from datetime import datetime

from log_archiver.archive.cleanup import cleanup_issues
from log_archiver.archive.pipeline import archive, finish_archive
from log_archiver.errors import ArchiveError
from log_archiver.model.states import entry_state
from log_archiver.queue.breaker import CircuitBreaker, record_upload, store_is_down
from log_archiver.queue.checkpoint import Checkpoint, checkpoint_path
from log_archiver.queue.closed import issues_with_logs, plan_all_closed
from log_archiver.repository import Repository
from log_archiver.util.clock import iso

CLEAN_EVERY = 8  # archived issues whose local files are freed in one step, at most
CLEAN_SECONDS = 1.0  # (or fewer: the progress and the disk wait no longer for the rest)
KEPT = ("previous_state", "message", "collected", "upload", "entry", "failed_files", "hint",
        "partial_reason", "changed_logs", "new_logs", "warnings", "errors")


class RememberingGitHub:
    """The GitHub client, but an issue already described (by a page of closed issues, or
    earlier in the batch) is not asked about again; what is learned goes to ``learned``."""

    def __init__(self, client, known: dict[int, dict], learned=lambda issue, info: None):
        self._client = client
        self._known = known
        self._learned = learned

    def issue(self, number: int) -> dict:
        info = self._known.get(number)
        if info is None:
            info = self._client.issue(number)
            self._known[number] = dict(info)
            self._learned(number, info)
        return {key: info.get(key) for key in ("title", "url", "state")} | {
            "closed": bool(info.get("closed")),
            "is_pull_request": bool(info.get("is_pull_request"))}

    def __getattr__(self, name):
        return getattr(self._client, name)


def batch_key(reason: str, *, issues: list[int] | None = None, since: datetime | None = None,
              limit: int | None = None, force: bool = False, retry: bool = False) -> str:
    """What makes two runs the same batch (so a rerun takes up the checkpoint)."""
    what = ("issues " + ",".join(map(str, sorted(issues))) if issues is not None else
            f"all-closed since={since.isoformat() if since else '-'} limit={limit or '-'}")
    return f"{what} reason={reason} force={force} retry={retry}"


def breaker_from(repo: Repository) -> CircuitBreaker:
    return CircuitBreaker(repo.config.breaker_failures, repo.config.breaker_cooldown_seconds)


def open_checkpoint(repo: Repository, key: str, warnings: list[str]) -> Checkpoint | None:
    """The batch's checkpoint, taken up from a killed run when there is one (None in a dry
    run, which writes nothing)."""
    if repo.dry_run:
        return None
    checkpoint = Checkpoint(checkpoint_path(repo.index.path), key)
    problem = checkpoint.load()
    if problem is not None:
        warnings.append(problem)
    return checkpoint


def archive_issues(repo: Repository, issues: list[int], *, reason: str = "manual",
                   force: bool = False, retry: bool = False, **options) -> dict:
    """``archive ISSUE ISSUE...``: the batch's JSON payload (``status`` included); an
    issue named twice is archived once."""
    issues = list(dict.fromkeys(issues))
    warnings: list[str] = []
    key = batch_key(reason, issues=issues, force=force, retry=retry)
    checkpoint = open_checkpoint(repo, key, warnings)
    return archive_batch(repo, issues, reason=reason, force=force, retry=retry,
                         checkpoint=checkpoint, warnings=warnings, **options)


def archive_all_closed(repo: Repository, *, since: datetime | None = None,
                       limit: int | None = None, force: bool = False, retry: bool = False,
                       **options) -> dict:
    """``archive --all-closed``: every issue with logs on disk that GitHub says is closed,
    archived with reason ``issue_closed``; the others are listed in ``skipped_issues``."""
    warnings: list[str] = []
    key = batch_key("issue_closed", since=since, limit=limit, force=force, retry=retry)
    checkpoint = open_checkpoint(repo, key, warnings)
    check = {"since": None if since is None else iso(since), "limit": limit}
    if checkpoint is not None and checkpoint.has_plan:
        planned, skipped, known = checkpoint.planned, checkpoint.skipped, {}
        check.update(candidates=len(planned) + len(skipped), closed=len(planned), pages=0,
                     from_checkpoint=True)
        ahead = None
    else:
        # the first issues with logs are compressed while GitHub says which are closed
        candidates = list(issues_with_logs(repo.logs_dir))
        ahead = _compress_ahead(repo, candidates, force)
        try:
            plan = plan_all_closed(repo, since=since, limit=limit, candidates=candidates)
        except BaseException:
            if ahead is not None:
                ahead.close()
            raise
        planned, skipped, known = plan["planned"], plan["skipped"], plan["github"]
        check.update(candidates=plan["candidates"], closed=len(planned), pages=plan["pages"],
                     from_checkpoint=False)
        if ahead is not None:
            for passed in skipped:
                ahead.done_with(passed["issue_number"])
    payload = archive_batch(repo, planned, reason="issue_closed", force=force, retry=retry,
                            checkpoint=checkpoint, known=known, skipped=skipped,
                            warnings=warnings, ahead=ahead, **options)
    payload["closed_check"] = check
    return payload


def archive_batch(repo: Repository, issues: list[int], *, reason: str = "manual",
                  force: bool = False, retry: bool = False, allow_empty: bool = False,
                  commit: bool = True, checkpoint: Checkpoint | None = None,
                  known: dict[int, dict] | None = None,
                  breaker: CircuitBreaker | None = None, skipped: list[dict] | None = None,
                  warnings: list[str] | None = None, progress=lambda message: None,
                  ahead=None) -> dict:
    """Archive ``issues`` in order; returns the batch's JSON payload (``status`` included).
    ``known``: what GitHub already said about some of them (``{issue: info}``); ``ahead``:
    a :class:`.archive.ahead.CompressAhead` already at work on them (closed here, once
    the index is committed)."""
    breaker = breaker or breaker_from(repo)
    warnings = [] if warnings is None else warnings
    skipped = list(skipped or [])
    known = dict(known or {})
    learned = lambda issue, info: None  # noqa: E731
    if checkpoint is not None:
        if not checkpoint.resumed:
            checkpoint.planned, checkpoint.skipped = list(issues), skipped
        checkpoint.github.update(known)
        known = checkpoint.github
        checkpoint.save()
        learned = lambda issue, info: checkpoint.save()  # noqa: E731
    if repo.github is not None:
        repo.use_github(RememberingGitHub(repo.github, known, learned))
    repo.events.emit("issues.planned", issues=len(issues))
    ahead = ahead or _compress_ahead(repo, issues, force)
    try:
        with repo.keeping_pools(), repo.index.deferring_validity():
            results = _archive_each(repo, issues, reason=reason, force=force, retry=retry,
                                    allow_empty=allow_empty, checkpoint=checkpoint,
                                    breaker=breaker, progress=progress, ahead=ahead)
        payload = _payload(repo, results, skipped, breaker, reason, warnings)
        if commit and repo.config.commit and not repo.dry_run:
            # (committed while what compressed ahead writes its search index)
            payload["commit"] = _commit(repo, [r["issue_number"] for r in results
                                               if r["status"] not in ("not_attempted", "error")])
            if payload["commit"]["status"] == "error":
                payload["warnings"].append(f"index not committed: "
                                           f"{payload['commit']['message']}; "
                                           f"{payload['commit']['hint']}")
                payload["status"] = "partial"
                payload.setdefault("hint", "run `log-archiver commit` once the cause is fixed")
        else:
            payload["commit"] = {"status": "noop", "reason": "committing was turned off"
                                 if not repo.dry_run else "a dry run commits nothing"}
    finally:
        if ahead is not None:
            ahead.close()
    if checkpoint is not None:
        checkpoint.remove()
    return payload


def _archive_each(repo: Repository, issues: list[int], *, reason, force, retry, allow_empty,
                  checkpoint, breaker, progress, ahead=None) -> list[dict]:
    """Each issue in turn, the next ones compressed ahead; the result of each."""
    events = repo.events
    results: list[dict] = []
    waiting: list[tuple[int, dict]] = []  # in order; the archived ones' cleanup is due
    first_due = None  # when the first of them was archived

    def finish_waiting() -> None:
        nonlocal first_due
        first_due = None
        due = {issue: result["cleanup_due"].partial for issue, result in waiting
               if "cleanup_due" in result}
        cleaned = {}
        if due:
            for issue in due:
                events.emit("stage", issue=issue, stage="cleaning")
            progress(f"freeing the local disk of {len(due)} archived issue(s)")
            with repo.audit_deferred():
                cleaned = cleanup_issues(repo, due)
        step = []
        for issue, result in waiting:
            with repo.audit_deferred():  # (its audit line is on disk before the checkpoint)
                step.append(_finished(repo, issue, result, cleaned.get(issue)))
        if checkpoint is not None:  # (the step's issues in one write)
            checkpoint.finish({result["issue_number"]: result["status"] for result in step
                               if result["status"] != "not_attempted"})
        for result in step:
            results.append(result)
            events.emit("issue.done", issue=result["issue_number"],
                        bytes=(result.get("entry") or {}).get("total_size_bytes", 0),
                        status=result["status"])
        waiting.clear()

    try:
        for position, issue in enumerate(issues, 1):
            def say(message, position=position, issue=issue):
                progress(f"[{position}/{len(issues)}] #{issue}: {message}")

            try:
                result = _one(repo, issue, reason=reason, force=force, retry=retry,
                              allow_empty=allow_empty, checkpoint=checkpoint, breaker=breaker,
                              say=say, ahead=ahead)
            finally:
                if ahead is not None:
                    ahead.done_with(issue)
            waiting.append((issue, result))
            if "cleanup_due" in result and first_due is None:
                first_due = time.monotonic()
            if first_due is None or (  # (nothing to clean up: done at once)
                    sum("cleanup_due" in result for _, result in waiting) >= CLEAN_EVERY
                    or time.monotonic() - first_due >= CLEAN_SECONDS):
                finish_waiting()
        finish_waiting()
    finally:
        if ahead is not None:
            ahead.stop_soon()  # (closed by the caller, which may commit meanwhile)
    return results


def _finished(repo: Repository, issue: int, result: dict, cleaned) -> dict:
    """The result of an issue whose cleanup step has run (``cleaned``: its report, or the
    error that stopped it), or that needed none."""
    if "cleanup_due" not in result:
        return result
    if isinstance(cleaned, ArchiveError):
        return _failed(issue, cleaned)
    try:
        return _compact(issue, finish_archive(repo, result, cleaned, result["cleanup_due"]))
    except ArchiveError as error:
        return _failed(issue, error)


def _failed(issue: int, error: ArchiveError) -> dict:
    return {"issue_number": issue, "status": "error", "errors": [error.to_dict()],
            "hint": error.hint or f"run `log-archiver archive {issue}` once it is fixed"}


def _compress_ahead(repo: Repository, issues: list[int], force: bool):
    """The batch's :class:`.archive.ahead.CompressAhead`, when there is a next issue to
    compress (not in a dry run, which writes nothing, nor with --force, which prepares
    archived logs again)."""
    if repo.dry_run or force or len(issues) < 2:
        return None
    from log_archiver.archive.ahead import CompressAhead
    from log_archiver.archive.ahead_child import CompressAheadInChild

    try:
        try:
            return CompressAheadInChild(repo, issues)
        except OSError:  # no child process to be had: threads of this one
            return CompressAhead(repo, issues)
    except ArchiveError:  # (an index that cannot be read: each issue reports it)
        return None


def _one(repo: Repository, issue: int, *, reason, force, retry, allow_empty, checkpoint,
         breaker: CircuitBreaker, say, ahead=None) -> dict:
    entry = repo.index.find(issue) if checkpoint is not None else None
    if checkpoint is not None and checkpoint.done.get(issue) in ("ok", "noop") \
            and entry_state(entry) == "done" and not _logs_since(repo, entry):
        return {"issue_number": issue, "status": "noop", "resumed": True,
                "message": f"issue #{issue} was archived by an earlier run of this batch "
                           f"({entry['archived_at']})", "entry": _entry_summary(entry)}
    trial = breaker.admit()
    if trial is None:
        return {"issue_number": issue, "status": "not_attempted",
                "reason": f"the store was failing; not tried (try again after "
                          f"{breaker.open_until})"}
    try:
        result = archive(repo, issue, reason=reason, force=force, retry=retry, commit=False,
                         allow_empty=allow_empty, progress=say, ahead=ahead, clean=False)
        record_upload(breaker, result)
    except ArchiveError as error:
        if store_is_down(error):
            breaker.record_failure(error)
        return _failed(issue, error)
    finally:
        breaker.release_trial(trial)  # a trial that told nothing (a no-op if it did)
    return result if "cleanup_due" in result else _compact(issue, result)


def _logs_since(repo: Repository, entry: dict) -> bool:
    """Whether logs of the entry's issue appeared or changed on disk since it was archived
    (then the archive runs again, to take them, as for any archived issue)."""
    from log_archiver.archive.collect import collect
    from log_archiver.archive.prepare import changed_since_archived

    known = {log["local_path"] for log in entry["logs"]}
    try:
        found = collect(repo, entry["issue_number"])[0]
        return any(log.relative not in known for log in found) \
            or bool(changed_since_archived(entry, found, repo.config))
    except (ArchiveError, OSError):  # (the archive meets it too, and reports it)
        return True


def _compact(issue: int, result: dict) -> dict:
    out = {"issue_number": issue, "status": result["status"]}
    out.update({key: result[key] for key in KEPT if key in result})
    if isinstance(result.get("comment"), dict):
        out["comment"] = {"action": result["comment"]["action"],
                          "url": result["comment"].get("url")}
    if isinstance(result.get("cleanup"), dict):
        out["freed_bytes"] = result["cleanup"].get("freed_bytes", 0)
    return out


def _entry_summary(entry: dict) -> dict:
    from log_archiver.archive.pipeline import _entry_summary as summary

    return summary(entry)


def _payload(repo, results, skipped, breaker, reason, warnings) -> dict:
    counts = {status: 0 for status in ("ok", "noop", "partial", "error", "not_attempted")}
    for result in results:
        counts[result["status"]] += 1
    failed = counts["partial"] + counts["error"] + counts["not_attempted"]
    status = "partial" if failed else "ok" if counts["ok"] else "noop"
    for result in results:
        for warning in result.get("warnings") or []:
            if warning not in warnings:
                warnings.append(warning)
    payload = {"status": status, "reason": reason, "index_path": str(repo.index.path),
               "storage_url": repo.config.storage, "issues": results,
               "skipped_issues": skipped,
               "summary": {"planned": len(results), **counts, "skipped": len(skipped),
                           "resumed": sum(bool(r.get("resumed")) for r in results)},
               "breaker": breaker.state(), "warnings": warnings, "errors": []}
    if counts["not_attempted"]:
        payload["retry_after"] = breaker.open_until
        payload["hint"] = (f"the store failed for {breaker.threshold} issues in a row; "
                           f"{counts['not_attempted']} issue(s) were not attempted: run the "
                           f"same command again after {breaker.open_until}")
    elif failed:
        payload["hint"] = ("each failed issue's hint says what to run; running the same "
                           "command again retries them and skips the archived ones")
    return payload


def _commit(repo: Repository, issues: list[int]) -> dict:
    from log_archiver.integrations.git_batch import commit_archives

    if not issues:
        return {"status": "noop", "reason": "no issue of the batch was archived"}
    try:
        return commit_archives(repo.index, issues, repo_root=repo.config.root,
                               untrack_logs=repo.config.untrack_cleaned_logs)
    except ArchiveError as error:
        return {"status": "error", **error.to_dict()}

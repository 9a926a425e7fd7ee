"""Index repairs a person (or an agent) runs by hand after a failure."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from log_archiver.errors import ArchiveError, NotArchivedError, UsageError
from log_archiver.model import states
from log_archiver.repository import Repository
from log_archiver.storage import Store, verify_record
from log_archiver.util.clock import now_iso


def _find_log(entry: dict, file: str, logs_dir: Path) -> dict:
    wanted = Path(file)
    if wanted.is_absolute():
        try:
            wanted = wanted.relative_to(logs_dir)
        except ValueError:
            pass
    text = wanted.as_posix()
    exact = [log for log in entry["logs"] if text in (log["local_path"], log["stored_path"],
                                                      log["remote_path"])]
    matches = exact or [log for log in entry["logs"] if log["filename"] == text]
    if len(matches) == 1:
        return matches[0]
    if matches:  # a bare name two folders share: say which, never pick one
        raise UsageError(f"file {file!r} names {len(matches)} logs of issue "
                         f"{entry['issue_number']}",
                         f"name one by its path: {', '.join(m['local_path'] for m in matches)}")
    raise UsageError(f"file {file!r} is not among the logs of issue {entry['issue_number']}",
                     f"pick one of: {', '.join(log['local_path'] for log in entry['logs'])}")


def update_file_status(repo: Repository, issue: int, file: str, status: str,
                       cloud_url: str | None, error: str | None = None) -> dict:
    """Record a file's state by hand. ``verified`` and ``cleaned`` are never taken on
    word: they are reached only by checking the store. A ``cloud_url`` must be the one
    the store gives the log's key (the index publishes only URLs it can derive)."""
    if status not in states.HAND_SETTABLE:
        if status in (states.VERIFIED, states.CLEANED):
            raise UsageError(f"status {status!r} is set only after the stored copy is checked",
                             "mark it uploaded; cleanup-local verifies it before deleting "
                             "anything")
        raise UsageError(f"status {status!r} is not one of {', '.join(states.HAND_SETTABLE)}",
                         "use uploaded, or failed")
    with repo.index.transaction() as txn:
        entry = txn.edit(issue)
        if entry is None:
            raise NotArchivedError(f"issue {issue} has no entry in {repo.index.path}",
                                   f"run `prepare-upload {issue}` first")
        log = _find_log(entry, file, repo.logs_dir)
        before = log["upload_status"]
        fields: dict = {"upload_timestamp": now_iso()}
        if status == states.UPLOADED:
            fields.update(cloud_url=_derived_url(repo, log, cloud_url),
                          public_url=repo.store.public_url_for(log["remote_path"]),
                          archived=log["archived"] or fields["upload_timestamp"],
                          last_error=None)
        elif status == states.FAILED:
            fields["last_error"] = error or log["last_error"] or "marked failed by hand"
        states.transition(log, status, **fields)
    repo.events.emit("index.repaired", issue=issue, path=log["local_path"],
                     bytes=log["size_bytes"], op="update-file-status", checksum=log["checksum"],
                     status_before=before, status_after=status)
    return {"local_path": log["local_path"], "previous_status": before, "upload_status": status,
            "cloud_url": log["cloud_url"]}


def _derived_url(repo: Repository, log: dict, given: str | None) -> str:
    """The store's URL of the log's key; a URL given by hand must be that one."""
    derived = repo.store.url_for(log["remote_path"])
    if given is not None and given != derived:
        raise UsageError(f"cloud URL {given!r} is not where this store keeps "
                         f"{log['local_path']}: it is {derived!r}",
                         "leave CLOUD_URL out (it is derived from the store and the key), or "
                         "pass --storage with the store that holds the object")
    return derived


def mark_partial(repo: Repository, issue: int, reason: str | None) -> dict:
    """Flag the entry partial with ``reason``, or clear a flag set so (``reason`` None)."""
    with repo.index.transaction() as txn:
        entry = txn.edit(issue)
        if entry is None:
            raise NotArchivedError(f"issue {issue} has no entry in {repo.index.path}",
                                   f"run `prepare-upload {issue}` first")
        previous = entry.get("partial_reason")
        entry["partial_reason"] = reason
    repo.events.emit("index.repaired", issue=issue, op="mark-partial-archive",
                     reason=reason, previous_reason=previous)
    return {"partial_reason": reason, "previous_reason": previous}


def update_index(repo: Repository, issue: int, metadata) -> dict:
    """Add or replace the entry of ``issue`` from metadata: an entry, or a list of logs.

    The metadata is checked and completed first (:mod:`.repair_input`). A log it claims
    is stored (``uploaded``, ``verified``, ``cleaned``) is recorded so only if its object
    in the store has the recorded size and SHA-256; otherwise it is recorded ``pending``,
    the claim and the reason in ``downgraded``, so ``retry-failed-uploads`` uploads it and
    ``cleanup-local`` never deletes it. Every URL is the one the store gives the key.
    """
    from log_archiver.archive.repair_input import entry_from_metadata

    store = repo.store
    entry = entry_from_metadata(metadata, issue, repo.config.storage, repo.logs_dir, store.url)
    claims = [log for log in entry["logs"] if states.is_stored(log)]
    downgraded = []
    for log, reason in _unverified(claims, store, repo.config.workers):
        downgraded.append({"local_path": log["local_path"], "claimed": log["upload_status"],
                           "reason": reason})
        states.claim(log, states.PENDING)
        log["last_error"] = f"claimed {downgraded[-1]['claimed']} by update-index, but {reason}"
    for log in entry["logs"]:
        if states.is_stored(log):
            log["cloud_url"] = store.url_for(log["remote_path"])
            log["public_url"] = store.public_url_for(log["remote_path"])
        else:
            log["cloud_url"] = log["public_url"] = None
    with repo.index.transaction() as txn:
        existed = txn.has(issue)
        txn.put(entry)
    repo.events.emit("index.repaired", issue=issue, bytes=entry["total_size_bytes"],
                     op="update-index", outcome="partial" if downgraded else "ok",
                     action="replaced" if existed else "created", logs=entry["total_logs"],
                     downgraded=[d["local_path"] for d in downgraded])
    return {"status": "partial" if downgraded else "ok",
            "action": "replaced" if existed else "created", "total_logs": entry["total_logs"],
            "downgraded": downgraded}


def _unverified(claims: list[dict], store: Store, workers: int) -> list[tuple[dict, str]]:
    """The logs among ``claims`` whose stored object does not verify, and why."""
    def check(log: dict) -> str | None:
        try:
            verify_record(store, log)
        except ArchiveError as error:
            return f"its stored copy does not verify: {error.message}"
        return None

    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(claims) or 1))) as pool:
        reasons = list(pool.map(check, claims))
    return [(log, reason) for log, reason in zip(claims, reasons, strict=True) if reason]


def load_metadata(text: str | bytes, source: str):
    from log_archiver.archive.repair_input import read_json_input

    return read_json_input(text, f"metadata {source}")

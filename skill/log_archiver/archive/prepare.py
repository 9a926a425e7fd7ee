"""The first steps of the workflow: collect the logs, compress and checksum them, and
record the upload plan in the index (every new record ``pending``).

Every step is safe to run again: after success it changes nothing, after a crash it
finishes the job.
"""

from __future__ import annotations

from concurrent.futures import Executor
from contextlib import nullcontext
from functools import partial
from pathlib import Path

from log_archiver.archive.collect import FoundLog, collect, remove_stale_temps
from log_archiver.archive.compress import (
    ZSTD_THREADS,
    StoredFile,
    gzip_many,
    hash_as_is,
    remove_replaced_copies,
    zstd_one,
)
from log_archiver.errors import ArchiveError
from log_archiver.integrations.comment import session_duration
from log_archiver.model import states
from log_archiver.model.copies import fits_compressed, stored_name
from log_archiver.model.records import merge_records, new_entry, prepared_record
from log_archiver.redaction.identity import local_digest, must_copy, redaction_summary
from log_archiver.redaction.policy import scanner_of
from log_archiver.redaction.scan import planned_redaction
from log_archiver.repository import Repository
from log_archiver.search.archive_hook import archive_indexing
from log_archiver.util.hashing import prefixed

# The compressed copies an archive makes are not synced to disk: a copy never holds the
# only bytes of a log (the log is deleted only once its stored object is verified, and
# the copy with it), and a copy torn by a crash is caught by its checksum before it is
# stored (and made again). Most are deleted within seconds, never written out at all.
COPIES_DURABLE = False


def will_compress(name: str, size: int, config) -> bool:
    """Over the threshold, and with room in its name for a compressed copy (a smaller
    log is compressed too when it holds a secret: see :func:`compress`)."""
    return size > config.compress_threshold_bytes and fits_compressed(name, config.compression)


def compress(repo: Repository, files: list[Path], sizes: dict[Path, int] | None = None,
             *, indexing=None, durable: bool = True) -> tuple[list[StoredFile], list[dict]]:
    """Compress the files over the threshold and checksum the rest, on every core
    (``sizes``: the sizes collect found, so no file is looked at twice); each file's
    event is emitted as it completes. ``indexing``, ``durable``: as
    :func:`compress_quietly`."""
    sizes = sizes_of(files, sizes)
    repo.events.emit("files.planned", bytes=sum(sizes.values()), files=len(files),
                     step="compress")
    announce = partial(_announce_one, repo.events, repo.logs_dir, sizes)
    return compress_quietly(repo, files, sizes, on_file=announce, indexing=indexing,
                            durable=durable)


def sizes_of(files: list[Path], sizes: dict[Path, int] | None) -> dict[Path, int]:
    return {p: sizes[p] if sizes and p in sizes else p.stat().st_size for p in files}


def compress_quietly(repo: Repository, files: list[Path], sizes: dict[Path, int], *,
                     pool: Executor | None = None, on_file=None, indexing=None,
                     durable: bool = True) -> tuple[list[StoredFile], list[dict]]:
    """:func:`compress` without events (``on_file(source, result)`` is told of each file
    instead), on ``pool`` when one is given (a batch's, kept between issues): the work
    of :mod:`.ahead`, which may run it on a thread of its own. ``indexing``: the search
    index's sinks (:func:`.search.archive_hook.archive_indexing`), flushed and closed by
    the caller, who need not wait for them here; without it, this call makes and closes
    its own. ``durable=False``: the copies are not synced to disk (see
    :data:`COPIES_DURABLE`)."""
    config = repo.config
    big = [p for p in files if will_compress(p.name, sizes[p], config)]
    chosen = set(big)
    small = [p for p in files if p not in chosen]
    results: dict[Path, StoredFile] = {}
    errors: list[dict] = []
    keep = partial(_keep_one, results, errors, on_file or (lambda source, result: None))
    scanner = scanner_of(config)
    owned = indexing is None
    if owned:  # the search index, built from the blocks as they pass
        indexing = archive_indexing(repo)
    sink = indexing.open if indexing else lambda source: None
    with nullcontext(pool) if pool is not None else repo.pool("compress", config.workers) \
            as pool:
        hashed = [pool.submit(hash_as_is, p, scanner, sink(p)) for p in small]
        _compress_each(config, pool, big, scanner, indexing, keep, durable)
        redacted = []  # small logs with secrets: stored from a redacted copy of their own
        for source, future in zip(small, hashed, strict=True):
            try:
                result = future.result()
            except ArchiveError as error:
                result = error
            if isinstance(result, StoredFile) and must_copy(result.redaction):
                redacted.append(source)
                continue
            keep(source, result)
        _compress_each(config, pool, redacted, scanner, indexing, keep, durable)
    if indexing and owned:
        indexing.close()
    return [results[p] for p in files if p in results], errors


def announce_compressed(repo: Repository, files: list[Path], sizes: dict[Path, int],
                        stored: list[StoredFile], errors: list[dict]) -> None:
    """The events :func:`compress` emits, for results made earlier (by :mod:`.ahead`)."""
    events = repo.events
    events.emit("files.planned", bytes=sum(sizes.values()), files=len(files), step="compress")
    if not events.listening:
        return
    by_source = {s.source: s for s in stored}
    failed = {Path(error["file"]): error for error in errors}
    for source in files:
        if source in by_source:
            _announce_one(events, repo.logs_dir, sizes, source, by_source[source])
        elif source in failed:
            error = failed[source]
            events.emit("file.failed", path=relative_to_logs(str(source), repo.logs_dir),
                        bytes=sizes.get(source, 0), step="compress",
                        error={"type": error["type"], "message": error["message"]})


def _compress_each(config, pool, sources: list[Path], scanner, indexing, keep,
                   durable: bool) -> None:
    if config.compression == "gzip":
        for source, result in gzip_many(sources, config.compression_level, pool,
                                        scanner=scanner,
                                        observe=indexing.open if indexing else None,
                                        durable=durable):
            keep(source, result)
        return
    for source in sources:
        try:
            result = zstd_one(source, config.compression_level,
                              min(config.workers, ZSTD_THREADS), scanner,
                              indexing.open(source) if indexing else None, durable)
        except ArchiveError as error:
            result = error
        keep(source, result)


def _keep_one(results, errors, on_file, source, result) -> None:
    if isinstance(result, StoredFile):
        results[source] = result
    elif isinstance(result, ArchiveError):
        errors.append({"file": str(source), **result.to_dict()})
    else:
        raise result
    on_file(source, result)


def _announce_one(events, logs_dir, sizes, source, result) -> None:
    if not events.listening:
        return
    name = relative_to_logs(str(source), logs_dir)
    if isinstance(result, StoredFile):
        events.emit("file.compressed" if result.compression else "file.hashed", path=name,
                    bytes=result.original_size, stored_bytes=result.size,
                    compression=result.compression)
    else:
        events.emit("file.failed", path=name, bytes=sizes.get(source, 0), step="compress",
                    error={"type": result.type, "message": result.message})


def prepare(repo: Repository, issue: int, *, reason: str = "manual", force: bool = False,
            title: str | None = None, url: str | None = None, allow_empty: bool = False,
            collected: tuple[list[FoundLog], list] | None = None,
            labels: list[str] | None = None, ahead=None, indexing=None) -> dict:
    """Collect, compress and record the upload plan (every new record ``pending``).

    No logs and no entry yet: nothing is recorded, unless ``allow_empty``. ``ahead``: a
    batch's :class:`.ahead.CompressAhead`, which may have compressed the logs already;
    ``indexing``: as :func:`compress_quietly`."""
    found, skipped = collected or collect(repo, issue)
    entry = repo.index.find(issue)
    done = {log["local_path"]: log for log in (entry or {}).get("logs", [])
            if states.is_settled(log)}  # an expired log is not archived again by itself
    to_prepare = [f for f in found if force or f.relative not in done]
    unchanged = [f.relative for f in found if f.relative in done and not force]
    changed = [] if force else changed_since_archived(entry, found, repo.config)
    result = {"issue_number": issue, "found": [f.relative for f in found],
              "skipped": [vars(s) for s in skipped], "already_stored": unchanged,
              "changed": changed,
              "errors": [], "files": []}
    if not found and entry is None and not allow_empty:
        result["message"] = f"no logs of issue #{issue} found under {repo.logs_dir}"
        return result
    if repo.dry_run:
        result["files"] = [{"local_path": f.relative, "type": f.type, "size_bytes": f.size,
                            "compress": will_compress(f.path.name, f.size, repo.config)}
                           for f in to_prepare]
        result["redaction"] = planned_redaction(repo.config, [(f.relative, f.path)
                                                              for f in to_prepare],
                                                scanner_of(repo.config))
        return result
    result["stale_temps_removed"] = remove_stale_temps(repo.logs_dir)
    repo.events.emit("stage", issue=issue, stage="compressing")
    files, sizes = [f.path for f in to_prepare], {f.path: f.size for f in to_prepare}
    made = ahead.take(issue, to_prepare) if ahead is not None else None
    if made is None:
        stored, errors = compress(repo, files, sizes, indexing=indexing,
                                  durable=COPIES_DURABLE)
    else:
        stored, errors = made
        announce_compressed(repo, files, sizes, stored, errors)
    result["errors"] = errors
    result["redaction"] = redaction_summary(repo.config, [
        (relative_to_logs(str(s.source), repo.logs_dir), s.redaction) for s in stored])
    by_source = {s.source: s for s in stored}
    fresh = [prepared_record_of(f, by_source[f.path], repo.logs_dir)
             for f in to_prepare if f.path in by_source]
    with repo.index.transaction() as txn:
        current = txn.get(issue)
        created = current is None
        if created:
            current = new_entry(issue, reason, repo.store.url, title=title, url=url)
        before = {key: current.get(key) for key in _HEADER_KEYS}
        if force:
            current["archive_reason"] = reason
            current["storage_url"] = repo.store.url  # --force may move an entry's store
        if title:
            current["issue_title"] = title
        if url:
            current["issue_url"] = url
        if labels is not None:  # retention rules by label read them
            current["labels"] = labels
        _note_unprepared(current, errors)
        merge_records(current, fresh)
        header_changed = any(current.get(key) != value for key, value in before.items())
        if fresh or header_changed or created:
            txn.put(current)
        planned = {r["local_path"] for r in fresh}
        result["files"] = [log for log in current["logs"] if log["local_path"] in planned]
        result["entry_created"] = current["archived_at"]
    remove_replaced_copies(repo.logs_dir, (entry or {}).get("logs", []), fresh)
    return result


_HEADER_KEYS = ("archive_reason", "issue_title", "issue_url", "partial_reason", "storage_url",
                "labels")
UNPREPARED = "not prepared: "


def _note_unprepared(entry: dict, errors: list[dict]) -> None:
    """A log that could not be compressed or read makes the entry partial until a later
    run prepares it (a reason a person gave with mark-partial-archive is left alone)."""
    reason = entry.get("partial_reason") or ""
    if errors:
        if not reason or reason.startswith(UNPREPARED):
            first = errors[0]
            entry["partial_reason"] = (f"{UNPREPARED}{len(errors)} log(s), first "
                                       f"{first.get('file')}: {first.get('message')}")
    elif reason.startswith(UNPREPARED):
        entry["partial_reason"] = None


def changed_since_archived(entry: dict | None, found: list[FoundLog], config=None
                           ) -> list[str]:
    """The logs on disk whose stored record holds other bytes: grown, shrunk, rewritten,
    or recreated under an archived name after cleanup (a redacted log is redacted again
    and compared with the redacted bytes its record describes)."""
    stored = {log["local_path"]: log for log in (entry or {}).get("logs", [])
              if states.is_settled(log)}
    changed = []
    for log in found:
        record = stored.get(log.relative)
        if record is None:
            continue
        if log.size != record["original_size_bytes"] \
                or prefixed(local_digest(log.path, record, config)) \
                != record["original_checksum"]:
            changed.append(log.relative)
    return changed


def prepared_record_of(found: FoundLog, stored: StoredFile, logs_dir: Path) -> dict:
    return prepared_record(
        log_type=found.type, local_path=found.relative,
        stored_path=stored.path.relative_to(logs_dir).as_posix(),
        stored_name=stored_name(found.path.name, stored.compression),
        size=stored.size, original_size=stored.original_size, compression=stored.compression,
        sha256=stored.sha256, original_sha256=stored.original_sha256, mtime=found.mtime,
        duration_seconds=_session_seconds(found), blocks=stored.blocks,
        redaction=stored.redaction)


def _session_seconds(found: FoundLog) -> int | None:
    """Kept in the index so the comment can say it once the log itself is cleaned up."""
    if found.type != "session":
        return None
    duration = session_duration(found.path)
    return int(duration.total_seconds()) if duration is not None else None


def prepare_upload(repo: Repository, issue: int, *, reason: str = "manual",
                   pr: int | None = None, force: bool = False) -> dict:
    """``prepare-upload``: check the reason on GitHub as archive does, then :func:`prepare`."""
    from log_archiver.archive.trigger import check_reason

    checked: dict = {"warnings": []}
    info = check_reason(repo, issue, reason, pr, force, checked)
    plan = prepare(repo, issue, reason=reason, force=force, title=info.get("title"),
                   url=info.get("url"), labels=info.get("labels"))
    # as in archive: a log that could not be prepared makes the run partial, not failed
    status = "partial" if plan["errors"] else ("ok" if plan["files"] else "noop")
    result = {"status": status, "storage_url": repo.config.storage, **plan,
              "warnings": checked["warnings"]}
    if plan["errors"]:
        result["failed_files"] = [relative_to_logs(error["file"], repo.logs_dir)
                                  for error in plan["errors"]]
    return result


def relative_to_logs(path: str, logs_dir: Path) -> str:
    """A path as the index writes it (relative to the logs dir), when it lies inside."""
    try:
        return Path(path).relative_to(logs_dir).as_posix()
    except ValueError:
        return str(path)

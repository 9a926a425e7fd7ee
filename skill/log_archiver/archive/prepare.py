"""The archive workflow, one function a step; ``archive`` runs them all in order.

validate -> collect -> compress -> prepare -> upload -> update index -> comment
-> clean local -> commit index -> summary. Every step is safe to run again: after
success it changes nothing, after a crash it finishes the job.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property, partial
from pathlib import Path

from log_archiver.archive.collect import FoundLog, collect_logs
from log_archiver.archive.compress import StoredFile, gzip_many, hash_as_is, zstd_one
from log_archiver.config import Config
from log_archiver.errors import ArchiveError, UsageError
from log_archiver.events import Events
from log_archiver.index.file import STORED_STATES, ArchiveIndex
from log_archiver.model.records import log_record, merge_records, new_entry
from log_archiver.util.retry import RetryPolicy

REASONS = ("issue_closed", "pr_merged", "manual", "retention")


@dataclass
class Context:
    config: Config
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    dry_run: bool = False

    @cached_property
    def index(self) -> ArchiveIndex:
        return ArchiveIndex(self.config.index_path)

    @cached_property
    def store(self):
        from log_archiver.storage import open_store

        return open_store(self.config.storage, self.config)

    @property
    def logs_dir(self) -> Path:
        return self.config.logs_dir


def check_logs_dir(config: Config) -> None:
    if not config.logs_dir.is_dir():
        raise UsageError(f"logs dir {config.logs_dir} does not exist",
                         "set LOG_ARCHIVER_LOGS_DIR or logs_dir in .log-archiver.json")


def collect(ctx: Context, issue: int) -> tuple[list[FoundLog], list]:
    check_logs_dir(ctx.config)
    found, skipped = collect_logs(ctx.logs_dir, issue)
    entry = _entry_or_none(ctx, issue)
    if entry is not None:  # compressed copies we made are not logs of their own
        artifacts = {log["stored_path"] for log in entry["logs"] if log["compressed"]}
        found = [log for log in found if log.relative not in artifacts]
    return found, skipped


def _entry_or_none(ctx: Context, issue: int) -> dict | None:
    return ctx.index.find(issue)


def compress(ctx: Context, files: list[Path], *, events: Events | None = None
             ) -> tuple[list[StoredFile], list[dict]]:
    """Compress the files over the threshold and checksum the rest, on every core."""
    config = ctx.config
    sizes = {p: p.stat().st_size for p in files}
    big = [p for p in files if sizes[p] > config.compress_threshold_bytes]
    small = [p for p in files if p not in set(big)]
    results: dict[Path, StoredFile] = {}
    errors: list[dict] = []
    events = events or Events()
    events.emit("files.planned", bytes=sum(sizes.values()), files=len(files), step="compress")
    _keep = partial(_keep_one, events, ctx.logs_dir, sizes)
    with ThreadPoolExecutor(max_workers=config.workers) as pool:
        hashed = [pool.submit(hash_as_is, p) for p in small]
        if config.compression == "gzip":
            for source, result in gzip_many(big, config.compression_level, pool):
                _keep(results, errors, source, result)
        else:
            for source in big:
                try:
                    result = zstd_one(source, config.compression_level, config.workers)
                except ArchiveError as error:
                    result = error
                _keep(results, errors, source, result)
        for source, future in zip(small, hashed, strict=True):
            try:
                _keep(results, errors, source, future.result())
            except ArchiveError as error:
                _keep(results, errors, source, error)
    return [results[p] for p in files if p in results], errors


def _keep_one(events, logs_dir, sizes, results, errors, source, result) -> None:
    if isinstance(result, StoredFile):
        results[source] = result
    elif isinstance(result, ArchiveError):
        errors.append({"file": str(source), **result.to_dict()})
    else:
        raise result
    if not events.listening:
        return
    name = source.relative_to(logs_dir).as_posix() if source.is_relative_to(logs_dir) \
        else str(source)
    if isinstance(result, StoredFile):
        events.emit("file.compressed" if result.compression else "file.hashed", path=name,
                    bytes=result.original_size, stored_bytes=result.size,
                    compression=result.compression)
    else:
        events.emit("file.failed", path=name, bytes=sizes.get(source, 0), step="compress",
                    error={"type": result.type, "message": result.message})


def prepare(ctx: Context, issue: int, *, reason: str = "manual", force: bool = False,
            title: str | None = None, url: str | None = None,
            events: Events | None = None) -> dict:
    """Collect, compress and record the upload plan (every new record ``pending``)."""
    found, skipped = collect(ctx, issue)
    entry = _entry_or_none(ctx, issue)
    done = {log["local_path"]: log for log in (entry or {}).get("logs", [])
            if log["upload_status"] in STORED_STATES}
    to_prepare = [f for f in found if force or f.relative not in done]
    unchanged = [f.relative for f in found if f.relative in done and not force]
    result = {"issue_number": issue, "found": [f.relative for f in found],
              "skipped": [vars(s) for s in skipped], "already_stored": unchanged,
              "errors": [], "files": []}
    if ctx.dry_run:
        result["files"] = [{"local_path": f.relative, "type": f.type, "size_bytes": f.size,
                            "compress": f.size > ctx.config.compress_threshold_bytes}
                           for f in to_prepare]
        return result
    from log_archiver.archive.collect import remove_stale_temps

    result["stale_temps_removed"] = remove_stale_temps(ctx.logs_dir)
    if events is not None:
        events.emit("stage", issue=issue, stage="compressing")
    stored, errors = compress(ctx, [f.path for f in to_prepare], events=events)
    result["errors"] = errors
    by_source = {s.source: s for s in stored}
    fresh = [log_record(f, by_source[f.path], ctx.logs_dir)
             for f in to_prepare if f.path in by_source]
    with ctx.index.transaction() as txn:
        current = txn.entry(issue)
        if current is None:
            current = new_entry(issue, reason, ctx.store.url, title=title, url=url)
        before = {key: current.get(key) for key in _HEADER_KEYS}
        if force:
            current["archive_reason"] = reason
            current["storage_url"] = ctx.store.url  # --force may move an entry's store
        if title:
            current["issue_title"] = title
        if url:
            current["issue_url"] = url
        _note_unprepared(current, errors)
        merge_records(current, fresh)
        header_changed = any(current.get(key) != value for key, value in before.items())
        if fresh or header_changed or txn.entry(issue) is None:
            txn.put(current)
        planned = {r["local_path"] for r in fresh}
        result["files"] = [log for log in current["logs"] if log["local_path"] in planned]
        result["entry_created"] = current["archived_at"]
    return result


_HEADER_KEYS = ("archive_reason", "issue_title", "issue_url", "partial_reason", "storage_url")
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


def archive_state(entry: dict | None) -> str:
    """``none``, ``incomplete`` (uploads to do), ``stored`` (local files left) or ``done``."""
    if entry is None:
        return "none"
    if not entry["upload_complete"] or entry["partial_archive"]:
        return "incomplete"
    if any(log["upload_status"] != "cleaned" for log in entry["logs"]):
        return "stored"
    return "done"

"""``archive ISSUE --reindex-only``: rebuild one issue's index entry from the store and disk.

For when the uploads went through but the index does not say so (its update failed, or
it was restored from an older copy). What the store holds under
``archive/logs/YYYY/MM/ISSUE/`` and what is left under the logs dir decide each record:

- a local log whose stored object holds its bytes -> ``verified`` (cleanup may free it);
- a stored object whose log is gone locally -> ``cleaned``, described by the object's
  metadata (objects without it, or whose metadata does not fit their key, are described
  by their name and bytes: :mod:`log_archiver.archive.stored_objects`);
- a local log the store does not hold -> ``pending`` and the entry partial, so
  ``archive ISSUE --retry`` uploads just those;
- a local log that differs from its stored object (it grew after archiving) -> the stored
  version is recorded and cleanup keeps the local file, as after any archive;
- a log of the entry neither stored nor on disk -> kept, marked ``lost``.

The store is read and the local logs hashed and compressed with no lock held; only then
does a transaction apply the result, if the entry is still the one the survey started
from. If another run changed it meanwhile the survey is made once more, then the run
fails (retryable) rather than overwrite what that run wrote.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from log_archiver.archive.collect import FoundLog, collect_logs
from log_archiver.archive.compress import StoredFile, hash_as_is
from log_archiver.archive.stored_objects import describe, issue_objects, unpacked_digest
from log_archiver.errors import ArchiveError, LocalFileError, UsageError
from log_archiver.model import keys, states
from log_archiver.model.copies import copy_relative
from log_archiver.model.records import merge_records, new_entry, stored_record
from log_archiver.redaction.identity import identity_scanner, must_copy
from log_archiver.repository import Repository
from log_archiver.retrieve.blocks import recover as recover_blocks
from log_archiver.storage import ObjectInfo, Store
from log_archiver.util.clock import from_timestamp, now_iso
from log_archiver.util.hashing import prefixed

_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
SURVEYS = 2  # the first, and one more if another run changed the entry meanwhile


class EntryChangedError(ArchiveError):
    """Another run kept changing the entry while the store was read."""

    type = "index_locked"
    retryable = True


@dataclass
class ReindexReport:
    objects: int = 0
    local_logs: int = 0
    verified: list[str] = field(default_factory=list)
    cleaned: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    extra_objects: list[str] = field(default_factory=list)


@dataclass
class Survey:
    """What the store and the logs dir hold for one issue, read with no lock held."""

    report: ReindexReport
    chosen: list[tuple[str, ObjectInfo, dict, str, str]]  # path, object, log, stored, status
    local: dict[str, FoundLog]
    todo: list[FoundLog]       # local logs the store does not hold
    prepared: list[dict]       # their pending records
    ignored: list[str]         # keys no log can have


def reindex(ctx: Repository, issue: int) -> dict:
    """Rebuild the entry of ``issue``; returns the JSON payload (``status`` included)."""
    ctx.check_logs_dir()
    result: dict = {"issue_number": issue, "index_path": str(ctx.index.path),
                    "storage_url": ctx.store.url, "warnings": [], "errors": []}
    for _attempt in range(SURVEYS):
        old = ctx.index.find(issue)
        _same_store(old, ctx.store.url, issue)
        survey = _survey(ctx, issue)
        entry, report = _rebuilt(ctx, issue, old, survey)
        if ctx.dry_run:
            changed = True
            break
        applied = _apply(ctx, issue, old, entry)
        if applied is not None:
            entry, changed = applied
            if changed:
                ctx.events.emit("index.repaired", issue=issue,
                                bytes=entry["total_size_bytes"], op="reindex",
                                outcome="partial" if report.pending or report.missing else "ok",
                                logs=entry["total_logs"], verified=len(report.verified),
                                cleaned=len(report.cleaned), pending=len(report.pending))
            break
    else:
        raise EntryChangedError(
            f"the index entry of issue {issue} was changed by another run while the store "
            "was read, twice; it was not rebuilt",
            f"wait for the other run to finish, then run `log-archiver archive {issue} "
            "--reindex-only` again")
    result["reindex"] = vars(report)
    result["files"] = [{key: log[key] for key in ("local_path", "remote_path", "upload_status")}
                       for log in entry["logs"]]
    if ctx.dry_run:  # the keys of logs still to upload are decided when they are prepared
        for item in result["files"]:
            if item["local_path"] in report.pending:
                item["remote_path"] = None
    if not ctx.dry_run:
        result["entry"] = {key: entry[key] for key in (
            "issue_number", "archived_at", "total_logs", "total_size_bytes", "partial_archive",
            "upload_complete")}
    _warn(ctx, issue, report, survey, result["warnings"])
    if report.pending or report.missing:
        result["status"] = "partial"
        result["hint"] = (f"run `log-archiver archive {issue} --retry` to upload the logs "
                          "still to store")
    else:
        result["status"] = "ok" if changed else "noop"
    return result


def _apply(ctx: Repository, issue: int, old: dict | None,
           entry: dict) -> tuple[dict, bool] | None:
    """Write the rebuilt entry if the index still holds ``old``; None if it changed."""
    with ctx.index.transaction() as txn:
        current = txn.get(issue)
        if current != old:
            return None
        changed = old is None or _comparable(old) != _comparable(entry)
        if not changed:
            return current, False
        txn.put(entry)
        return entry, True


def _warn(ctx: Repository, issue: int, report: ReindexReport, survey: Survey,
          warnings: list[str]) -> None:
    for name in report.changed:
        warnings.append(f"{name} differs from its stored copy (it changed after "
                        "archiving); it is kept: re-archive it with --force")
    for name in report.missing:
        warnings.append(f"{name} was in the entry but is neither stored nor on disk; "
                        "it stays in the entry, marked lost: put the file back "
                        f"under {ctx.logs_dir} and run `log-archiver archive {issue} --retry`")
    for key in report.extra_objects:
        warnings.append(f"{ctx.store.url_for(key)} holds another copy of a log "
                        "recorded from another object; left alone")
    for key in survey.ignored:
        warnings.append(f"{ctx.store.url_for(key)!r} has a name no log can have; left alone")


def _same_store(old: dict | None, url: str, issue: int) -> None:
    """An entry is rebuilt only from the store it was archived to: never from another."""
    if old is not None and old["storage_url"] != url:
        raise UsageError(
            f"issue {issue} was archived to {old['storage_url']}, not to {url}",
            f"run `log-archiver archive {issue} --reindex-only --storage {old['storage_url']}`")


def _comparable(entry: dict) -> tuple:
    return entry["logs"], entry.get("partial_reason"), entry["archived_at"]


def _survey(ctx: Repository, issue: int) -> Survey:
    """Read the store and hash (and compress) the local logs: the slow part, unlocked."""
    store, logs_dir = ctx.store, ctx.logs_dir
    report = ReindexReport()
    workers = max(1, ctx.config.upload_concurrency)
    objects, ignored = issue_objects(store, issue, workers)
    found, _skipped = collect_logs(logs_dir, issue)
    scanner = identity_scanner(ctx.config)  # a redacted object holds the redacted bytes
    with ThreadPoolExecutor(max_workers=workers) as pool:
        as_is = dict(zip([f.relative for f in found],
                         pool.map(lambda f: hash_as_is(f.path, scanner), found), strict=True))
    hashed = {path: stored.sha256 for path, stored in as_is.items()}
    local = {f.relative: f for f in found}
    report.objects, report.local_logs = len(objects), len(found)

    by_path: dict[str, tuple[ObjectInfo, dict]] = {}
    for info in objects:
        described = describe(store, info, issue, local, logs_dir)
        path = described["local_path"]
        if path in as_is and must_copy(as_is[path].redaction) \
                and described["original_sha256"] == hashed[path]:
            described.update(redaction=as_is[path].redaction, original_size=local[path].size)
        rival = by_path.get(path)
        if rival is None or _better(info, described, rival, hashed.get(path)):
            if rival is not None:
                report.extra_objects.append(rival[0].key)
            by_path[path] = (info, described)
        else:
            report.extra_objects.append(info.key)

    chosen, consumed = [], set()
    for path, (info, described) in sorted(by_path.items()):
        stored_path = copy_relative(path, described["compression"], local)
        if path in local and described["original_sha256"] == hashed[path] \
                and not _holds(store, info, described, hashed[path], logs_dir):
            report.extra_objects.append(info.key)  # its metadata claims a log it does not hold
            continue
        if path in local:
            consumed.add(path)
            status = states.VERIFIED
            if described["original_sha256"] != hashed[path]:
                report.changed.append(path)
        elif stored_path in local and hashed[stored_path] == info.sha256:
            consumed.add(stored_path)  # only the compressed copy is left: ours to clean
            status = states.VERIFIED
        else:
            status = states.CLEANED
        (report.verified if status == states.VERIFIED else report.cleaned).append(path)
        chosen.append((path, info, described, stored_path, status))
    todo = [f for f in found if f.relative not in consumed]
    report.pending = [f.relative for f in todo]
    prepared = _prepare(ctx, todo, as_is)
    return Survey(report, chosen, local, todo, prepared, ignored)


def _holds(store: Store, info: ObjectInfo, described: dict, sha256: str, scratch) -> bool:
    """Whether the object's bytes are the log's (decompressed, for a compressed one): what
    its metadata says is only believed once the bytes agree, since a ``verified`` record
    lets cleanup delete the log."""
    if described["compression"] is None:
        return info.sha256 == sha256
    unpacked = unpacked_digest(store, info, described["compression"], scratch)
    return unpacked is not None and unpacked[0] == sha256


def _rebuilt(ctx: Repository, issue: int, old: dict | None,
             survey: Survey) -> tuple[dict, ReindexReport]:
    """The entry the survey describes, built on ``old`` (no I/O: cheap to do again)."""
    store = ctx.store
    report = survey.report
    old_logs = {log["local_path"]: log for log in (old or {}).get("logs", [])}
    records = [_stored_record(store, info, described, stored_path, status,
                              old_logs.get(path), survey.local.get(path))
               for path, info, described, stored_path, status in survey.chosen]
    entry = dict(old) if old else new_entry(issue, "manual", store.url)
    entry["archived_at"] = _archived_at(old, [info for _p, info, *_rest in survey.chosen])
    entry["partial_reason"] = None
    entry["logs"] = records + [old_logs[f.relative] for f in survey.todo
                               if f.relative in old_logs]
    merge_records(entry, [dict(record) for record in survey.prepared])
    kept = {log["local_path"] for log in entry["logs"]}
    report.missing = sorted(set(old_logs) - kept)
    for path in report.missing:  # kept, and marked: the index is all that says it existed
        log = old_logs[path]
        lost = f"lost: not at {log['cloud_url'] or log['remote_path']} and not on disk"
        if (log["upload_status"], log["last_error"]) != (states.LOST, lost):
            log = states.transition(dict(log), states.LOST, upload_timestamp=now_iso(),
                                    last_error=lost)
        entry["logs"].append(log)
    entry["logs"].sort(key=lambda log: log["local_path"])
    return entry, report


def _better(info: ObjectInfo, described: dict, rival: tuple[ObjectInfo, dict],
            local_sha: str | None) -> bool:
    """Two objects for one log: the one holding the local bytes, else the newer folder."""
    matches = described["original_sha256"] == local_sha
    rival_matches = rival[1]["original_sha256"] == local_sha
    if matches != rival_matches:
        return matches
    return info.key > rival[0].key


def _archived_at(old: dict | None, objects: list[ObjectInfo]) -> str:
    """Keep the entry's date; else one in the newest folder the objects are in."""
    if old is not None:
        return old["archived_at"]
    if not objects:
        return now_iso()
    months = {info.key: _month(info.key) for info in objects}
    newest = max(months.values())
    times = [info.modified for info in objects
             if info.modified and months[info.key] == newest]
    stamp = from_timestamp(min(times)) if times else None
    if stamp and (stamp[:4], stamp[5:7]) == newest:
        return stamp
    return f"{newest[0]}-{newest[1]}-01T00:00:00Z"


def _month(key: str) -> tuple[str, str]:
    parsed = keys.parse_key(key)
    return parsed.year, parsed.month


def _stored_record(store: Store, info: ObjectInfo, described: dict, stored_path: str,
                   status: str, old: dict | None, found: FoundLog | None) -> dict:
    checksum = prefixed(info.sha256)
    if old is not None and old["remote_path"] == info.key and old["checksum"] == checksum \
            and old["stored_path"] == stored_path:
        return states.adopt({**old, "last_error": None, "cloud_url": store.url_for(info.key),
                             "public_url": store.public_url_for(info.key)}, status)
    stamp = from_timestamp(info.modified) if info.modified else now_iso()
    blocks = recover_blocks(store.get_range, info.key, info.size) \
        if described["compression"] == "gzip" else None
    created = described.get("created")
    if not (created and _ISO.match(created)):
        created = from_timestamp(found.mtime) if found else stamp
    return stored_record(
        log_type=described["type"], local_path=described["local_path"],
        stored_path=stored_path, key=info.key, size=info.size, sha256=info.sha256,
        original_size=described["original_size"], original_sha256=described["original_sha256"],
        compression=described["compression"], created=created, stamp=stamp, status=status,
        redaction=described.get("redaction"),
        cloud_url=store.url_for(info.key), public_url=store.public_url_for(info.key),
        upload_attempt=old["upload_attempt"] if old else 1, blocks=blocks)


def _prepare(ctx: Repository, todo: list[FoundLog],
             as_is: dict[str, StoredFile]) -> list[dict]:
    """Pending records for local logs the store does not hold, compressed as archive does
    (a dry run writes nothing: its records stand for the logs as they are)."""
    from log_archiver.archive.prepare import compress, prepared_record_of

    if ctx.dry_run:
        return [prepared_record_of(f, as_is[f.relative], ctx.logs_dir) for f in todo]
    stored, errors = compress(ctx, [f.path for f in todo])
    if errors:
        first = errors[0]
        raise LocalFileError(f"cannot prepare {first['file']}: {first['message']}",
                             first.get("hint") or "fix the file and run again")
    by_source = {s.source: s for s in stored}
    return [prepared_record_of(f, by_source[f.path], ctx.logs_dir) for f in todo]

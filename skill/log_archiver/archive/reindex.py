"""``archive ISSUE --reindex-only``: rebuild one issue's index entry from the store and disk.

For when the uploads went through but the index does not say so (its update failed, or
it was restored from an older copy). What the store holds under
``archive/logs/YYYY/MM/ISSUE/`` and what is left under the logs dir decide each record:

- a local log whose stored object holds its bytes -> ``verified`` (cleanup may free it);
- a stored object whose log is gone locally -> ``cleaned``, described by the object's
  metadata (objects without it are downloaded and read once);
- a local log the store does not hold -> ``pending`` and the entry partial, so
  ``archive ISSUE --retry`` uploads just those;
- a local log that differs from its stored object (it grew after archiving) -> the stored
  version is recorded and cleanup keeps the local file, as after any archive.

It all runs inside one index transaction: no other run changes the index meanwhile.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from log_archiver.archive.collect import FoundLog, collect_logs
from log_archiver.archive.compress import SUFFIX, hash_as_is
from log_archiver.errors import UsageError
from log_archiver.model import keys, states
from log_archiver.model.issues import prefixed_matches
from log_archiver.model.object_metadata import FOLDERS, described_log
from log_archiver.model.records import merge_records, new_entry, stored_record
from log_archiver.repository import Repository
from log_archiver.storage import ObjectInfo, Store, proven_head
from log_archiver.util.clock import from_timestamp, now_iso
from log_archiver.util.fsutil import temp_path_for
from log_archiver.util.hashing import prefixed

_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
BY_SUFFIX = {suffix: name for name, suffix in SUFFIX.items()}


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


def reindex(ctx: Repository, issue: int) -> dict:
    """Rebuild the entry of ``issue``; returns the JSON payload (``status`` included)."""
    ctx.check_logs_dir()
    result: dict = {"issue_number": issue, "index_path": str(ctx.index.path),
                    "storage_url": ctx.store.url, "warnings": [], "errors": []}
    if ctx.dry_run:
        old = ctx.index.find(issue)
        _same_store(old, ctx.store.url, issue)
        entry, report = _rebuild(ctx, issue, old)
        changed = True
    else:
        with ctx.index.transaction() as txn:
            old = txn.get(issue)
            _same_store(old, ctx.store.url, issue)
            entry, report = _rebuild(ctx, issue, old)
            changed = old is None or _comparable(old) != _comparable(entry)
            if changed:
                txn.put(entry)
            entry = txn.get(issue)
    result["reindex"] = vars(report)
    result["files"] = [{key: log[key] for key in ("local_path", "remote_path", "upload_status")}
                       for log in entry["logs"]]
    if not ctx.dry_run:
        result["entry"] = {key: entry[key] for key in (
            "issue_number", "archived_at", "total_logs", "total_size_bytes", "partial_archive",
            "upload_complete")}
    for name in report.changed:
        result["warnings"].append(f"{name} differs from its stored copy (it changed after "
                                  "archiving); it is kept: re-archive it with --force")
    for name in report.missing:
        result["warnings"].append(f"{name} was in the entry but is neither stored nor on disk; "
                                  "it stays in the entry, marked lost: put the file back "
                                  f"under {ctx.logs_dir} and run "
                                  f"`log-archiver archive {issue} --retry`")
    for key in report.extra_objects:
        result["warnings"].append(f"{ctx.store.url_for(key)} holds another copy of a log "
                                  "recorded from another object; left alone")
    if report.pending or report.missing:
        result["status"] = "partial"
        result["hint"] = (f"run `log-archiver archive {issue} --retry` to upload the logs "
                          "still to store")
    else:
        result["status"] = "ok" if changed else "noop"
    return result


def _same_store(old: dict | None, url: str, issue: int) -> None:
    """An entry is rebuilt only from the store it was archived to: never from another."""
    if old is not None and old["storage_url"] != url:
        raise UsageError(
            f"issue {issue} was archived to {old['storage_url']}, not to {url}",
            f"run `log-archiver archive {issue} --reindex-only --storage {old['storage_url']}`")


def _comparable(entry: dict) -> tuple:
    return entry["logs"], entry.get("partial_reason"), entry["archived_at"]


def _rebuild(ctx, issue: int, old: dict | None) -> tuple[dict, ReindexReport]:
    store, logs_dir, config = ctx.store, ctx.logs_dir, ctx.config
    report = ReindexReport()
    workers = max(1, config.upload_concurrency)
    objects = _stored_objects(store, issue, workers)
    found, _skipped = collect_logs(logs_dir, issue)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        hashed = dict(zip([f.relative for f in found],
                          pool.map(lambda f: hash_as_is(f.path).sha256, found), strict=True))
    local = {f.relative: f for f in found}
    report.objects, report.local_logs = len(objects), len(found)

    chosen: dict[str, tuple[ObjectInfo, dict]] = {}
    for info in objects:
        described = described_log(info.metadata, info.sha256) or _describe_from_name(
            store, info, issue, local, logs_dir)
        path = described["local_path"]
        rival = chosen.get(path)
        if rival is None or _better(info, described, rival, hashed.get(path)):
            if rival is not None:
                report.extra_objects.append(rival[0].key)
            chosen[path] = (info, described)
        else:
            report.extra_objects.append(info.key)

    old_logs = {log["local_path"]: log for log in (old or {}).get("logs", [])}
    records, consumed = [], set()
    for path, (info, described) in sorted(chosen.items()):
        suffix = SUFFIX.get(described["compression"] or "", "")
        stored_path = path + suffix
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
        records.append(_stored_record(store, info, described, stored_path, status,
                                      old_logs.get(path), local.get(path)))

    entry = dict(old) if old else new_entry(issue, "manual", store.url)
    entry["archived_at"] = _archived_at(old, [info for info, _ in chosen.values()])
    entry["partial_reason"] = None
    todo = [f for f in found if f.relative not in consumed]
    entry["logs"] = records + [old_logs[f.relative] for f in todo if f.relative in old_logs]
    report.pending = [f.relative for f in todo]
    if ctx.dry_run:
        entry["logs"] = records + [_pending_stub(f) for f in todo]
    else:
        merge_records(entry, _prepare(ctx, todo))
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


def _stored_objects(store: Store, issue: int, workers: int) -> list[ObjectInfo]:
    """Every object under ``archive/logs/*/*/ISSUE/``, with its checksum and metadata."""
    found = [info.key for info in store.list(keys.ROOT)
             if keys.issue_of_key(info.key) == issue]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        heads = list(pool.map(lambda key: proven_head(store, key), found))
    return [info for info in heads if info is not None]


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
    created = described.get("created")
    if not (created and _ISO.match(created)):
        created = from_timestamp(found.mtime) if found else stamp
    return stored_record(
        log_type=described["type"], local_path=described["local_path"],
        stored_path=stored_path, key=info.key, size=info.size, sha256=info.sha256,
        original_size=described["original_size"], original_sha256=described["original_sha256"],
        compression=described["compression"], created=created, stamp=stamp, status=status,
        cloud_url=store.url_for(info.key), public_url=store.public_url_for(info.key),
        upload_attempt=old["upload_attempt"] if old else 1)


def _prepare(ctx, todo: list[FoundLog]) -> list[dict]:
    """Pending records for local logs the store does not hold (compressed as archive does)."""
    from log_archiver.archive.prepare import compress, prepared_record_of

    stored, errors = compress(ctx, [f.path for f in todo])
    if errors:
        from log_archiver.errors import LocalFileError

        first = errors[0]
        raise LocalFileError(f"cannot prepare {first['file']}: {first['message']}",
                             first.get("hint") or "fix the file and run again")
    by_source = {s.source: s for s in stored}
    return [prepared_record_of(f, by_source[f.path], ctx.logs_dir) for f in todo]


def _pending_stub(found: FoundLog) -> dict:
    return {"local_path": found.relative, "remote_path": None, "upload_status": "pending"}


# -- objects without (trusted) metadata ----------------------------------------------


def _describe_from_name(store: Store, info: ObjectInfo, issue: int,
                        local: dict[str, FoundLog], logs_dir: Path) -> dict:
    """What an object holds, from its name and, when compressed, its decompressed bytes."""
    name = info.key.rsplit("/", 1)[1]
    base, dot, ext = name.rpartition(".")
    compression = BY_SUFFIX.get(f".{ext}") if dot else None
    if compression is None:
        base = name
    log_type, path = _owner(base, issue, local)
    original = (info.sha256, info.size)
    if compression is not None:
        unpacked = _unpacked_digest(store, info, compression, logs_dir)
        if unpacked is None:  # not really compressed: a log stored as it is
            compression, log_type, path = None, *_owner(name, issue, local)
        else:
            original = unpacked
    return {"type": log_type, "local_path": path, "original_sha256": original[0],
            "original_size": original[1], "compression": compression, "created": None}


def _owner(name: str, issue: int, local: dict[str, FoundLog]) -> tuple[str, str]:
    """The type and local path of the log stored as ``name`` (maybe ``TYPE-name``)."""
    for found in local.values():
        leaf = found.relative.rsplit("/", 1)[1]
        if name in (leaf, f"{found.type}-{leaf}"):
            return found.type, found.relative
    for log_type in ("build", "deployment", "debug"):
        rest = name.removeprefix(f"{log_type}-")
        if rest != name and prefixed_matches(rest, issue):
            return log_type, f"{FOLDERS[log_type]}/{rest}"
    if name.startswith("session-session-"):
        return "session", f"sessions/{name.removeprefix('session-')}"
    if prefixed_matches(name, issue):
        log_type = "deployment" if "deploy" in name else "debug" if "debug" in name else "build"
        return log_type, f"{FOLDERS[log_type]}/{name}"
    return "session", f"sessions/{name}"


def _unpacked_digest(store: Store, info: ObjectInfo, compression: str,
                     logs_dir: Path) -> tuple[str, int] | None:
    """SHA-256 and size of the decompressed object, or None if it does not decompress."""
    temp = temp_path_for(Path(logs_dir) / ".reindex")
    try:
        store.get(info.key, temp)
        return _decompressed_digest(temp, compression)
    finally:
        try:
            os.unlink(temp)
        except FileNotFoundError:
            pass


def _decompressed_digest(path: Path, compression: str) -> tuple[str, int] | None:
    import zlib

    import zstandard

    digest, size = hashlib.sha256(), 0
    try:
        with open(path, "rb") as raw:
            if compression == "gzip":
                reader = gzip.GzipFile(fileobj=raw)
            else:
                reader = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
            with reader:
                while block := reader.read(1 << 20):
                    digest.update(block)
                    size += len(block)
    except (gzip.BadGzipFile, EOFError, zlib.error, zstandard.ZstdError):
        return None
    return digest.hexdigest(), size


def reindex_summary(doc: dict) -> str:
    """The human summary of a reindex, for stderr."""
    issue = doc.get("issue_number")
    if doc["status"] == "error":
        return f"✗ Reindex of issue #{issue} failed"
    counts = doc["reindex"]
    verb = "would be rebuilt" if doc.get("dry_run") else (
        "unchanged" if doc["status"] == "noop" else "rebuilt")
    lines = [f"Index entry of issue #{issue} {verb} from {doc['storage_url']}",
             f"  Stored objects: {counts['objects']}, local logs: {counts['local_logs']}",
             f"  Verified (stored and local): {len(counts['verified'])}",
             f"  Cleaned (stored only): {len(counts['cleaned'])}",
             f"  Pending (local only): {len(counts['pending'])}"]
    if counts["missing"]:
        lines.append(f"  Missing (neither stored nor local): {len(counts['missing'])}")
    lines += [f"  Warning: {warning}" for warning in doc.get("warnings", [])]
    if doc.get("hint"):
        lines.append(f"  Next: {doc['hint']}")
    return "\n".join(lines)

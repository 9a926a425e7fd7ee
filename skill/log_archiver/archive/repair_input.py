"""Metadata given to ``update-index``, checked and completed before it reaches the index.

It may be the ``files`` list ``prepare-upload`` prints, a whole entry, or the shape the
workflow spec shows (``issue_number`` as a string, logs without ``stored_path``,
``original_size_bytes`` and the other fields this tool records). What can be derived is
filled in; anything else that breaks the schema is a usage error listing every problem
with its JSON path, raised before the index is touched.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from urllib.parse import unquote

from log_archiver.archive.compress import SUFFIX, copy_relative
from log_archiver.errors import UsageError
from log_archiver.model import states
from log_archiver.model.issues import parse_issue
from log_archiver.model.records import given_record, new_entry, recompute_entry
from log_archiver.util.paths import UnsafePath, confined

_COMPRESSION_OF = {suffix: name for name, suffix in SUFFIX.items()}
_MISSING = re.compile(r"'([^']+)' is a required property")


def entry_from_metadata(metadata, issue: int, storage_url: str, logs_dir: Path,
                        store_url: str | None = None) -> dict:
    """The complete entry of ``issue`` the metadata describes, or :class:`UsageError`.

    A ``cloud_url`` under ``storage_url`` (or ``store_url``, the same store as the store
    spells it) gives a missing ``remote_path``."""
    if isinstance(metadata, dict) and "logs" in metadata:
        entry = {**new_entry(issue, "manual", storage_url), **metadata}
        where = "$.logs"
        _check_issue_number(entry, issue)
    elif isinstance(metadata, list):
        entry = {**new_entry(issue, "manual", storage_url), "logs": metadata}
        where = "$"
    else:
        raise UsageError("metadata is neither an entry object with logs nor a list of logs",
                         "pass the files list printed by prepare-upload, or an entry object")
    entry["issue_number"] = issue
    if not isinstance(entry["logs"], list):
        _refuse([(where, "is not a list of logs")])
    problems = []
    logs = []
    for position, record in enumerate(entry["logs"]):
        path = f"{where}[{position}]"
        if not isinstance(record, dict):
            problems.append((path, "is not an object"))
            continue
        log, found = _complete_log(record, (storage_url, store_url or storage_url),
                                   Path(logs_dir))
        problems += [(path + sub, message) for sub, message in found]
        problems += [(_join(path, sub), message)
                     for sub, message in _violations("log-file.schema.json", log)]
        logs.append(log)
    seen: set = set()
    for position, log in enumerate(logs):
        if log.get("local_path") in seen:
            problems.append((f"{where}[{position}].local_path",
                             f"{log['local_path']!r} is listed twice"))
        seen.add(log.get("local_path"))
    if problems:
        _refuse(problems)
    entry["logs"] = sorted(logs, key=lambda log: log["local_path"])
    recompute_entry(entry)
    _refuse(_violations("archive-entry.schema.json", entry))
    return entry


def _check_issue_number(entry: dict, issue: int) -> None:
    given = entry.get("issue_number", issue)
    try:
        number = parse_issue(given) if not isinstance(given, bool) else None
    except UsageError:
        number = None
    if number != issue:
        raise UsageError(f"metadata is for issue {given!r}, not {issue}",
                         "pass the metadata of the issue named on the command line")


def _complete_log(record: dict, bases: tuple[str, str], logs_dir: Path) -> tuple[dict, list]:
    """The record with what can be derived filled in, and the problems found on the way."""
    log, problems = dict(record), []
    for name in ("local_path", "stored_path"):
        value = log.get(name)
        if isinstance(value, str) and value.startswith("/"):
            try:
                log[name] = Path(value).relative_to(logs_dir).as_posix()
            except ValueError:
                problems.append((f".{name}", f"{value!r} is not inside the logs dir "
                                             f"{logs_dir}"))
    compressed = log.get("compressed")
    local = log.get("local_path")
    if compressed is True and isinstance(local, str) and "stored_path" not in log:
        suffix = PurePosixPath(local).suffix
        if suffix in _COMPRESSION_OF:  # the compressed copy was given as the local path
            log["stored_path"], log["local_path"] = local, local[: -len(suffix)]
        elif isinstance(log.get("remote_path") or _remote_from_url(log, bases), str):
            remote = log.get("remote_path") or _remote_from_url(log, bases)
            leaf = remote.rsplit("/", 1)[1]
            legacy = str(PurePosixPath(local).with_name(leaf))
            compression = _COMPRESSION_OF.get(PurePosixPath(leaf).suffix)
            log["stored_path"] = legacy if compression is None else copy_relative(
                local, compression, present=_existing(logs_dir, legacy))
    if compressed is False:
        log.setdefault("stored_path", local)
        log.setdefault("compression", None)
        log.setdefault("original_size_bytes", log.get("size_bytes"))
        log.setdefault("original_checksum", log.get("checksum"))
    elif compressed is True and isinstance(log.get("stored_path"), str):
        suffix = PurePosixPath(log["stored_path"]).suffix
        if suffix in _COMPRESSION_OF:
            log.setdefault("compression", _COMPRESSION_OF[suffix])
    if compressed is True and "compression" in log and log["compression"] is None:
        problems.append((".compression", "is null, but compressed is true: name gzip or zstd"))
    elif compressed is False and log.get("compression") is not None:
        problems.append((".compression", f"is {log['compression']!r}, but compressed is false"))
    for name in ("local_path", "stored_path"):
        if isinstance(log.get(name), str):
            try:
                confined(logs_dir, log[name])
            except UnsafePath as error:
                problems.append((f".{name}", f"{error.path!r} {error.reason}"))
    if "remote_path" not in log and (remote := _remote_from_url(log, bases)):
        log["remote_path"] = remote
    if isinstance(log.get("local_path"), str):
        log.setdefault("filename", PurePosixPath(log["local_path"]).name)
    claimed = log.get("upload_status") or ("uploaded" if log.get("cloud_url") else "pending")
    if claimed not in states.STATES:
        problems.append((".upload_status", f"{claimed!r} is not one of "
                                           f"{', '.join(states.STATES)}"))
        claimed = states.PENDING
    return given_record(log, claimed), problems


def _existing(logs_dir: Path, relative: str) -> tuple[str, ...]:
    try:
        return (relative,) if confined(logs_dir, relative).is_file() else ()
    except UnsafePath:
        return ()


def _remote_from_url(log: dict, bases: tuple[str, str]) -> str | None:
    """The key a ``cloud_url`` in this store names (``STORE_URL/KEY``)."""
    url = log.get("cloud_url")
    for base in bases:
        base = base.rstrip("/") + "/"
        if isinstance(url, str) and url.startswith(base):
            return unquote(url[len(base):]) if url.startswith("file:") else url[len(base):]
    return None


def _join(path: str, sub: str) -> str:
    return path + sub[1:] if sub.startswith("$") else f"{path}.{sub}"


def _violations(schema: str, data) -> list[tuple[str, str]]:
    """The schema's violations, a missing property named in the path (``$.logs[0].x``)."""
    from log_archiver.util.schemas import violations

    found = []
    for path, message in violations(schema, data):
        missing = _MISSING.fullmatch(message)
        found.append((f"{path}.{missing[1]}", "is required and cannot be derived")
                     if missing else (path, message))
    return found


def _refuse(problems: list[tuple[str, str]]) -> None:
    if not problems:
        return
    listed = "; ".join(f"{path}: {message}" for path, message in problems)
    raise UsageError(f"metadata breaks the index schema ({len(problems)} problem"
                     f"{'s' if len(problems) != 1 else ''}): {listed}",
                     "fix those fields (the files list printed by prepare-upload has every "
                     "one), then run update-index again")

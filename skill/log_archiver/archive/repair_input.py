"""Hand-fed input checked before it reaches the index: the metadata given to
``update-index``, and the plan given to ``file-manager upload``.

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

from log_archiver.errors import UsageError
from log_archiver.model import keys, states
from log_archiver.model.copies import SUFFIX, copy_relative
from log_archiver.model.issues import parse_issue
from log_archiver.model.records import given_record, new_entry, recompute_entry
from log_archiver.util.paths import UnsafePath, confined

_COMPRESSION_OF = {suffix: name for name, suffix in SUFFIX.items()}
_MISSING = re.compile(r"'([^']+)' is a required property")
_PLAN_HINT = "pass the JSON printed by `prepare-upload ISSUE`, unchanged"


def read_json_input(text: str | bytes, what: str):
    """Strict JSON (no NaN, no duplicate keys, no number too large...), or a usage error."""
    from log_archiver.util.strict_json import JSONTextError, loads

    try:
        return loads(text)
    except JSONTextError as error:
        raise UsageError(f"{what} is {error}", _PLAN_HINT if what.startswith("plan")
                         else "pass a JSON file or - for standard input") from None


def plan_files(text: str | bytes, source: str) -> tuple[int, set[str]]:
    """The issue and the ``local_path`` of each file of a ``prepare-upload`` plan."""
    document = read_json_input(text, f"plan {source}")
    if not isinstance(document, dict):
        raise UsageError(f"plan {source} is not a JSON object: {_shown(document)}", _PLAN_HINT)
    if "issue_number" not in document:
        raise UsageError(f"plan {source} has no issue_number", _PLAN_HINT)
    issue = _whole_issue(document["issue_number"])
    if issue is None:
        raise UsageError(f"plan {source}: issue_number {_shown(document['issue_number'])} is "
                         "not a positive whole number", _PLAN_HINT)
    files = document.get("files")
    if not isinstance(files, list):
        raise UsageError(f"plan {source}: files is {_shown(files)}, not a list of files",
                         _PLAN_HINT)
    paths = set()
    for position, record in enumerate(files):
        path = record.get("local_path") if isinstance(record, dict) else None
        if not isinstance(path, str) or not path:
            raise UsageError(f"plan {source}: files[{position}] has no local_path string "
                             f"({_shown(record)})", _PLAN_HINT)
        paths.add(path)
    return issue, paths


def _whole_issue(value) -> int | None:
    """An issue number given as a JSON integer or a string of digits; never a float or bool."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        return None
    try:
        return parse_issue(value)
    except UsageError:
        return None


def _shown(value, limit: int = 80) -> str:
    import json

    text = json.dumps(value, ensure_ascii=True)
    return text if len(text) <= limit else text[:limit] + "..."


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
        name = log.get("local_path")
        if not isinstance(name, str):
            continue  # the schema names it
        if name in seen:
            problems.append((f"{where}[{position}].local_path", f"{name!r} is listed twice"))
        seen.add(name)
    if problems:
        _refuse(problems)
    entry["logs"] = sorted(logs, key=lambda log: log["local_path"])
    recompute_entry(entry)
    _refuse(_violations("archive-entry.schema.json", entry))
    from log_archiver.index.rules import entry_problems

    _refuse([(problem["path"], problem["message"]) for problem in entry_problems(entry, "$")])
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
    url_key = _remote_from_url(log, bases)
    if url_key is not None and keys.parse_key(url_key) is None:
        problems.append((".cloud_url", f"{log['cloud_url']!r} names no stored log of this "
                                       f"store (STORE/{keys.LAYOUT})"))
        url_key = None
    given_key = log.get("remote_path")
    if url_key is not None and isinstance(given_key, str) and given_key != url_key:
        problems.append((".cloud_url", f"{log['cloud_url']!r} is not the URL of remote_path "
                                       f"{given_key!r}"))
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
        elif isinstance(remote := given_key or url_key, str) and "/" in remote:
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
    if "remote_path" not in log and url_key:
        log["remote_path"] = url_key
    if isinstance(log.get("local_path"), str):
        log.setdefault("filename", PurePosixPath(log["local_path"]).name)
    claimed = log.get("upload_status")
    if claimed is None:
        claimed = "uploaded" if log.get("cloud_url") else "pending"
    if not isinstance(claimed, str) or claimed not in states.STATES:
        problems.append((".upload_status", f"{_shown(claimed)} is not one of "
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

"""Full index validation: the schema, and the rules a schema cannot say.

Every violation is reported, each with the JSON path of the value at fault, the rule it
breaks and a message quoting the value. The schema is checked by the compiled validator
first (a valid 10,000-entry index takes a fraction of a second); only the parts it
rejects go through jsonschema, which names every violation. The rules run on every
entry the schema accepts, so a broken entry does not hide a problem in another one.

The rules:

- ``sorted``: archives sorted by issue number, largest first;
- ``duplicate_issue``: one entry per issue;
- ``duplicate_file``: one record per log (``local_path``) in an entry, and one record per
  stored object (``remote_path``) in the whole index;
- ``remote_path``: every object lies in its own issue's folder;
- ``totals``: ``total_logs``, ``total_size_bytes``, ``total_original_size_bytes``,
  ``compression_ratio`` and ``retry_count`` are what the logs add up to;
- ``upload_complete`` / ``partial_archive``: the flags agree with the logs' upload
  statuses (and ``partial_reason``); an ``expired`` log (a gc tombstone) counts as settled.
- ``expired``: a tombstone says when it expired and by which rule (``expired_at``,
  ``expired_rule``), and only a tombstone does.
- ``blocks``: a log's block table (``blocks``: ``offset``, ``length``, ``count``, on a
  gzip copy only) is where the readers' ranged reads go, so it must describe the object:
  whole numbers (the schema's ``integer`` lets ``5.0`` through), the table region ending
  the object exactly (``offset + length == size_bytes``; the members tile the bytes
  before it), ``length`` what a table of ``count`` blocks takes, and room before it for
  ``count`` gzip members. The schema checks the rest (no negatives, the SHA-256's form).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from log_archiver.model.records import recompute_entry
from log_archiver.model.states import SETTLED as STORED_STATES

INDEX_NAME = ".archive-index.json"
INDEX_SCHEMA = "archive-index.schema.json"
ENTRY_SCHEMA = "archive-entry.schema.json"

HINTS = {
    "file": "pass the path of an existing .archive-index.json (or the folder holding it)",
    "json": "fix the JSON syntax, or restore the file from git (`git checkout -- FILE`)",
    "schema": "make the value match schemas/archive-index.schema.json, or restore the file "
              "from git",
    "sorted": "reorder the archives by issue_number, largest first",
    "duplicate_issue": "merge the two entries into one (keep every log) and delete the other",
    "duplicate_file": "delete the duplicate record, keeping the one whose upload_status is "
                      "furthest along (pending < retrying < failed < uploaded < verified < "
                      "cleaned)",
    "remote_path": "restore the record from git: the stored object sits under the "
                   "remote_path the index recorded when it was uploaded",
    "totals": "set the value the message names: it is derived from the entry's logs",
    "upload_complete": "set the value the message names: it is derived from the logs' "
                       "upload_status",
    "partial_archive": "set the value the message names: it is derived from the logs' "
                       "upload_status and partial_reason",
    "expired": "restore the record from git: gc writes expired_at and expired_rule with "
               "every tombstone, and nothing else writes them",
    "blocks": "restore the record from git, or rebuild the entry with `log-archiver archive "
              "ISSUE --reindex-only` (it reads the table back from the stored object, and "
              "leaves it out when the object has none)",
}


def violation(path: str, rule: str, message: str) -> dict:
    return {"path": path, "rule": rule, "message": message}


def index_file(path: Path) -> Path:
    """``path`` itself, or the index inside it when ``path`` is a folder."""
    path = Path(path)
    return path / INDEX_NAME if path.is_dir() else path


def validate_index_file(path: Path) -> list[dict]:
    """Every violation in the index file at ``path`` (an empty list when it is valid)."""
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        return [violation("$", "file", f"no archive index at {path}")]
    except OSError as error:
        return [violation("$", "file", f"cannot read {path}: {error.strerror or error}")]
    return check_index_bytes(raw)[1]


def check_index_bytes(raw: bytes) -> tuple[dict | None, list[dict]]:
    """The index ``raw`` holds and every violation in it: the one verdict on index bytes,
    given alike to ``validate-index``, every command reading the index and the merge
    driver (the document is None when the bytes are not strict JSON)."""
    from log_archiver.util.strict_json import JSONTextError, loads

    try:
        doc = loads(raw)
    except JSONTextError as error:
        return None, [violation("$", "json", str(error))]
    return doc, validate_index_document(doc)


def validate_index_document(doc) -> list[dict]:
    """Every violation in an index already parsed from JSON."""
    problems, checkable = _schema_problems(doc)
    if checkable is None:
        return problems
    archives = doc["archives"]
    problems.extend(_order_problems(archives))
    stored_objects: dict[str, str] = {}
    for i in checkable:
        problems.extend(_entry_problems(i, archives[i], stored_objects))
    return problems


def _schema_problems(doc) -> tuple[list[dict], list[int] | None]:
    """Schema violations, and which entries are sound enough for the rules (None: none)."""
    from log_archiver.util.schemas import SchemaViolation, validate

    rejection = None
    try:
        validate("index", doc)
    except SchemaViolation as failure:
        rejection = failure
    if rejection is None:
        return [], list(range(len(doc["archives"])))
    archives = doc.get("archives") if isinstance(doc, dict) else None
    if not isinstance(archives, list):
        return _described(INDEX_SCHEMA, doc, "$", rejection), None
    problems = _described(INDEX_SCHEMA, {**doc, "archives": []}, "$", None)
    checkable = []
    for i, entry in enumerate(archives):
        try:
            validate("entry", entry)
        except SchemaViolation as failure:
            problems.extend(_named(entry, _described(ENTRY_SCHEMA, entry, f"$.archives[{i}]",
                                                     failure)))
        else:
            checkable.append(i)
    return problems, checkable


def _described(schema: str, data, prefix: str, failure) -> list[dict]:
    """jsonschema's account of what the compiled validator rejected, paths under ``prefix``."""
    from log_archiver.util.schemas import violations

    found = [violation(prefix + path[1:], "schema", message)
             for path, message in violations(schema, data)]
    if not found and failure is not None:  # never let a rejection pass unreported
        found = [violation(prefix + failure.path[1:], "schema", failure.detail)]
    return found


_LOG_PATH = re.compile(r"^\$\.archives\[\d+\]\.logs\[(\d+)\]")


def _named(entry, problems: list[dict]) -> list[dict]:
    """Schema violations inside a log record, their messages led by the issue and the log
    (both quoted from the hostile entry, so only when they are sound)."""
    issue = entry.get("issue_number") if isinstance(entry, dict) else None
    logs = entry.get("logs") if isinstance(entry, dict) else None
    if not _is_issue_number(issue) or not isinstance(logs, list):
        return problems
    for problem in problems:
        match = _LOG_PATH.match(problem["path"])
        log = logs[int(match.group(1))] if match and int(match.group(1)) < len(logs) else None
        name = log.get("local_path") if isinstance(log, dict) else None
        if isinstance(name, str):
            problem["message"] = f"issue {issue}'s log {_json(name[:300])}: {problem['message']}"
    return problems


def _is_issue_number(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _order_problems(archives: list) -> list[dict]:
    problems = []
    first_at: dict[int, int] = {}
    previous: tuple[int, int] | None = None
    for i, entry in enumerate(archives):
        number = entry.get("issue_number") if isinstance(entry, dict) else None
        if not _is_issue_number(number):
            continue
        where = f"$.archives[{i}].issue_number"
        if number in first_at:
            problems.append(violation(
                where, "duplicate_issue",
                f"issue {number} is listed twice; its first entry is "
                f"$.archives[{first_at[number]}]"))
        else:
            first_at[number] = i
        if previous is not None and number > previous[1]:
            problems.append(violation(
                where, "sorted",
                f"issue {number} comes after issue {previous[1]} ($.archives[{previous[0]}]); "
                "archives must be sorted by issue number, largest first"))
        previous = (i, number)
    return problems


def entry_problems(entry: dict, where: str) -> list[dict]:
    """The rules one entry (already valid against its schema) breaks on its own."""
    return _entry_problems(where, entry, {})


def _entry_problems(where: str | int, entry: dict, stored_objects: dict[str, str]) -> list[dict]:
    if isinstance(where, int):
        where = f"$.archives[{where}]"
    issue = entry["issue_number"]
    problems = []
    files: dict[str, str] = {}
    for j, log in enumerate(entry["logs"]):
        at = f"{where}.logs[{j}]"
        name, key = log["local_path"], log["remote_path"]
        if (first := _claim(files, name, at)) is not None:
            problems.append(violation(
                f"{at}.local_path", "duplicate_file",
                f"file {name} is listed twice in issue {issue}; its first record is {first}"))
        if (first := _claim(stored_objects, key, at)) is not None:
            problems.append(violation(
                f"{at}.remote_path", "duplicate_file",
                f"stored object {key} is claimed twice; its first record is {first}"))
        problems.extend(_tombstone_problems(at, log))
        problems.extend(_blocks_problems(at, issue, log))
        folder = key.split("/")[4]  # archive/logs/YYYY/MM/<issue>/<name>, as the schema says
        if folder != str(issue):
            problems.append(violation(
                f"{at}.remote_path", "remote_path",
                f"{key} lies in the folder of issue {folder}, not of issue {issue}"))
    for j, kept in enumerate(entry.get("kept_objects") or ()):
        folder = kept["remote_path"].split("/")[4]
        if folder != str(issue):  # gc deletes an expired entry's kept versions by this key
            problems.append(violation(
                f"{where}.kept_objects[{j}].remote_path", "remote_path",
                f"{kept['remote_path']} lies in the folder of issue {folder}, not of issue "
                f"{issue}"))
    problems.extend(_derived_problems(where, entry))
    return problems


def _tombstone_problems(at: str, log: dict) -> list[dict]:
    expired = log["upload_status"] == "expired"
    problems = []
    for name in ("expired_at", "expired_rule"):
        if expired and log.get(name) is None:
            problems.append(violation(f"{at}.{name}", "expired",
                                      f"{log['local_path']} is expired but has no {name}"))
        elif not expired and name in log:
            problems.append(violation(f"{at}.{name}", "expired",
                                      f"{log['local_path']} is {log['upload_status']} but has "
                                      f"{name} {_json(log[name])}; only a tombstone has it"))
    return problems


def _blocks_problems(at: str, issue: int, log: dict) -> list[dict]:
    blocks = log.get("blocks")
    if blocks is None:
        return []
    from log_archiver.model.block_table import MIN_MEMBER, region_length

    def bad(field: str | None, message: str) -> dict:
        path = f"{at}.blocks" + (f".{field}" if field else "")
        return violation(path, "blocks", f"issue {issue}'s log {_json(log['local_path'])}: "
                                         f"{message}")

    problems = [bad(field, f"blocks.{field} is {_json(blocks[field])}, not a whole number")
                for field in ("offset", "length", "count") if type(blocks[field]) is not int]
    if problems:
        return problems
    if not log["compressed"] or log["compression"] != "gzip":
        return [bad(None, f"has a block table ({_json(blocks)}) but its stored copy is "
                          f"{log['compression'] or 'not compressed'}; only a gzip copy has one")]
    offset, length, count = blocks["offset"], blocks["length"], blocks["count"]
    size = log["size_bytes"]
    if offset + length != size:
        problems.append(bad(None, f"the block table (offset {offset}, length {length}) ends at "
                                  f"byte {offset + length}, but the stored object is {size} "
                                  "bytes (size_bytes); the table is the object's last bytes"))
    if length != region_length(count):
        problems.append(bad("length", f"blocks.length is {length}, but a table of {count} "
                                      f"blocks takes {region_length(count)} bytes"))
    if count * MIN_MEMBER > offset:
        problems.append(bad("count", f"blocks.count is {count}, but {count} gzip members "
                                     f"cannot fit in the {offset} bytes before the table (each "
                                     f"takes at least {MIN_MEMBER})"))
    return problems


def _claim(seen: dict[str, str], key: str, at: str) -> str | None:
    """Where ``key`` was seen first, or None (and ``at`` is recorded as that place)."""
    if key in seen:
        return seen[key]
    seen[key] = at
    return None


_TOTALS = {
    "total_logs": "the entry has {expected} logs",
    "total_size_bytes": "the size_bytes of its logs add up to {expected}",
    "total_original_size_bytes": "the original_size_bytes of its logs add up to {expected}",
    "compression_ratio": "total_size_bytes / total_original_size_bytes is {expected}",
    "retry_count": "the upload_attempt of its logs count {expected} retries (attempts after "
                   "the first)",
}


def _derived_problems(where: str, entry: dict) -> list[dict]:
    expected = recompute_entry(dict(entry))
    problems = []
    for key, because in _TOTALS.items():
        if _differs(entry[key], expected[key]):
            problems.append(violation(
                f"{where}.{key}", "totals",
                f"is {_json(entry[key])}, but {because.format(expected=_json(expected[key]))}"))
    logs = entry["logs"]
    unstored = next(((j, log) for j, log in enumerate(logs)
                     if log["upload_status"] not in STORED_STATES), None)
    if entry["upload_complete"] != expected["upload_complete"]:
        if unstored is not None:
            j, log = unstored
            message = (f"is true, but {where}.logs[{j}] ({log['local_path']}) is "
                       f"{log['upload_status']}; it is true only when every log is uploaded, "
                       "verified, cleaned or expired")
        else:
            message = "is false, but every log is uploaded, verified, cleaned or expired"
        problems.append(violation(f"{where}.upload_complete", "upload_complete", message))
    if entry["partial_archive"] != expected["partial_archive"]:
        if not expected["partial_archive"]:
            message = "is true, but every log is stored and partial_reason is null"
        elif unstored is not None:
            j, log = unstored
            message = (f"is false, but {where}.logs[{j}] ({log['local_path']}) is "
                       f"{log['upload_status']}")
        else:
            message = f"is false, but partial_reason is set ({entry['partial_reason']!r})"
        problems.append(violation(f"{where}.partial_archive", "partial_archive", message))
    return problems


def _differs(actual, expected) -> bool:
    if isinstance(actual, float) or isinstance(expected, float):
        if actual is None or expected is None:
            return actual is not expected
        return abs(actual - expected) > 5e-5  # the ratio is kept to 4 decimals
    return actual != expected


def _json(value) -> str:
    return json.dumps(value)

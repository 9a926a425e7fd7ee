"""Keeping the search index in step with the archive index, from the store.

The archive index says which content is stored (a log record's ``checksum``); the search
index holds postings for content by that checksum. Syncing indexes, from the verified
stored bytes, every stored log the archive index names and the search index lacks, and
drops what the archive index no longer names (a log archived again under a new checksum,
a removed entry). A search index that cannot be read is discarded and built again.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from log_archiver.errors import ArchiveError
from log_archiver.model import states
from log_archiver.model.keys import parse_key
from log_archiver.search.grams import Indexer
from log_archiver.search.index_db import SearchIndex, SearchIndexCorrupt, discard
from log_archiver.search.location import index_path
from log_archiver.util.hashing import bare

_SHA256 = re.compile(r"sha256:[0-9a-f]{64}")


@dataclass
class SyncReport:
    path: Path
    indexed: list[str] = field(default_factory=list)     # local paths indexed now
    removed: int = 0
    errors: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    failed: set = field(default_factory=set)             # checksums that could not be read


def stored_logs(document: dict) -> Iterable[tuple[dict, dict]]:
    """``(entry, log)`` of every stored log of the archive index, in its order."""
    for entry in document.get("archives", []):
        for log in entry.get("logs", []):
            if states.is_stored(log) and isinstance(log.get("checksum"), str):
                yield entry, log


def refusal(entry: dict, log: dict) -> dict | None:
    """Why a record must not be read: its key is not one of the entry's own keys in the
    archive's layout, or its checksum is not a SHA-256 (checked before any read)."""
    key, checksum = log.get("remote_path"), log.get("checksum")
    parsed = parse_key(key) if isinstance(key, str) else None
    if parsed is not None and parsed.issue == entry.get("issue_number") \
            and isinstance(checksum, str) and _SHA256.fullmatch(checksum):
        return None
    return {"type": "index_invalid", "retryable": False, "file": str(log.get("local_path")),
            "message": f"the record of {log.get('local_path')!r} (issue "
                       f"{entry.get('issue_number')}) names key {key!r} and checksum "
                       f"{checksum!r}; it was not searched",
            "hint": "run `validate-index` and fix the record"}


def open_index(repo, report: SyncReport | None = None, *, fresh: bool = False) -> SearchIndex:
    """The search index of this repository; a damaged one is discarded and begun again."""
    path = index_path(repo.config)
    if fresh:
        discard(path)
    try:
        index = SearchIndex(path)
        index.logs()
        return index
    except SearchIndexCorrupt as error:
        if report is not None:
            report.warnings.append(f"{error.message}; it was discarded and is being rebuilt "
                                   "from the store")
        discard(path)
        return SearchIndex(path)


def sync(repo, index: SearchIndex, scope: list[tuple[dict, dict]], document: dict,
         report: SyncReport) -> None:
    """Index the logs of ``scope`` the search index lacks; drop what no record names."""
    named = {bare(log["checksum"]) for entry in document.get("archives", [])
             for log in entry.get("logs", [])
             if states.is_stored(log) and isinstance(log.get("checksum"), str)}
    stale = [checksum for checksum in index.logs() if checksum not in named]
    if stale:
        index.remove(stale)
        report.removed = len(stale)
    known = index.logs()
    seen = set()
    for entry, log in scope:
        checksum = bare(log["checksum"])
        if checksum in known or checksum in seen:
            continue
        seen.add(checksum)
        if (refused := refusal(entry, log)) is not None:
            report.failed.add(checksum)
            report.errors.append(refused)
            continue
        try:
            index.add(checksum, index_from_store(repo, log))
        except SearchIndexCorrupt:
            raise
        except ArchiveError as error:
            report.failed.add(checksum)
            report.errors.append({**error.to_dict(), "file": log["local_path"]})
            continue
        report.indexed.append(log["local_path"])
    index.merge()


def index_from_store(repo, log: dict):
    from log_archiver.retrieve.content import read_blocks

    indexer = Indexer()
    for _number, _lines, block in read_blocks(repo, log):
        indexer.feed(block)
    return indexer.finish()

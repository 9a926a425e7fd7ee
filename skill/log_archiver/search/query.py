"""``search``: every line of the archived logs that matches a query.

The index narrows, the verified text decides: candidate chunks come from the postings,
their blocks are read from the store through :func:`read_blocks` (checked against the
record's checksum before a byte is used), and only lines that really match are reported.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from pyroaring import BitMap

from log_archiver.errors import ArchiveError, UsageError
from log_archiver.model.block_table import BLOCK_SIZE
from log_archiver.search.index_db import SearchIndexCorrupt
from log_archiver.search.patterns import Query, build_query
from log_archiver.search.scan import Deadline, Run, SearchTimeout, context, matching_lines, show
from log_archiver.search.sync import SyncReport, open_index, refusal, stored_logs, sync
from log_archiver.util.hashing import bare

DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000
MAX_CONTEXT = 50
TIME_BUDGET_SECONDS = 30.0


def parse_day(text: str | None, *, end: bool = False) -> datetime | None:
    """``YYYY-MM-DD`` or an ISO time (UTC); a bare day's end is the day after it."""
    if text is None:
        return None
    try:
        if len(text) == 10:
            moment = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
            return moment + timedelta(days=1) if end else moment
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    except ValueError:
        raise UsageError(f"date {text!r} is not YYYY-MM-DD or an ISO time",
                         "write it like 2025-01-31 or 2025-01-31T12:00:00Z") from None


def _archived_at(entry: dict) -> datetime | None:
    try:
        return datetime.fromisoformat(str(entry.get("archived_at")).replace("Z", "+00:00"))
    except ValueError:
        return None


def in_scope(entry: dict, log: dict, *, issue, log_type, since, until) -> bool:
    if issue is not None and entry.get("issue_number") != issue:
        return False
    if log_type is not None and log.get("type") != log_type:
        return False
    if since is not None or until is not None:
        moment = _archived_at(entry)
        if moment is None or (since and moment < since) or (until and moment >= until):
            return False
    return True


def search(repo, text: str, *, regex: bool = False, ignore_case: bool = False,
           context_lines: int = 0, issue: int | None = None, log_type: str | None = None,
           since: str | None = None, until: str | None = None,
           limit: int = DEFAULT_LIMIT) -> dict:
    started = time.perf_counter()
    query = build_query(text, regex=regex, ignore_case=ignore_case)
    if not 1 <= limit <= MAX_LIMIT:
        raise UsageError(f"--limit {limit} is out of range", f"use 1 to {MAX_LIMIT}")
    if not 0 <= context_lines <= MAX_CONTEXT:
        raise UsageError(f"--context {context_lines} is out of range",
                         f"use 0 to {MAX_CONTEXT}")
    low, high = parse_day(since), parse_day(until, end=True)
    document = repo.index.read()
    report = SyncReport(path=None)
    scope = [(e, log) for e, log in stored_logs(document)
             if in_scope(e, log, issue=issue, log_type=log_type, since=low, until=high)]
    index = None
    try:
        index = open_index(repo, report)
        report.path = index.path
        try:
            sync(repo, index, scope, document, report)
            result = _run(repo, index, query, scope, report, context_lines, limit)
        except SearchIndexCorrupt as error:  # derived data: begun again, never a crash
            report.warnings.append(f"{error.message}; it was discarded and rebuilt from the "
                                   "store")
            index.close()
            index = open_index(repo, report, fresh=True)
            report.indexed.clear()
            sync(repo, index, scope, document, report)
            result = _run(repo, index, query, scope, report, context_lines, limit)
    finally:
        if index is not None:
            index.close()
    result.update(query=text, mode=query.mode, narrowed=bool(query.needs),
                  index_path=str(report.path), synced_logs=len(report.indexed),
                  elapsed_ms=round((time.perf_counter() - started) * 1000, 1),
                  warnings=report.warnings)
    result["errors"] = report.errors + result.get("errors", [])
    result["status"] = "partial" if result["errors"] else "ok"
    return result


def candidates(index, query: Query) -> BitMap | None:
    """The chunk numbers that may hold a match, or None when the index cannot narrow."""
    if not query.needs:
        return None
    wanted = {gram for clause in query.needs for alternative in clause
              for position in alternative for gram in position}
    postings = index.chunks_with(wanted)
    chosen = None
    for clause in query.needs:
        either = BitMap()
        for alternative in clause:
            every = None
            for position in alternative:
                one = BitMap.union(*(postings[g] for g in position))
                every = one if every is None else every & one
                if not every:
                    break
            either |= every if every is not None else BitMap()
        chosen = either if chosen is None else chosen & either
        if not chosen:
            break
    return chosen


def _run(repo, index, query: Query, scope, report: SyncReport, k: int, limit: int) -> dict:
    known = index.logs()
    chosen = candidates(index, query)
    owned = index.owners(chosen) if chosen is not None else {}
    deadline = Deadline(TIME_BUDGET_SECONDS)
    matches, total, searched, read_logs, read_bytes = [], 0, 0, 0, 0
    errors = []
    done = set()
    for entry, log in scope:
        checksum = bare(log["checksum"])
        indexed = known.get(checksum)
        if indexed is None or (checksum, log["local_path"]) in done:
            continue
        done.add((checksum, log["local_path"]))
        searched += 1
        places = range(indexed.count) if chosen is None else owned.get(checksum, ())
        ranges = [indexed.chunk_range(p) for p in places]
        if not ranges:
            continue
        if (refused := refusal(entry, log)) is not None:
            errors.append(refused)
            continue
        read_logs += 1
        try:
            for run, wanted in _runs(repo, log, ranges, k, indexed.size):
                read_bytes += len(run.data)
                for number, start, end in matching_lines(run, wanted, query, deadline):
                    total += 1
                    if len(matches) >= limit:
                        continue
                    before, after = context(run, start, end, k)
                    matches.append({"issue_number": entry["issue_number"],
                                    "local_path": log["local_path"], "line": number,
                                    "text": show(run.data[start:end]),
                                    "before": before, "after": after})
        except SearchTimeout as error:
            errors.append(error.to_dict())
            break
        except ArchiveError as error:
            errors.append({**error.to_dict(), "file": log["local_path"]})
    return {"matches": matches, "total": total, "truncated": total > len(matches),
            "searched_logs": searched, "read_logs": read_logs, "read_bytes": read_bytes,
            "errors": errors}


def _runs(repo, log: dict, ranges: list[tuple[int, int]], k: int, size: int):
    """Contiguous verified content covering ``ranges`` (and a block either side for
    context), each with the ranges that fall in it."""
    from log_archiver.retrieve.content import read_blocks

    last_block = max((size - 1) // BLOCK_SIZE, 0)
    blocks = set()
    for low, high in ranges:
        first, last = low // BLOCK_SIZE, max(high - 1, low) // BLOCK_SIZE
        if k:
            first, last = max(first - 1, 0), min(last + 1, last_block)
        blocks.update(range(first, last + 1))
    pieces, start_block, start_line, previous = [], None, 1, None
    for number, lines_before, block in read_blocks(repo, log, sorted(blocks)):
        if previous is not None and number != previous + 1:
            yield _run_of(pieces, start_block, start_line, False, ranges)
            pieces = []
        if not pieces:
            start_block, start_line = number, lines_before + 1
        pieces.append(block)
        previous = number
    if pieces:
        yield _run_of(pieces, start_block, start_line, previous == last_block, ranges)


def _run_of(pieces, start_block, start_line, at_end, ranges):
    data = b"".join(pieces)
    offset = start_block * BLOCK_SIZE
    run = Run(data, offset, start_line, at_end)
    inside = [(low, high) for low, high in ranges
              if low < offset + len(data) and high > offset]
    return run, inside

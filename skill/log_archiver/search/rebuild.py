"""``search --rebuild``: the search index built again from nothing, from the store and the
archive index alone (what a damaged, lost or doubted index needs)."""

from __future__ import annotations

import time

from log_archiver.search.sync import SyncReport, open_index, stored_logs, sync


def rebuild_index(repo) -> dict:
    started = time.perf_counter()
    document = repo.index.read()
    scope = list(stored_logs(document))
    report = SyncReport(path=None)
    index = open_index(repo, report, fresh=True)
    try:
        report.path = index.path
        sync(repo, index, scope, document, report)
        size = index.size_bytes()
    finally:
        index.close()
    return {"indexed_logs": len(report.indexed), "index_path": str(report.path),
            "index_bytes": size, "errors": report.errors,
            "elapsed_ms": round((time.perf_counter() - started) * 1000, 1)}

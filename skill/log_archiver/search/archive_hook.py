"""Indexing logs as they are archived: the compressor hands each block it receives to a
sink, and the postings are kept by the checksum of the bytes that will be stored.

Nothing here can fail an archive: the search index is derived data, and a log this
misses is indexed from the store by the next search.
"""

from __future__ import annotations

import threading
from pathlib import Path

_FAILED = object()  # what a job that raised returns: the log is left unindexed


class BlockSink:
    """One log's content as it passes the compressor."""

    def __init__(self, owner: ArchiveIndexing):
        from log_archiver.search.grams import Indexer  # numpy: loaded when a log is indexed

        self._owner = owner
        self._indexer = Indexer()

    def feed(self, block: bytes) -> None:
        if self._indexer is None:
            return
        try:
            self._indexer.feed(block)
        except Exception:  # never the archive's problem
            self._indexer = None

    def job(self, block: bytes):
        """The costly part of feeding ``block``, for a worker thread: its result goes to
        :meth:`take`, in block order (the compressor runs it with the block's member)."""
        if self._indexer is None:
            return None
        try:
            work = self._indexer.job(block)
        except Exception:
            self._indexer = None
            return None
        if work is None:
            return None

        def run():
            try:
                return work()
            except Exception:
                return _FAILED
        return run

    def take(self, result) -> None:
        if self._indexer is None:
            return
        if result is _FAILED:
            self._indexer = None
            return
        try:
            self._indexer.take(result)
        except Exception:
            self._indexer = None

    def done(self, stored_sha256: str) -> None:
        """The log is stored as bytes with this SHA-256 (hex)."""
        if self._indexer is not None:
            try:
                self._owner.finished(stored_sha256, self._indexer.finish())
            except Exception:
                pass
            self._indexer = None


class ArchiveIndexing:
    """Sinks for one compress step, and the writing of what they found."""

    def __init__(self, repo):
        self._config = repo.config
        self._lock = threading.Lock()
        self._finished = []

    def open(self, source: Path) -> BlockSink:
        return BlockSink(self)

    def finished(self, checksum: str, grams) -> None:
        with self._lock:
            self._finished.append((checksum, grams))

    def flush(self) -> None:
        """Write every finished log into the search index (folded in by the next search)."""
        from log_archiver.search.index_db import SearchIndex
        from log_archiver.search.location import index_path

        with self._lock:
            finished, self._finished = self._finished, []
        if not finished:
            return
        try:
            index = SearchIndex(index_path(self._config))
        except Exception:
            return
        try:
            for checksum, grams in finished:
                index.add(checksum, grams)
        except Exception:
            pass
        finally:
            index.close()


def archive_indexing(repo) -> ArchiveIndexing | None:
    """The sinks of a compress step, or None in a dry run."""
    return None if repo.dry_run else ArchiveIndexing(repo)

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
    """One log's content as it passes the compressor, given by :meth:`feed`, or by
    :meth:`job` and :meth:`take` (never both). numpy is first loaded by the thread that
    computes grams, most often a compression worker, not the thread reading the log."""

    def __init__(self, owner: ArchiveIndexing):
        self._owner = owner
        self._indexer = None
        self._broken = False  # failed, or finished
        self._tail = b""  # the last two bytes given to job()

    def _get(self):
        if self._indexer is None:
            from log_archiver.search.grams import Indexer

            self._indexer = Indexer()
        return self._indexer

    def feed(self, block: bytes) -> None:
        if self._broken:
            return
        try:
            self._get().feed(block)
        except Exception:  # never the archive's problem
            self._broken = True

    def job(self, block: bytes):
        """The costly part of feeding ``block``, for a worker thread: its result goes to
        :meth:`take`, in block order (the compressor runs it with the block's member)."""
        if self._broken or not block:
            return None
        tail, self._tail = self._tail, (self._tail + block[-2:])[-2:]

        def run():
            try:
                from log_archiver.search.grams import block_grams

                return block_grams(tail, block)
            except Exception:
                return _FAILED
        return run

    def take(self, result) -> None:
        if self._broken or result is None:
            return
        if result is _FAILED:
            self._broken = True
            return
        try:
            self._get().take(result)
        except Exception:
            self._broken = True

    def done(self, stored_sha256: str) -> None:
        """The log is stored as bytes with this SHA-256 (hex)."""
        if self._broken:
            return
        self._broken = True
        try:
            self._owner.finished(stored_sha256, self._get().finish())
        except Exception:
            pass


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

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
    """One log's content as it passes the compressor, given block by block to :meth:`feed`
    in order. The grams of each block are computed on the indexing's own thread, so the
    compressor never waits for them (nor for numpy to load); they are gathered, in order,
    when the indexing is flushed."""

    def __init__(self, owner: ArchiveIndexing):
        self._owner = owner
        self._broken = False  # failed, or finished
        self._tail = b""  # the last two bytes fed, for the grams across blocks
        self.grams: list = []  # a future of each block's grams, in order

    def feed(self, block: bytes) -> None:
        if self._broken or not block:
            return
        tail, self._tail = self._tail, (self._tail + block[-2:])[-2:]
        from log_archiver.search.grams import block_grams

        def grams():
            return block_grams(tail, block)
        try:
            self.grams.append(self._owner.compute(grams))
        except Exception:  # never the archive's problem
            self._broken = True

    def done(self, stored_sha256: str) -> None:
        """The log is stored as bytes with this SHA-256 (hex)."""
        if self._broken:
            return
        self._broken = True
        self._owner.finished(stored_sha256, self)

    def gathered(self):
        """The log's grams (:class:`~.grams.LogGrams`), or None when a block failed."""
        from log_archiver.search.grams import Indexer

        indexer = Indexer()
        for future in self.grams:
            result = future.result()
            if result is _FAILED:
                return None
            indexer.take(result)
        return indexer.finish()


def _guarded(job):
    def run():
        try:
            return job()
        except Exception:
            return _FAILED
    return run


class ArchiveIndexing:
    """Sinks for the logs being stored, one thread computing their grams, and the
    writing of what they found (:meth:`flush`); :meth:`close` when done with it."""

    def __init__(self, repo):
        self._config = repo.config
        self._lock = threading.Lock()
        self._finished = []
        self._thread = None

    def open(self, source: Path) -> BlockSink:
        return BlockSink(self)

    def compute(self, job):
        with self._lock:
            if self._thread is None:
                from concurrent.futures import ThreadPoolExecutor

                self._thread = ThreadPoolExecutor(max_workers=1,
                                                  thread_name_prefix="search-grams")
            return self._thread.submit(_guarded(job))

    def finished(self, checksum: str, sink: BlockSink) -> None:
        with self._lock:
            self._finished.append((checksum, sink))

    def flush(self) -> None:
        """Write every finished log into the search index (folded in by the next search)."""
        from log_archiver.search.index_db import SearchIndex
        from log_archiver.search.location import index_path

        with self._lock:
            finished, self._finished = self._finished, []
        if not finished:
            return
        gathered = []
        for checksum, sink in finished:
            try:
                gathered.append((checksum, sink.gathered()))
            except Exception:  # this log is indexed from the store by the next search
                continue
        try:
            index = SearchIndex(index_path(self._config))
        except Exception:
            return
        try:
            for checksum, grams in gathered:
                if grams is not None:
                    index.add(checksum, grams)
        except Exception:
            pass
        finally:
            index.close()

    def close(self) -> None:
        """Flush, and stop the grams thread."""
        try:
            self.flush()
        finally:
            with self._lock:
                thread, self._thread = self._thread, None
            if thread is not None:
                thread.shutdown()


def archive_indexing(repo) -> ArchiveIndexing | None:
    """The sinks of a compress step, or None in a dry run."""
    return None if repo.dry_run else ArchiveIndexing(repo)

"""Indexing logs as they are archived: the compressor hands each block it receives to a
sink, and the postings are kept by the checksum of the bytes that will be stored.

Nothing here can fail an archive: the search index is derived data, and a log this
misses is indexed from the store by the next search.
"""

from __future__ import annotations

import threading
from collections import deque
from pathlib import Path

PENDING_MOST = 8  # blocks waiting for their grams, at most (memory stays flat)


class BlockSink:
    """One log's content as it passes the compressor, given block by block to :meth:`feed`
    in order. Each block's grams are computed and folded into the log's chunks on the
    indexing's own thread (one thread, taking jobs in order), so the compressor never
    waits for them; :meth:`gathered` waits for the last."""

    def __init__(self, owner: ArchiveIndexing):
        from log_archiver.search.grams import Indexer

        self._owner = owner
        self._broken = False  # failed, or finished
        self._failed = False  # a block's grams could not be computed
        self._indexer = Indexer()  # (its job() runs here, in order; take() on the thread)
        self._last = None  # the future of the last block fed

    def feed(self, block: bytes) -> None:
        if self._broken or not block:
            return
        job = self._indexer.job(block)

        def fold():
            if self._failed:
                return
            try:
                self._indexer.take(job())
            except Exception:
                self._failed = True
        try:
            self._last = self._owner.compute(fold)
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
        if self._last is not None:
            self._last.result()  # (the blocks before it were folded first)
        return None if self._failed else self._indexer.finish()


class ArchiveIndexing:
    """Sinks for the logs being stored, one thread computing their grams, and the
    writing of what they found (:meth:`flush`); :meth:`close` when done with it."""

    def __init__(self, repo):
        self._config = repo.config
        self._lock = threading.Lock()
        self._finished = []
        self._thread = None
        self._pending = deque()

    def open(self, source: Path) -> BlockSink:
        return BlockSink(self)

    def compute(self, job):
        """Run ``job`` on the grams thread, after every job given before; the caller
        waits while :data:`PENDING_MOST` are queued (each holds its block)."""
        with self._lock:
            if self._thread is None:
                from concurrent.futures import ThreadPoolExecutor

                self._thread = ThreadPoolExecutor(max_workers=1,
                                                  thread_name_prefix="search-grams")
            future = self._thread.submit(job)
            self._pending.append(future)
            oldest = self._pending.popleft() if len(self._pending) > PENDING_MOST else None
        if oldest is not None:
            oldest.result()
        return future

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

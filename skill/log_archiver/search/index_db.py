"""The search index file: an SQLite database of trigram postings over chunks of logs.

Logs are known by the SHA-256 of their stored bytes (the index record's ``checksum``):
postings describe content, and the archive index says which content is stored, for which
issue and file. A log is added in one cheap transaction (its chunks and their grams, kept
aside); :meth:`SearchIndex.merge` folds what was added into the postings, one compressed
bitmap of chunk numbers per gram. Chunk numbers are never reused, so the postings of a
removed log only point at chunks no log owns any more, and those are ignored.

Everything in it can be rebuilt from the store; a file that cannot be read as such is
reported as :class:`SearchIndexCorrupt` so the caller can start it again.
"""

from __future__ import annotations

import sqlite3
from array import array
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from pyroaring import BitMap

from log_archiver.errors import ArchiveError
from log_archiver.search.grams import LogGrams

if TYPE_CHECKING:  # numpy is loaded by reading the index, not by adding to it
    import numpy as np

SCHEMA_VERSION = "1"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS logs (
    id INTEGER PRIMARY KEY, checksum TEXT NOT NULL UNIQUE, size INTEGER NOT NULL,
    lines INTEGER NOT NULL, first_chunk INTEGER NOT NULL, chunk_count INTEGER NOT NULL,
    offsets BLOB NOT NULL, first_lines BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS pending (log_id INTEGER PRIMARY KEY, grams BLOB NOT NULL,
    counts BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS postings (gram INTEGER PRIMARY KEY, chunks BLOB NOT NULL)
    WITHOUT ROWID;
"""


class SearchIndexCorrupt(ArchiveError):
    """The search index file cannot be used; it is derived data and is built again."""

    type = "search_index_corrupt"


class IndexedLog:
    """One indexed log; its chunk table is decoded when first asked for."""

    def __init__(self, checksum: str, size: int, lines: int, first_chunk: int, count: int,
                 offsets: bytes, first_lines: bytes):
        self.checksum, self.size, self.lines = checksum, size, lines
        self.first_chunk, self.count = first_chunk, count
        self._raw = (offsets, first_lines)
        if len(offsets) != 8 * count or len(first_lines) != 8 * count:
            raise ValueError(f"log {checksum} has a damaged chunk table")

    @cached_property
    def offsets(self) -> np.ndarray:  # byte offset of each chunk
        from log_archiver.search.numpy_loader import np

        return np.frombuffer(self._raw[0], dtype=np.int64)

    @cached_property
    def first_lines(self) -> np.ndarray:  # 1-based number of each chunk's first line
        from log_archiver.search.numpy_loader import np

        return np.frombuffer(self._raw[1], dtype=np.int64)

    def chunk_range(self, index: int) -> tuple[int, int]:
        end = int(self.offsets[index + 1]) if index + 1 < self.count else self.size
        return int(self.offsets[index]), end


class SearchIndex:
    def __init__(self, path: Path):
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(path, timeout=30, isolation_level=None,
                                      check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript(_SCHEMA)
            version = self._meta("schema_version")
            if version is None:
                self.db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)",
                                (SCHEMA_VERSION,))
            elif version != SCHEMA_VERSION:
                raise SearchIndexCorrupt(f"search index {path} has schema {version!r}",
                                         "it is rebuilt from the store")
        except sqlite3.Error as error:
            raise _corrupt(path, error) from error
        self._logs: dict[str, IndexedLog] | None = None
        self._owner_table = None

    def close(self) -> None:
        self.db.close()

    def _meta(self, name: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return row[0] if row else None

    def logs(self) -> dict[str, IndexedLog]:
        """Every indexed log by checksum."""
        if self._logs is None:
            try:
                rows = self.db.execute("SELECT checksum, size, lines, first_chunk, offsets, "
                                       "first_lines, chunk_count FROM logs").fetchall()
                logs = {row[0]: IndexedLog(row[0], row[1], row[2], row[3], row[6], row[4],
                                           row[5]) for row in rows}
            except (sqlite3.Error, ValueError) as error:
                raise _corrupt(self.path, error) from error
            self._logs = logs
            self._owner_table = None
        return self._logs

    def add(self, checksum: str, grams: LogGrams) -> None:
        """Record one log's chunks (replacing what an earlier add recorded for it)."""
        counts = array("q", [len(c.grams) for c in grams.chunks])
        # one copy of the postings, bound as it is (a log of a gigabyte has tens of MB)
        flat = b"".join(c.grams for c in grams.chunks)
        offsets = array("q", [c.offset for c in grams.chunks])
        first_lines = array("q", [c.first_line for c in grams.chunks])
        try:
            with self._write():
                self._remove(checksum)
                first = int(self._meta("next_chunk") or 0)
                self.db.execute("INSERT OR REPLACE INTO meta VALUES ('next_chunk', ?)",
                                (str(first + len(grams.chunks)),))
                cursor = self.db.execute(
                    "INSERT INTO logs (checksum, size, lines, first_chunk, chunk_count, "
                    "offsets, first_lines) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (checksum, grams.size, grams.lines, first, len(grams.chunks),
                     offsets.tobytes(), first_lines.tobytes()))
                self.db.execute("INSERT INTO pending VALUES (?, ?, ?)",
                                (cursor.lastrowid, flat, counts.tobytes()))
        except sqlite3.Error as error:
            raise _corrupt(self.path, error) from error
        self._logs = None

    def remove(self, checksums: list[str]) -> None:
        if not checksums:
            return
        try:
            with self._write():
                for checksum in checksums:
                    self._remove(checksum)
        except sqlite3.Error as error:
            raise _corrupt(self.path, error) from error
        self._logs = None

    def _remove(self, checksum: str) -> None:
        row = self.db.execute("SELECT id FROM logs WHERE checksum = ?", (checksum,)).fetchone()
        if row:
            self.db.execute("DELETE FROM pending WHERE log_id = ?", row)
            self.db.execute("DELETE FROM logs WHERE id = ?", row)

    def merge(self) -> int:
        """Fold every added log into the postings; returns how many logs were folded."""
        try:
            with self._write():
                rows = self.db.execute("SELECT p.grams, p.counts, l.first_chunk FROM pending p "
                                       "JOIN logs l ON l.id = p.log_id").fetchall()
                if not rows:
                    return 0
                from log_archiver.search.numpy_loader import np

                grams, chunks = [], []
                for blob, counts, first in rows:
                    counts = np.frombuffer(counts, dtype=np.int64)
                    grams.append(np.frombuffer(blob, dtype=np.uint32))
                    chunks.append(np.repeat(np.arange(first, first + len(counts),
                                                      dtype=np.uint32), counts))
                self._fold(np.concatenate(grams), np.concatenate(chunks))
                self.db.execute("DELETE FROM pending")
                return len(rows)
        except (sqlite3.Error, ValueError) as error:
            raise _corrupt(self.path, error) from error

    def _fold(self, grams: np.ndarray, chunks: np.ndarray) -> None:
        from log_archiver.search.numpy_loader import np

        order = np.argsort(grams, kind="stable")
        grams, chunks = grams[order], chunks[order]
        starts = np.flatnonzero(np.r_[True, grams[1:] != grams[:-1]]) if grams.size \
            else np.empty(0, dtype=np.int64)
        bounds = np.r_[starts, grams.size]
        keys = grams[starts].tolist()
        existing = {}
        for i in range(0, len(keys), 500):
            batch = keys[i:i + 500]
            marks = ",".join("?" * len(batch))
            existing.update(self.db.execute(
                f"SELECT gram, chunks FROM postings WHERE gram IN ({marks})", batch))
        rows = []
        for n, gram in enumerate(keys):
            bitmap = BitMap(chunks[bounds[n]:bounds[n + 1]])
            if gram in existing:
                bitmap |= BitMap.deserialize(existing[gram])
            bitmap.run_optimize()
            rows.append((gram, bitmap.serialize()))
        self.db.executemany("INSERT OR REPLACE INTO postings VALUES (?, ?)", rows)

    def chunks_with(self, grams: set[int]) -> dict[int, BitMap]:
        """The postings of ``grams`` (an absent gram maps to an empty bitmap)."""
        found = {gram: BitMap() for gram in grams}
        keys = sorted(grams)
        try:
            for i in range(0, len(keys), 500):
                batch = keys[i:i + 500]
                marks = ",".join("?" * len(batch))
                for gram, blob in self.db.execute(
                        f"SELECT gram, chunks FROM postings WHERE gram IN ({marks})", batch):
                    found[gram] = BitMap.deserialize(blob)
        except (sqlite3.Error, ValueError) as error:
            raise _corrupt(self.path, error) from error
        return found

    def owners(self, chunks) -> dict[str, list[int]]:
        """The chunks (numbers, sorted) of each log that owns some, by checksum: their
        places in the log."""
        starts, logs = self._owners()
        found: dict[str, list[int]] = {}
        if not logs:
            return found
        from log_archiver.search.numpy_loader import np

        numbers = np.fromiter(chunks, dtype=np.int64)
        at = np.searchsorted(starts, numbers, side="right") - 1
        for number, where in zip(numbers.tolist(), at.tolist(), strict=True):
            if where < 0:
                continue
            log = logs[where]
            place = number - log.first_chunk
            if place < log.count:
                found.setdefault(log.checksum, []).append(place)
        return found

    def _owners(self):
        if self._owner_table is None:
            from log_archiver.search.numpy_loader import np

            logs = sorted(self.logs().values(), key=lambda log: log.first_chunk)
            self._owner_table = (np.array([log.first_chunk for log in logs], dtype=np.int64),
                                 logs)
        return self._owner_table

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.path.parent.glob(self.path.name + "*")
                   if p.is_file())

    def _write(self):
        return _Transaction(self.db)


class _Transaction:
    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self):
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, kind, error, trace):
        self.db.execute("COMMIT" if kind is None else "ROLLBACK")
        return False


def _corrupt(path: Path, error: Exception) -> SearchIndexCorrupt:
    return SearchIndexCorrupt(f"search index {path} cannot be used: {error}",
                              "it is derived data: it is rebuilt from the store "
                              "(`log-archiver search --rebuild`)")


def discard(path: Path) -> None:
    """Delete a search index file and its journal files."""
    for name in (path.name, path.name + "-wal", path.name + "-shm", path.name + "-journal"):
        (path.parent / name).unlink(missing_ok=True)

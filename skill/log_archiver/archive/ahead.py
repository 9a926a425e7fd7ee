"""Compressing the next issues of a batch while the current one uploads.

One issue at a time, a batch keeps every core busy only while it compresses; while the
issue uploads, is recorded and is cleaned up, one thread works and the others wait.
:class:`CompressAhead` collects and compresses the issues that come next on a thread of
its own, through one pool kept for the whole batch, and hands each issue's results to
its prepare step, which records them as if it had just made them.

Nothing is recorded ahead of an issue's turn: the index learns of a copy when prepare
records it. Results are used only if the issue's logs are still what was compressed
(names, sizes and times); otherwise prepare compresses them again. A copy made for an
issue that is then not prepared (the batch stopped, its logs changed) is deleted when
the batch is done with the issue, unless a record names it. A copy left by a killed
batch holds exactly what compressing the log again gives, so the next run makes the
same one in its place (``cleanup-local --orphans`` removes it otherwise).

A batch does this in a child process of its own (:mod:`.ahead_child`): on threads of the
batch's process, compressing would take turns with recording for Python's lock.
:class:`CompressAhead` does it on threads here (when no child can be started).
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from log_archiver.archive.collect import FoundLog, collect_logs
from log_archiver.repository import Repository

# Issues compressed ahead of the one being recorded, at most: enough to keep compressing
# while the batch frees the disk of several archived issues in one step (queue.batch)...
DEPTH = 8
AHEAD_BYTES = 512 << 20  # ...and no more than this many bytes of their logs (unless one)
LANES = 2  # issues compressed at once: one issue's last blocks leave cores idle
FLUSH_BYTES = 256 << 20  # logs indexed for search between two writes of the search index
NICE = 10  # how much lower than the batch's own thread compressing ahead runs


def _yield_to_the_batch() -> None:
    """Run this thread below the batch's: the issue being recorded is the one the batch
    waits for, and compressing the next only fills the cores it leaves idle."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), NICE)
    except (AttributeError, OSError):  # (not Linux: threads share the process's priority)
        pass


class _Made:
    def __init__(self, found: list[FoundLog], stored: list, errors: list[dict]):
        self.found = found
        self.stored = stored
        self.errors = errors


def _same_logs(a: list[FoundLog], b: list[FoundLog]) -> bool:
    return [(f.path, f.size, f.mtime) for f in a] == [(f.path, f.size, f.mtime) for f in b]


class Lanes:
    """Compresses ``issues``, in order, at most ``depth`` ahead of the batch (see
    :meth:`release`), :data:`LANES` at a time; ``made[issue]`` is the future of each
    (a :class:`_Made`). :meth:`stop` when done."""

    def __init__(self, repo: Repository, issues: list[int], *, depth: int = DEPTH):
        self._repo = repo
        self.made: dict[int, Future] = {issue: Future() for issue in issues}
        self._room = threading.Semaphore(depth)
        self._stopped = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=repo.config.workers,
                                        initializer=_yield_to_the_batch)
        from log_archiver.search.archive_hook import archive_indexing

        # one search-index write for many issues (derived data: what a killed batch did
        # not write, the next search indexes from the store)
        self._indexing = archive_indexing(repo)
        self._unflushed = 0
        self._turns = iter(list(self.made))
        self._lock = threading.Lock()
        self._picking = threading.Lock()
        self._bytes_freed = threading.Condition(self._lock)
        self._bytes_ahead = 0  # of the issues begun and not released
        self._sizes: dict[int, int] = {}
        self._released: set[int] = set()
        self._lanes = [threading.Thread(target=self._run, name=f"compress-ahead-{n + 1}",
                                        daemon=True) for n in range(LANES)]
        for lane in self._lanes:
            lane.start()

    def _run(self) -> None:
        _yield_to_the_batch()
        while True:
            self._room.acquire()
            with self._picking:  # (the other lane picks once this one's bytes are counted)
                with self._lock:
                    while self._bytes_ahead >= AHEAD_BYTES and not self._stopped.is_set():
                        self._bytes_freed.wait()
                    issue = None if self._stopped.is_set() else next(self._turns, None)
                if issue is None:
                    return
                found = self._begin(issue)
            size = 0 if found is None else self._compress(issue, found)
            with self._lock:
                self._unflushed += size
                flush = self._unflushed >= FLUSH_BYTES
                if flush:
                    self._unflushed = 0
            if flush:
                self._indexing.flush()

    def _begin(self, issue: int) -> list[FoundLog] | None:
        """``issue``'s logs, counted ahead; None when it is not to be compressed."""
        future = self.made[issue]
        if not future.set_running_or_notify_cancel():
            return None  # the batch passed it by before its turn came
        try:
            found, _ = collect_logs(self._repo.logs_dir, issue)
        except BaseException as error:  # prepare collects again, and reports it
            future.set_exception(error)
            return None
        with self._lock:
            if issue not in self._released:
                self._sizes[issue] = sum(f.size for f in found)
                self._bytes_ahead += self._sizes[issue]
        return found

    def _compress(self, issue: int, found: list[FoundLog]) -> int:
        """Compress ``issue``'s logs; returns their size."""
        from log_archiver.archive.prepare import COPIES_DURABLE, compress_quietly

        future = self.made[issue]
        try:
            stored, errors = compress_quietly(self._repo, [f.path for f in found],
                                              {f.path: f.size for f in found},
                                              pool=self._pool, indexing=self._indexing,
                                              durable=COPIES_DURABLE)
        except BaseException as error:  # prepare compresses again, and reports it
            future.set_exception(error)
            return 0
        future.set_result(_Made(found, stored, errors))
        return sum(f.size for f in found)

    def release(self, issue: int) -> None:
        """The batch is done with ``issue``: one more may be compressed ahead, and
        ``issue`` is never begun if it has not been."""
        future = self.made.get(issue)
        if future is not None:
            with self._lock:
                self._released.add(issue)
                self._bytes_ahead -= self._sizes.pop(issue, 0)
                self._bytes_freed.notify_all()
            self._room.release()
            future.cancel()

    def stop_soon(self) -> None:
        """Begin no other issue (:meth:`stop` waits for those in hand)."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        with self._lock:
            self._bytes_freed.notify_all()
        for _ in self.made:
            self._room.release()

    def stop(self) -> None:
        """Begin no other issue, wait for those in hand, write the search index."""
        self.stop_soon()
        for lane in self._lanes:
            lane.join()
        if self._indexing is not None:
            self._indexing.close()
        self._pool.shutdown()


class Ahead:
    """What a batch sees of the issues compressed ahead (by :class:`Lanes`, here or in
    a child process): ``_made[issue]``, the future of each. The batch calls :meth:`take`
    in prepare and :meth:`done_with` after each issue, and :meth:`close` at the end."""

    def __init__(self, repo: Repository, issues: list[int]):
        self._repo = repo
        self._issues = [issue for issue in dict.fromkeys(issues)
                        if repo.index.find(issue) is None]
        self._made: dict[int, Future] = {}
        self._used: set[int] = set()
        self._late: list[tuple[int, _Made]] = []  # made for an issue given up meanwhile

    def _release(self, issue: int) -> None:
        raise NotImplementedError

    def _stop(self) -> None:
        raise NotImplementedError

    def stop_soon(self) -> None:
        """Begin compressing no other issue; :meth:`close` waits for the rest."""
        raise NotImplementedError

    def take(self, issue: int, to_prepare: list[FoundLog]):
        """The stored files and errors of ``issue``'s logs, if they were compressed ahead
        and ``to_prepare`` is still exactly what was compressed; otherwise None."""
        future = self._made.get(issue)
        if future is None or issue in self._used:
            return None
        self._used.add(issue)
        try:
            made = future.result()
        except BaseException:
            return None
        if not _same_logs(made.found, to_prepare):
            self._discard(issue, made)
            return None
        return made.stored, made.errors

    def done_with(self, issue: int) -> None:
        """The batch has finished with ``issue``: make room for the next one, and delete
        what was made for it and never used."""
        future = self._made.get(issue)
        if future is None:
            return
        self._release(issue)
        if issue in self._used:
            return
        if future.cancel():  # not made (yet): what is made late goes with close()
            self._used.add(issue)
        elif future.done():
            self._used.add(issue)
            if future.exception() is None:
                self._discard(issue, future.result())
        # (still being compressed: close() deletes what it makes)

    def close(self) -> None:
        """Stop compressing ahead, wait for the file in hand, and delete every copy made
        for an issue the batch never reached."""
        self._stop()
        for issue, future in self._made.items():
            if issue not in self._used and future.done() and not future.cancelled() \
                    and future.exception() is None:
                self._discard(issue, future.result())
        for issue, made in self._late:
            self._discard(issue, made)

    def _discard(self, issue: int, made: _Made) -> None:
        entry = self._repo.index.find(issue)
        named = {log["stored_path"] for log in (entry or {}).get("logs", [])}
        for stored in made.stored:
            path = Path(stored.path)
            # only a copy beside the log it was made from, in the logs folder, is ours to
            # delete (what a child hands over is checked like any input)
            if stored.path == stored.source or path.parent != Path(stored.source).parent \
                    or not path.is_relative_to(self._repo.logs_dir):
                continue
            if path.relative_to(self._repo.logs_dir).as_posix() in named:
                continue
            try:
                os.unlink(stored.path)
            except OSError:
                pass


class CompressAhead(Ahead):
    """Compresses ``issues`` (those the index has no entry for yet) on threads of this
    process, at most ``depth`` ahead of the batch."""

    def __init__(self, repo: Repository, issues: list[int], *, depth: int = DEPTH):
        super().__init__(repo, issues)
        self._lanes = Lanes(repo, self._issues, depth=depth)
        self._made = self._lanes.made

    def _release(self, issue: int) -> None:
        self._lanes.release(issue)

    def stop_soon(self) -> None:
        self._lanes.stop_soon()

    def _stop(self) -> None:
        self._lanes.stop()

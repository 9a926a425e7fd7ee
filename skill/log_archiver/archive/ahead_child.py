"""Compressing a batch's next issues in a child process (see :mod:`.ahead`).

On threads of the batch's own process, compressing ahead and recording the current issue
take turns for Python's lock, and a batch spends much of its time waiting for it. A child
process compresses in parallel for real. It is started with the command line
(:mod:`.early_child`), so it has loaded its modules by the time the batch knows its
issues, and compresses the first ones while the batch asks GitHub which are closed.

The parent writes pickled messages to the child's stdin and reads the child's from its
stdout: first the settings and the issues, then ``("done", issue)`` as the batch finishes
each and ``("close",)`` at the end; the child answers ``("made", issue, made, hashed)``,
``("failed", issue)``, ``("cancelled", issue)`` and, once stopped, ``("closed",)``. A
child whose parent dies sees its stdin end and exits at once (a temp file it leaves is
removed by the parent, or as any killed run's); SIGINT and SIGTERM sent to the whole
process group are the parent's to act on. A child that cannot start, or dies, costs
nothing but time: prepare compresses what the child did not hand over.
"""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import threading
from concurrent.futures import Future

from log_archiver.archive.ahead import DEPTH, NICE, Ahead, Lanes
from log_archiver.archive.early_child import spawn_child, take_early
from log_archiver.repository import Repository
from log_archiver.util.hashing import adopt_remembered, remembered_entries


class ChildGone(Exception):
    """The child process stopped before it handed over this issue."""


class CompressAheadInChild(Ahead):
    """Compresses ``issues`` (those the index has no entry for yet) in a child process,
    at most ``depth`` ahead of the batch. Raises OSError when no child can be started."""

    def __init__(self, repo: Repository, issues: list[int], *, depth: int = DEPTH):
        super().__init__(repo, issues)
        self._made = {issue: Future() for issue in self._issues}
        self._closed = threading.Event()
        self._closing = False  # told to close
        self._send_lock = threading.Lock()
        self._child = take_early() or spawn_child()
        self._send((repo.config, self._issues, depth))
        self._reader = threading.Thread(target=self._read, name="compress-ahead-child",
                                        daemon=True)
        self._reader.start()

    def _send(self, message) -> None:
        with self._send_lock:
            try:
                pickle.dump(message, self._child.stdin)
                self._child.stdin.flush()
            except (OSError, ValueError):  # gone: the reader fails what it did not make
                pass

    def _read(self) -> None:
        try:
            while True:
                message = pickle.load(self._child.stdout)
                kind = message[0]
                if kind == "closed":
                    break
                future = self._made[message[1]]
                if kind == "made":
                    adopt_remembered(message[3])
                    if future.cancelled():
                        self._late.append((message[1], message[2]))
                    else:
                        future.set_result(message[2])
                elif kind == "cancelled":
                    future.cancel()
                elif not future.done():
                    future.set_exception(ChildGone(f"issue #{message[1]} failed in the child"))
        except Exception:  # (EOF: the child died; anything else: it is not to be trusted)
            pass
        finally:
            for future in self._made.values():
                if not future.done():
                    future.set_exception(ChildGone("the compressing child stopped"))
            self._closed.set()

    def _release(self, issue: int) -> None:
        self._send(("done", issue))

    def stop_soon(self) -> None:
        if not self._closing:
            self._closing = True
            self._send(("close",))

    def _stop(self) -> None:
        self.stop_soon()
        self._closed.wait()
        try:
            self._child.stdin.close()
        except OSError:
            pass
        try:
            self._child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._child.kill()
            self._child.wait()
        self._reader.join()
        if self._child.returncode != 0:  # killed half way: its temp files are stale now
            from log_archiver.archive.collect import remove_stale_temps

            remove_stale_temps(self._repo.logs_dir)


def _load_modules() -> None:
    """Import what compressing needs while the batch is still starting (a child started
    early waits for its orders meanwhile)."""
    import log_archiver.archive.prepare  # noqa: F401
    import log_archiver.search.grams  # noqa: F401
    import log_archiver.search.index_db  # noqa: F401


def child_main() -> None:
    """The child's side: compress as told, hand over each issue's results."""
    inbox = sys.stdin.buffer
    outbox = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # nothing printed by accident can corrupt the messages
    # Ctrl-C and a service manager's SIGTERM reach the whole group: the batch decides
    # when its child stops (and its death ends the child's stdin)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        os.setpriority(os.PRIO_PROCESS, 0, NICE)  # below the batch, which waits on it
    except (AttributeError, OSError):
        pass
    _load_modules()
    lock = threading.Lock()

    def send(message) -> None:
        with lock:
            pickle.dump(message, outbox)
            outbox.flush()

    try:
        config, issues, depth = pickle.load(inbox)
    except Exception:
        os._exit(2)
    repo = Repository(config=config)
    lanes = Lanes(repo, issues, depth=depth)

    def report(issue: int, future: Future) -> None:
        try:
            if future.cancelled():
                send(("cancelled", issue))
            elif future.exception() is not None:
                send(("failed", issue))
            else:
                made = future.result()
                send(("made", issue, made, remembered_entries(f.path for f in made.found)))
        except Exception:
            os._exit(3)  # the parent is gone, or a result cannot be sent: it compresses

    for issue, future in lanes.made.items():
        future.add_done_callback(lambda future, issue=issue: report(issue, future))
    while True:
        try:
            message = pickle.load(inbox)
        except Exception:  # EOF: the parent died; stop at once, whatever is half made
            os._exit(1)
        if message[0] == "done":
            lanes.release(message[1])
        elif message[0] == "close":
            break
    lanes.stop()
    send(("closed",))
    outbox.close()

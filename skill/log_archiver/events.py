"""One hook for what happens during long work: progress display, audit and metrics listen.

A library function that does long work takes ``events: Events | None = None`` and calls
``events.emit(...)`` as it goes. The names in use:

- ``stage``: a step of the workflow begins (``fields["stage"]``: ``collecting``,
  ``compressing``, ``uploading``, ``commenting``, ``cleaning``, ``committing``).
- ``files.planned``: a batch of files is about to be worked on (``bytes``: their total
  size, ``fields["files"]``: how many, ``fields["step"]``: ``compress`` or ``upload``).
- ``file.compressed`` / ``file.hashed``: one log compressed, or checksummed as it is
  (``bytes``: its size on disk, ``fields["stored_bytes"]``, ``fields["compression"]``).
- ``file.uploaded``: one file stored and verified (``bytes``: its stored size,
  ``fields["outcome"]``: ``created``, ``exists`` or ``replaced``).
- ``file.failed``: one file could not be worked on (``fields["step"]``, ``fields["error"]``;
  for an upload also ``fields["checksum"]`` and ``fields["key"]``).
- ``file.deleted``: cleanup deleted one local file (``path``: the file, relative to the
  logs dir; ``bytes``: its size; ``fields["checksum"]``: its SHA-256 as the index records
  it; ``fields["local_path"]``: the log it belongs to).
- ``index.repaired``: the index was changed by a repair (``fields["op"]``: ``update-index``,
  ``update-file-status``, ``reindex`` or ``mark-partial-archive``, with what it changed).
- ``issue.archived``: ``archive`` finished an issue, just before its commit
  (``fields["status"]``: ``ok`` or ``partial``, ``fields["logs"]``, ``bytes``: stored).
- ``archive.verified``: ``verify`` ran (``fields["status"]``, ``fields["mode"]``,
  ``fields["logs"]``, ``fields["findings"]``).

``file.uploaded`` also carries ``fields["checksum"]`` and ``fields["key"]``. The audit
trail (:mod:`log_archiver.audit.listener`) records these, and the names other commands
emit: ``object.deleted``, ``entry.held``, ``entry.released``, ``file.restored`` and
``gc.finished``.

Reserved for what comes next: ``file.state`` (a record's ``upload_status`` changed:
``fields["from"]``, ``fields["to"]``) and, for a command over many issues,
``issues.planned`` (``fields["issues"]``: how many) and ``issue.done`` (the progress
display already shows those two).

Listeners are called in the emitting thread, in the order they subscribed. A listener
that raises never stops the work: the error is kept (the first one, and a count) for the
caller to report, and later events still reach every listener.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


class Event:
    """One thing that happened; shared by every listener, so treat it as read-only.

    A plain class rather than a dataclass: every command that archives imports this
    module, and building a dataclass costs more at startup than all of this."""

    __slots__ = ("name", "issue", "path", "bytes", "fields")

    def __init__(self, name: str, issue: int | None = None, path: str | None = None,
                 bytes: int = 0, fields: dict[str, Any] | None = None):
        self.name = name
        self.issue = issue
        self.path = path  # the file's local path (relative to the logs dir when known)
        self.bytes = bytes
        self.fields = {} if fields is None else fields

    def _key(self) -> tuple:
        return self.name, self.issue, self.path, self.bytes, self.fields

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Event) and self._key() == other._key()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (f"Event({self.name!r}, issue={self.issue!r}, path={self.path!r}, "
                f"bytes={self.bytes!r}, fields={self.fields!r})")


Listener = Callable[[Event], object]


class Events:
    """Listeners for :class:`Event`; emitting with none subscribed does nothing."""

    def __init__(self) -> None:
        self._listeners: tuple[Listener, ...] = ()
        self._lock = threading.Lock()
        self.first_error: BaseException | None = None
        self.first_failed = "an event listener"  # what failed first, in words
        self.error_count = 0

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Add ``listener``; returns a function that removes it again."""
        with self._lock:
            self._listeners = (*self._listeners, listener)

        def unsubscribe() -> None:
            with self._lock:
                self._listeners = tuple(x for x in self._listeners if x is not listener)

        return unsubscribe

    @property
    def listening(self) -> bool:
        """Whether anyone listens: work done only to describe an event can be skipped."""
        return bool(self._listeners)

    def emit(self, name: str, *, issue: int | None = None, path: str | None = None,
             bytes: int = 0, **fields: Any) -> None:
        listeners = self._listeners
        if not listeners:
            return
        event = Event(name, issue, None if path is None else str(path), bytes, fields)
        for listener in listeners:
            try:
                listener(event)
            except Exception as error:
                owner = getattr(listener, "__self__", listener)  # (a bound method's object)
                self.note_error(error, getattr(owner, "describes", None))

    def note_error(self, error: BaseException, what: str | None = None) -> None:
        """Count a listener's failure (also one outside ``emit``, such as a display's
        clean-up); the first is kept, with ``what`` failed (\"the audit trail\")."""
        with self._lock:
            self.error_count += 1
            if self.first_error is None:
                self.first_error = error
                self.first_failed = what or self.first_failed

    def error_summary(self) -> str | None:
        """What the caller reports when a listener failed, or None."""
        error = self.first_error
        if error is None:
            return None
        more = f" ({self.error_count} failures in all)" if self.error_count > 1 else ""
        return f"{self.first_failed} failed: {type(error).__name__}: {error}{more}"

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
- ``file.failed``: one file could not be worked on (``fields["step"]``, ``fields["error"]``).

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
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Event:
    name: str
    issue: int | None = None
    path: str | None = None  # the file's local path (relative to the logs dir when known)
    bytes: int = 0
    fields: dict[str, Any] = field(default_factory=dict)


Listener = Callable[[Event], object]


class Events:
    """Listeners for :class:`Event`; emitting with none subscribed does nothing."""

    def __init__(self) -> None:
        self._listeners: tuple[Listener, ...] = ()
        self._lock = threading.Lock()
        self.first_error: BaseException | None = None
        self.error_count = 0

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Add ``listener``; returns a function that removes it again."""
        with self._lock:
            self._listeners = (*self._listeners, listener)

        def unsubscribe() -> None:
            with self._lock:
                self._listeners = tuple(x for x in self._listeners if x is not listener)

        return unsubscribe

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
                with self._lock:
                    self.error_count += 1
                    if self.first_error is None:
                        self.first_error = error

    def error_summary(self) -> str | None:
        """What the caller reports when a listener failed, or None."""
        error = self.first_error
        if error is None:
            return None
        more = f" ({self.error_count} failures in all)" if self.error_count > 1 else ""
        return f"an event listener failed: {type(error).__name__}: {error}{more}"

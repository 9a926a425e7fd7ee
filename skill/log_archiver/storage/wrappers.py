"""Stores around stores: retries and dry runs, for any backend.

``RetryingStore`` runs every primitive through the one :class:`RetryPolicy` (a timeout
is retried with a longer timeout where the store can adjust it). ``DryRunStore`` passes
reads through and refuses every write, recording what it refused.

Retries are counted per thread: ``with retry_tally() as tally:`` around some store calls
gives ``tally.retries``, and an error raised inside carries the count so far as
``error.retries``, so reports can say how many retries a file took.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from log_archiver.errors import ArchiveError, StorageError
from log_archiver.storage.base import AbandonedUpload, ObjectInfo, PutOutcome, Store
from log_archiver.util.retry import RetryPolicy

T = TypeVar("T")
DEFAULT_READ_TIMEOUT = 60.0
_active = threading.local()


@dataclass
class RetryTally:
    retries: int = 0


@contextmanager
def retry_tally() -> Iterator[RetryTally]:
    """Count the retries of the store calls this thread makes inside the block."""
    tally = RetryTally()
    stack = _active.__dict__.setdefault("tallies", [])
    stack.append(tally)
    try:
        yield tally
    except ArchiveError as error:
        error.retries = tally.retries
        raise
    finally:
        stack.remove(tally)


def _count(retries: int) -> None:
    for tally in _active.__dict__.get("tallies", []):
        tally.retries += retries


class _Wrapper:
    """Everything not wrapped is the inner store's (url, capabilities, URLs, ...)."""

    def __init__(self, inner: Store):
        self.inner = inner
        self.url = inner.url
        self.capabilities = inner.capabilities

    def url_for(self, key: str) -> str:
        return self.inner.url_for(key)

    def public_url_for(self, key: str) -> str | None:
        return self.inner.public_url_for(key)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.inner!r})"


class RetryingStore(_Wrapper):
    def __init__(self, inner: Store, policy: RetryPolicy):
        super().__init__(inner)
        self.policy = policy

    def _run(self, call: Callable[[Store], T]) -> T:
        if self.inner.capabilities.adjustable_timeouts:
            base = self.inner.read_timeout
            attempt = lambda timeout: call(self.inner.with_timeout(timeout))  # noqa: E731
        else:
            base = DEFAULT_READ_TIMEOUT
            attempt = lambda _timeout: call(self.inner)  # noqa: E731
        try:
            result, retries = self.policy.run(attempt, base_timeout=base)
        except ArchiveError as error:
            _count(error.retries)
            raise
        _count(retries)
        return result

    def put(self, key: str, path: Path, *, sha256: str, size: int, overwrite: bool = False,
            metadata: Mapping[str, str] | None = None) -> PutOutcome:
        return self._run(lambda store: store.put(key, path, sha256=sha256, size=size,
                                                 overwrite=overwrite, metadata=metadata))

    def get(self, key: str, dest: Path) -> None:
        self._run(lambda store: store.get(key, dest))

    def digest(self, key: str) -> tuple[int, str]:
        return self._run(lambda store: store.digest(key))

    def get_range(self, key: str, start: int, length: int) -> bytes:
        return self._run(lambda store: store.get_range(key, start, length))

    def head(self, key: str) -> ObjectInfo | None:
        return self._run(lambda store: store.head(key))

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        # Whole, so a retry after a failure half way never yields an object twice.
        return iter(self._run(lambda store: list(store.list(prefix))))

    def list_folders(self, prefix: str = "") -> list[str]:
        return self._run(lambda store: store.list_folders(prefix))

    def delete(self, key: str) -> None:
        self._run(lambda store: store.delete(key))

    def abandoned_uploads(self) -> list[AbandonedUpload]:
        return self._run(lambda store: store.abandoned_uploads())

    def discard(self, abandoned: AbandonedUpload) -> None:
        self._run(lambda store: store.discard(abandoned))

    def object_lock_status(self) -> tuple[bool, str]:
        return self._run(lambda store: store.object_lock_status())

    def set_legal_hold(self, key: str, on: bool) -> None:
        self._run(lambda store: store.set_legal_hold(key, on))


class DryRunRefused(StorageError):
    """A dry run tried to change the store."""


class DryRunStore(_Wrapper):
    """Reads pass through; ``put``, ``delete``, ``discard`` and ``set_legal_hold`` are refused
    and recorded in ``refused`` (so a dry run that tried to change the store is caught, not
    obeyed)."""

    def __init__(self, inner: Store):
        super().__init__(inner)
        self.refused: list[tuple[str, str]] = []

    def _refuse(self, action: str, what: str) -> DryRunRefused:
        self.refused.append((action, what))
        return DryRunRefused(f"dry run: {action} {what} was not performed",
                             "run the command again without --dry-run to change the store")

    def put(self, key: str, path: Path, *, sha256: str, size: int, overwrite: bool = False,
            metadata: Mapping[str, str] | None = None) -> PutOutcome:
        raise self._refuse("put", self.inner.url_for(key))

    def delete(self, key: str) -> None:
        raise self._refuse("delete", self.inner.url_for(key))

    def discard(self, abandoned: AbandonedUpload) -> None:
        raise self._refuse("discard", abandoned.location)

    def get(self, key: str, dest: Path) -> None:
        self.inner.get(key, dest)

    def digest(self, key: str) -> tuple[int, str]:
        return self.inner.digest(key)

    def get_range(self, key: str, start: int, length: int) -> bytes:
        return self.inner.get_range(key, start, length)

    def head(self, key: str) -> ObjectInfo | None:
        return self.inner.head(key)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        return self.inner.list(prefix)

    def list_folders(self, prefix: str = "") -> list[str]:
        return self.inner.list_folders(prefix)

    def abandoned_uploads(self) -> list[AbandonedUpload]:
        return self.inner.abandoned_uploads()

    def object_lock_status(self) -> tuple[bool, str]:
        return self.inner.object_lock_status()

    def set_legal_hold(self, key: str, on: bool) -> None:
        raise self._refuse("legal hold on" if on else "legal hold off", self.inner.url_for(key))


def wrapped(store: Store, policy: RetryPolicy, *, dry_run: bool = False) -> Store:
    """``store`` as every operation uses it: retried, and read-only in a dry run."""
    outer: Store = RetryingStore(store, policy)
    return DryRunStore(outer) if dry_run else outer

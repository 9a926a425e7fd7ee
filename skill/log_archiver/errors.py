"""The one exception tree of the library.

Every error says whether trying again can help (``retryable``) and what a person or an
agent should run next (``hint``). Scripts catch :class:`ArchiveError` at the boundary and
turn it into the ``errors`` list of their JSON output.
"""

from __future__ import annotations


class ArchiveError(Exception):
    """Root of every error the library raises on purpose."""

    type = "archive_error"
    retryable = False

    def __init__(self, message: str, hint: str = "", *, retryable: bool | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        if retryable is not None:
            self.retryable = retryable

    def to_dict(self) -> dict:
        return {
            "type": self.type,
            "message": self.message,
            "retryable": self.retryable,
            "hint": self.hint,
        }


class UsageError(ArchiveError):
    """Bad arguments: the caller must change the command line (exit code 2)."""

    type = "usage"


class ConfigError(ArchiveError):
    type = "config"


class IndexCorruptError(ArchiveError):
    """The index cannot be read or breaks its schema; it is never overwritten."""

    type = "index_corrupt"


class IndexLockTimeout(ArchiveError):
    type = "index_locked"
    retryable = True


class NotArchivedError(ArchiveError):
    type = "not_archived"


class LocalFileError(ArchiveError):
    """A local file or folder cannot be read or written (permission, full disk, ...)."""

    type = "local_file"


class StorageError(ArchiveError):
    """Any failure of the storage backend."""

    type = "storage"


class StorageTransientError(StorageError):
    """Network error, 5xx: worth retrying with the network backoff."""

    type = "storage_transient"
    retryable = True
    kind = "network"


class StorageTimeoutError(StorageTransientError):
    type = "storage_timeout"
    kind = "timeout"


class StorageThrottledError(StorageTransientError):
    type = "storage_throttled"
    kind = "throttle"


class StorageNotFoundError(StorageError, FileNotFoundError):
    type = "storage_not_found"


class StoragePermissionError(StorageError, PermissionError):
    """Bad credentials or access denied: retrying cannot help."""

    type = "storage_permission"


class StorageConflictError(StorageError):
    """A different object already sits at the key; it is never overwritten silently."""

    type = "storage_conflict"


class ChecksumMismatchError(StorageError):
    """The stored bytes are not the bytes we meant to store."""

    type = "checksum_mismatch"


class IntegrityError(ArchiveError):
    """Bytes read back do not match the checksum the index records for them: a damaged
    stored copy (or table), never shown or written."""

    type = "integrity"


class UnverifiableError(StorageError):
    """The store holds an object but nothing it offers can prove its bytes (no checksum
    of the server's own, and reading it back failed)."""

    type = "unverifiable"


class ClockSkewError(StorageError):
    """The server refused the request because the local clock is off."""

    type = "clock_skew"


class GitHubError(ArchiveError):
    type = "github"


class GitHubTransientError(GitHubError):
    type = "github_transient"
    retryable = True
    kind = "network"


class GitHubThrottledError(GitHubTransientError):
    type = "github_throttled"
    kind = "throttle"


class TriggerNotMetError(ArchiveError):
    """The archive reason (issue closed, PR merged) does not hold."""

    type = "trigger_not_met"


class GitError(ArchiveError):
    type = "git"


class GitLockedError(GitError):
    type = "git_locked"
    retryable = True

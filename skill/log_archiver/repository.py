"""What every operation needs, built once per command: the repository.

It carries the configuration, the archive index, the store, the retry policy, a GitHub
client made on first use, and the dry-run flag. Operations take one and nothing else
from their caller's world.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from log_archiver.audit.trail import AuditTrail
from log_archiver.config import Config
from log_archiver.errors import ArchiveError, UsageError
from log_archiver.events import Events
from log_archiver.index.file import ArchiveIndex
from log_archiver.util.retry import RetryPolicy

# Not a failure: a local run without GitHub is a normal one (summaries show it as a note).
NO_GITHUB_REPOSITORY = ("GitHub steps skipped: no GitHub repository is known "
                        "(set GITHUB_REPOSITORY=owner/name)")


@dataclass
class Repository:
    config: Config
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    dry_run: bool = False
    events: Events = field(default_factory=Events)  # progress and the audit trail listen
    audit: AuditTrail | None = None  # set by :meth:`start_audit`
    _pools: dict | None = field(default=None, repr=False)  # kept by :meth:`keeping_pools`
    _pools_thread: int | None = field(default=None, repr=False)  # ... for this thread

    def start_audit(self) -> AuditTrail | None:
        """Record every change this command makes to the archive in the audit trail
        (a dry run changes nothing and records nothing). A trail that is a symlink is
        refused here, before the command changes anything."""
        if self.dry_run:
            return None
        if self.audit is None:
            from log_archiver.audit.listener import AuditListener
            from log_archiver.audit.trail import audit_dir

            trail = AuditTrail(audit_dir(self.logs_dir), user_cwd=self.config.root)
            trail.check()
            self.audit = trail
            self.events.subscribe(AuditListener(self.audit))
            self.index.before_write.append(self.audit.sync)
        return self.audit

    def audit_deferred(self):
        """A block whose audit lines are synced together (see :meth:`AuditTrail.deferred`)."""
        from contextlib import nullcontext

        return self.audit.deferred() if self.audit is not None else nullcontext()

    @contextmanager
    def keeping_pools(self):
        """Thread pools asked for inside (:meth:`pool`) are kept until the block ends, so
        that a batch starts and joins no threads for each issue: under load a new thread
        can wait a long time for its first turn on a core."""
        if self._pools is not None:
            yield
            return
        self._pools, self._pools_thread = {}, threading.get_ident()
        try:
            yield
        finally:
            pools, self._pools = self._pools, None
            for pool in pools.values():
                pool.shutdown()

    @contextmanager
    def pool(self, name: str, workers: int, *, most: int | None = None):
        """A thread pool for one step: of ``workers`` threads, made for this call; or,
        inside :meth:`keeping_pools`, the one kept under ``name`` (``most`` threads, at
        most: it starts them as work comes)."""
        from concurrent.futures import ThreadPoolExecutor

        pools = self._pools
        if pools is None or self._pools_thread != threading.get_ident():
            # (kept pools are the keeping thread's: another thread's block may outlive them)
            with ThreadPoolExecutor(max_workers=max(1, workers)) as made:
                yield made
            return
        kept = pools.get(name)
        if kept is None:
            kept = pools[name] = ThreadPoolExecutor(
                max_workers=max(1, most or workers), thread_name_prefix=name)
        yield kept

    @cached_property
    def index(self) -> ArchiveIndex:
        return ArchiveIndex(self.config.index_path)

    @cached_property
    def store(self):
        """The configured store, retried by :attr:`policy` and read-only in a dry run."""
        from log_archiver.storage import open_store
        from log_archiver.storage.wrappers import wrapped

        return wrapped(open_store(self.config.storage, self.config), self.policy,
                       dry_run=self.dry_run)

    @property
    def logs_dir(self) -> Path:
        return self.config.logs_dir

    @cached_property
    def _github(self) -> tuple[object | None, ArchiveError | None]:
        from log_archiver.integrations.github import GitHubClient

        try:
            return GitHubClient.from_config(self.config, policy=self.policy), None
        except ArchiveError as error:
            return None, error

    @property
    def github(self):
        """The GitHub client of the configured repository, or None (see :attr:`github_error`)."""
        return self._github[0]

    @property
    def github_error(self) -> ArchiveError | None:
        """Why there is no GitHub client, when making one failed (not just unconfigured)."""
        return self._github[1]

    def use_github(self, client) -> None:
        """Put ``client`` in the place of the configured GitHub client (a batch hands one
        that remembers what GitHub already said)."""
        self._github = (client, None)

    def github_warning(self) -> str | None:
        """What to tell the user when the GitHub steps are skipped."""
        if self.github is not None:
            return None
        if self.github_error is not None:
            return f"GitHub steps skipped: {self.github_error.message}"
        return NO_GITHUB_REPOSITORY

    def check_logs_dir(self) -> None:
        if not self.logs_dir.is_dir():
            raise UsageError(f"logs dir {self.logs_dir} does not exist",
                             "set LOG_ARCHIVER_LOGS_DIR or logs_dir in .log-archiver.json")

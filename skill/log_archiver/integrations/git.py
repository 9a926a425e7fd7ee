"""Commit the archive index, and only it (workflow spec, step 9).

The commit is built with git plumbing, the way ``git commit --only -- <index>`` builds
it: a throw-away git index starts from HEAD (or empty, in a repository without commits),
takes the archive index's new blob (and drops the issue's archived logs that cleanup
deleted, when git tracks them), and becomes the commit's tree; HEAD moves with a
compare-and-swap ``update-ref``. The user's own git index changes in those entries only,
written under git's own ``index.lock`` protocol: every other staged change stays staged,
every unstaged change unstaged. Each run first checks that the git index agrees with
HEAD on those entries and repairs them when not (a run killed after moving HEAD), and
removes an ``index.lock`` a killed run of ours left (:mod:`.gitlock`). Hooks do not run
(this is a bookkeeping commit); ``commit.gpgSign`` is honoured.

The caller holds the archive index's file lock around :func:`commit_index`, so the
committed bytes are stable. Other git processes holding ``index.lock`` are waited for
briefly (the retry policy), then :class:`GitLockedError` names the lock file.
"""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path

from log_archiver.audit.trail import DAY_FILE, audit_dir
from log_archiver.errors import GitError
from log_archiver.integrations.comment import human_size
from log_archiver.integrations.gitlock import remove_stale_files, take_lock
from log_archiver.integrations.gitplumbing import (
    ZERO_SHA,
    GitFailed,
    find_repository,
    git_error,
    index_info,
    run_git,
)
from log_archiver.util.retry import RetryPolicy

# git's lock is normally held for milliseconds: wait a few seconds in all, then give up
LOCK_POLICY = RetryPolicy(network_delays=(0.1, 0.25, 0.5, 1.0, 2.0), max_retries=5,
                          max_seconds=10.0)
_IN_PROGRESS = {"MERGE_HEAD": "a merge", "CHERRY_PICK_HEAD": "a cherry-pick",
                "REVERT_HEAD": "a revert", "rebase-merge": "a rebase", "rebase-apply": "a rebase"}


def commit_message(issue: int, log_count: int, freed_bytes: int, reason: str, *,
                   stored: int | None = None, cloud: bool = True, untracked: int = 0) -> str:
    """The workflow spec's message. ``stored`` (when fewer than ``log_count``) says the
    archive is partial; ``cloud`` is false for a local folder store; ``untracked`` counts
    the archived logs the commit removes from git."""
    where = "cloud storage" if cloud else "local storage"
    noun = "log" if log_count == 1 else "logs"
    if stored is not None and stored < log_count:
        archived = (f"- Archived {stored} of {log_count} {noun} to {where} "
                    f"(partial: {log_count - stored} still to upload)")
    else:
        archived = f"- Archived {log_count} {noun} to {where}"
    freed = (f"- Freed {human_size(freed_bytes)} locally" if freed_bytes > 0
             else "- Freed nothing locally yet (logs stay until their upload is verified)")
    removed = ""
    if untracked:
        removed = (f"- Removed {untracked} archived {'log' if untracked == 1 else 'logs'} "
                   "from git (the store and the index keep them)\n")
    return (f"Archive logs for issue #{issue}\n\n"
            f"{archived}\n"
            "- Updated archive index\n"
            f"{freed}\n"
            f"{removed}\n"
            f"Archive reason: {reason}\n"
            f"Issue: #{issue}\n")


def commit_archive(index, issue: int, *, repo_root: Path | None = None,
                   freed_bytes: int | None = None, policy: RetryPolicy | None = None,
                   untrack_logs: bool = True) -> dict:
    """Commit ``index`` (an :class:`.index.ArchiveIndex`) with the message for ``issue``.

    The index lock is held throughout, so the committed bytes are the ones the message
    describes. ``freed_bytes`` defaults to the disk space the entry's cleaned logs took.
    With ``untrack_logs``, the issue's cleaned logs that git tracks and that are gone
    from disk leave git in the same commit (see :func:`cleaned_log_paths`).
    Returns and raises as :func:`commit_index` (and :class:`.errors.NotArchivedError`).
    """
    with index.locked():
        entry = index.read_entry(issue)
        if freed_bytes is None:
            freed_bytes = sum(log["original_size_bytes"]
                              + (log["size_bytes"] if log["compressed"] else 0)
                              for log in entry["logs"] if log["upload_status"] == "cleaned")
        from log_archiver.model.states import STORED as STORED_STATES

        stored = sum(log["upload_status"] in STORED_STATES for log in entry["logs"])

        def message(untracked: list[str]) -> str:
            return commit_message(issue, entry["total_logs"], freed_bytes,
                                  entry["archive_reason"], stored=stored,
                                  cloud=not entry.get("storage_url", "").startswith("file:"),
                                  untracked=len(untracked))

        logs_dir = Path(index.path).absolute().resolve().parent
        untrack = cleaned_log_paths(entry, logs_dir) if untrack_logs else []
        return commit_index(index.path, message, repo_root=repo_root, policy=policy,
                            untrack=untrack,
                            along=audit_dir(Path(index.path).absolute().parent))


def cleaned_log_paths(entry: dict, logs_dir: Path) -> list[Path]:
    """The files of ``entry``'s cleaned logs (originals and compressed copies), each
    inside ``logs_dir``; a record naming a path outside it (``../x``, an absolute path) is
    left out."""
    base = Path(os.path.normpath(Path(logs_dir).absolute()))
    paths = []
    for log in entry.get("logs") or []:
        if log.get("upload_status") != "cleaned":
            continue
        names = [log.get("local_path")]
        if log.get("compressed"):
            names.append(log.get("stored_path"))
        for name in names:
            if not isinstance(name, str) or not name or "\0" in name:
                continue
            path = Path(os.path.normpath(base / name))
            if path != base and path.is_relative_to(base):
                paths.append(path)
    return paths


def _noop(reason: str, **extra) -> dict:
    return {"status": "noop", "reason": reason, **extra}


def commit_index(index_path: Path, message, *, repo_root: Path | None = None,
                 policy: RetryPolicy | None = None, untrack=(), along: Path | None = None
                 ) -> dict:
    """Commit the archive index file alone (and the removal of ``untrack``).

    ``message`` is the commit message, or a function of the list of paths the commit
    removes from git that returns it. ``untrack`` names files (absolute, or relative to
    the current folder) to remove from git in the same commit: only those in the archive
    index's folder or below, missing from disk, that HEAD or the git index holds; they
    leave the user's git index too (as a staged deletion would), nothing else does.

    Every run also checks that the user's git index agrees with HEAD on these paths and
    repairs its entries when not (a run killed after moving HEAD leaves them behind).

    ``along`` is the audit trail's folder: its day files that differ from HEAD go into
    the same commit (and the user's git index), so the trail is committed with the index
    it describes. They never make a commit on their own.

    Returns ``{"status": "ok", "commit", "message", "path", "branch", "detached",
    "root_commit", "retries", "committed", "untracked"}`` (``note`` explains a detached
    HEAD or an ignored file; ``committed`` false with ``index_repaired`` when only the git
    index needed repair), or ``{"status": "noop", "reason"}`` when there is no git
    repository, the file is outside it or missing, or HEAD and the git index already hold
    these bytes. Raises :class:`GitLockedError` (another git process holds a lock) and
    :class:`GitError`.
    """
    index_path = Path(index_path).absolute()
    start = Path(repo_root) if repo_root is not None else index_path.parent
    found = find_repository(start, search_parents=repo_root is None)
    if isinstance(found, str):
        return _noop(found, path=str(index_path))
    work, git_dir, git_index = found
    try:
        rel = index_path.resolve().relative_to(work).as_posix()
    except ValueError:
        return _noop(f"{index_path} is outside the git work tree {work}", path=str(index_path))
    if not index_path.is_file():
        return _noop(f"{index_path} does not exist; nothing to commit", path=rel)
    gone = _gone_under(index_path, work, rel, untrack)
    runner = _Committer(work, git_dir, git_index, rel, message, _inside(along, work))
    runner.check_state()
    result, retries = (policy or LOCK_POLICY).run(lambda _timeout: runner.attempt(gone))
    if result["status"] == "ok":
        result["retries"] = retries
    return result


def _gone_under(index_path: Path, work: Path, rel: str, paths) -> list[str]:
    """``paths`` as work-tree paths, kept only when inside the index's folder and missing
    from disk."""
    folder = Path(os.path.normpath(index_path.resolve().parent))
    kept = []
    for path in paths:
        path = Path(os.path.normpath(Path(path).absolute()))
        if not path.is_relative_to(folder) or path == folder or os.path.lexists(path):
            continue
        name = path.relative_to(work).as_posix()
        if name != rel and ".git" not in name.split("/") and name not in kept:
            kept.append(name)
    return kept


def _inside(folder: Path | None, work: Path) -> str | None:
    """``folder`` relative to the work tree, when it is an existing folder inside it."""
    if folder is None or not Path(folder).is_dir():
        return None
    try:
        return Path(folder).resolve().relative_to(work).as_posix()
    except ValueError:
        return None


class _Committer:
    def __init__(self, work: Path, git_dir: Path, git_index: Path, rel: str, message,
                 along: str | None = None):
        self.work, self.rel, self.message = work, rel, message
        self.along = along
        self.git_dir = git_dir
        self.git_index = git_index
        self.lock = self.git_index.with_name(self.git_index.name + ".lock")

    def _git(self, *args: str, env: dict | None = None, check: bool = True,
             stdin: bytes | None = None, strip: bool = True) -> str:
        try:
            return run_git(self.work, args, env=env, stdin=stdin, strip=strip)
        except GitFailed as error:
            if not check:
                return ""
            raise git_error(error, args, self.git_index) from error

    def check_state(self) -> None:
        for name, what in _IN_PROGRESS.items():
            if (self.git_dir / name).exists():
                raise GitError(f"{what} is in progress in {self.work}; the archive index "
                               f"{self.rel!r} was not committed",
                               "finish or abort it (`git status` says how), then run "
                               "`log-archiver commit` again")

    def attempt(self, untrack: list[str]) -> dict:
        remove_stale_files(self.git_dir, self.lock)
        along = self._changed_along()
        blob, *along_blobs = self._git("hash-object", "-w", "--", self.rel, *along).split()
        extra = dict(zip(along, along_blobs, strict=True))
        head = self._git("rev-parse", "--verify", "-q", "HEAD", check=False) or None
        in_head = self._blobs_in(head, [self.rel, *untrack]) if head else {}
        drop = sorted(path for path in untrack if path in in_head)
        need_commit = in_head.get(self.rel, "") != blob or bool(drop)
        if not need_commit:  # only day files HEAD already holds (a run killed after HEAD
            extra = {path: sha for path, sha in extra.items()  # moved): their entries
                     if self._git("rev-parse", "--verify", "-q", f"{head}:{path}",
                                  check=False) == sha}       # are repaired, nothing more
        if not need_commit and not extra and self._user_index_agrees(blob, untrack):
            return _noop(f"{self.rel} is unchanged since the last commit ({head[:12]})",
                         path=self.rel, commit=head)
        branch = self._git("symbolic-ref", "-q", "HEAD", check=False) or None
        fd, owner = take_lock(self.git_dir, self.lock)
        renamed = False
        try:
            commit = self._commit(head, blob, drop, extra) if need_commit else head
            if need_commit:
                self._update_ref(head, commit)
            # the user's git index is read only now, under its lock, so nothing staged
            # meanwhile is lost
            data = self._user_index_with(blob, untrack, extra)
            with os.fdopen(fd, "wb") as out:
                fd = -1
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(self.lock, self.git_index)
            renamed = True
        finally:
            if fd >= 0:
                os.close(fd)
            if not renamed:
                self.lock.unlink(missing_ok=True)
            if owner is not None:
                owner.unlink(missing_ok=True)
        result = {"status": "ok", "commit": commit, "path": self.rel,
                  "branch": branch.removeprefix("refs/heads/") if branch else None,
                  "detached": branch is None, "root_commit": head is None,
                  "committed": need_commit, "untracked": drop}
        notes = []
        if need_commit:
            result["message"] = self._message(drop)
        else:
            result["message"] = (f"HEAD ({head[:12]}) already holds {self.rel}; the git "
                                 "index entries that disagreed with it were repaired")
            result["index_repaired"] = True
        if need_commit and branch is None:
            notes.append(f"HEAD is detached: the commit {commit[:12]} is on no branch; "
                         f"`git branch <name> {commit[:12]}` keeps it")
        if self.rel not in in_head and self._ignored():  # (git tracks a file it holds)
            notes.append(f"{self.rel} matches .gitignore; it was committed anyway")
        if notes:
            result["note"] = "; ".join(notes)
        return result

    def _message(self, dropped: list[str]) -> str:
        return self.message(dropped) if callable(self.message) else self.message

    def _ignored(self) -> bool:
        try:
            run_git(self.work, ["check-ignore", "-q", "--no-index", "--", self.rel])
        except GitFailed:
            return False
        return True

    def _blobs_in(self, treeish: str, paths: list[str]) -> dict[str, str]:
        """``{path: object}`` of those of ``paths`` the tree of ``treeish`` holds."""
        wanted = set(paths)
        listed = self._git("ls-tree", "-r", "-z", "--full-tree", treeish, *self._scope(),
                           strip=False, env={"GIT_LITERAL_PATHSPECS": "1"})
        found = {}
        for record in listed.split("\0"):
            info, _, name = record.partition("\t")
            fields = info.split(" ")
            if name in wanted and len(fields) == 3:
                found[name] = fields[2]
        return found

    def _index_entries(self) -> dict[str, list[tuple[str, str, str]]]:
        """Every entry of the user's git index: path -> [(mode, blob, stage), ...]."""
        listed = self._git("ls-files", "-s", "-z", "--full-name", *self._scope(), strip=False,
                           env={"GIT_LITERAL_PATHSPECS": "1"})
        entries: dict[str, list[tuple[str, str, str]]] = {}
        for record in listed.split("\0"):
            if not record:
                continue
            info, _, name = record.partition("\t")
            mode, sha, stage = info.split(" ")
            entries.setdefault(name, []).append((mode, sha, stage))
        return entries

    def _user_index_agrees(self, blob: str, untrack: list[str]) -> bool:
        entries = self._index_entries()
        return (entries.get(self.rel) == [("100644", blob, "0")]
                and not any(path in entries for path in untrack))

    def _changed_along(self) -> list[str]:
        """The day files of the audit folder git sees changed or new."""
        if self.along is None:
            return []
        listed = self._git("status", "--porcelain=v1", "-z", "--untracked-files=all",
                           "--ignored=matching", "--no-renames", "--", self.along,
                           strip=False, env={"GIT_LITERAL_PATHSPECS": "1"})
        names = []
        for record in listed.split("\0"):
            name = record[3:]
            if len(record) > 3 and name.rpartition("/")[0] == self.along \
                    and DAY_FILE.match(name.rpartition("/")[2]) \
                    and (self.work / name).is_file() and not (self.work / name).is_symlink():
                names.append(name)
        return names

    def _scope(self) -> list[str]:
        """A pathspec for the archive index's folder, where everything we look at lies."""
        folder = self.rel.rpartition("/")[0]
        return ["--", folder] if folder else []

    def _scratch(self) -> Path:
        return self.git_dir / f"log-archiver-index-{os.getpid()}-{secrets.token_hex(4)}"

    def _commit(self, head: str | None, blob: str, drop: list[str],
                extra: dict[str, str]) -> str:
        scratch = self._scratch()
        env = {"GIT_INDEX_FILE": str(scratch)}
        try:
            if head:
                self._git("read-tree", head, env=env)
            else:
                self._git("read-tree", "--empty", env=env)
            self._git("update-index", "-z", "--index-info", env=env,
                      stdin=index_info(self.rel, blob, drop, extra))
            tree = self._git("write-tree", env=env)
        finally:
            scratch.unlink(missing_ok=True)
            scratch.with_name(scratch.name + ".lock").unlink(missing_ok=True)
        parents = ["-p", head] if head else []
        sign = self._git("config", "--type=bool", "--get", "commit.gpgsign", check=False)
        options = ["-S"] if sign == "true" else []  # commit-tree ignores the setting itself
        message = self._message(drop)
        return self._git("commit-tree", *options, tree, *parents, "-m", message.rstrip("\n"))

    def _update_ref(self, head: str | None, commit: str) -> None:
        message = self._message([])
        subject = message.splitlines()[0] if message.strip() else "archive index"
        kind = "commit" if head else "commit (initial)"
        self._git("update-ref", "-m", f"{kind}: {subject}", "HEAD", commit, head or ZERO_SHA)

    def _user_index_with(self, blob: str, untrack: list[str],
                         extra: dict[str, str] | None = None) -> bytes:
        """The user's git index with the archive index's entry set to ``blob`` and the
        entries of ``untrack`` removed; nothing else changes."""
        scratch = self._scratch()
        try:
            if self.git_index.exists():
                shutil.copyfile(self.git_index, scratch)
            env = {"GIT_INDEX_FILE": str(scratch)}
            present = set(self._index_entries()) if untrack else set()
            self._git("update-index", "-z", "--index-info", env=env,
                      stdin=index_info(self.rel, blob,
                                        [p for p in untrack if p in present], extra))
            return scratch.read_bytes()
        finally:
            scratch.unlink(missing_ok=True)
            scratch.with_name(scratch.name + ".lock").unlink(missing_ok=True)

"""git plumbing for :mod:`.git`'s commit: running git, its input, and its errors.

git runs as a plain subprocess: importing a library to start a few processes would cost
a one-issue archive more than the commit itself.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from log_archiver.errors import GitError, GitLockedError

ZERO_SHA = "0" * 40
# git's messages in English, whatever the user's locale: git_error reads them
_PLAIN = {"LC_ALL": "C", "LANGUAGE": "C"}


class GitFailed(Exception):
    """A git command that exited non-zero (``stderr`` as text)."""

    def __init__(self, args, status: int, stderr: str):
        super().__init__(f"git {' '.join(args[:2])} exited {status}: {stderr[:200]}")
        self.status = status
        self.stderr = stderr


def run_git(cwd: Path | str, args, *, env: dict | None = None, stdin: bytes | None = None,
            strip: bool = True) -> str:
    """git's standard output (one final newline dropped when ``strip``); raises
    :class:`GitFailed`, or :class:`GitError` when git cannot be run at all."""
    try:
        process = subprocess.Popen(["git", *args], cwd=cwd,
                                   env={**os.environ, **_PLAIN, **(env or {})},
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE)
    except OSError as error:
        raise GitError(f"git could not be run: {error}",
                       "install git, or set `git.commit` to false in .log-archiver.json") \
            from error
    with process:
        try:
            stdout, stderr = process.communicate(stdin if stdin is not None else b"")
        except KeyboardInterrupt:
            # A SIGTERM sent to this process alone: git (quick) is let finish, since one
            # killed mid-write leaves a .lock that stops every later git command.
            process.communicate()
            raise
    if process.returncode != 0:
        raise GitFailed(args, process.returncode, stderr.decode("utf-8", "replace"))
    out = stdout.decode("utf-8", "surrogateescape")
    return out[:-1] if strip and out.endswith("\n") else out


def index_info(rel: str, blob: str, drop: list[str],
                extra: dict[str, str] | None = None) -> bytes:
    """``git update-index -z --index-info`` input: ``rel`` set to ``blob`` (dropping any
    conflict stages it had), each of ``drop`` removed, each of ``extra`` set to its blob."""
    extra = extra or {}
    lines = [f"0 {ZERO_SHA}\t{path}" for path in [rel, *drop, *extra]]
    lines.append(f"100644 {blob}\t{rel}")
    lines += [f"100644 {sha}\t{path}" for path, sha in extra.items()]
    return "".join(f"{line}\0" for line in lines).encode("utf-8", "surrogateescape")


def git_error(error, args: tuple, git_index: Path) -> GitError:
    stderr = (error.stderr or "").strip().removeprefix("stderr:").strip().strip("'").strip()
    command = "git " + " ".join(args[:2])
    if "Unable to create" in stderr and ".lock" in stderr:
        return GitLockedError(f"{command} found a git lock held: {stderr}",
                              "wait for the other git command to finish; if none is running, "
                              "delete the lock file named here and run `log-archiver commit` "
                              "again")
    if args[:1] == ("update-ref",) and ("but expected" in stderr or "cannot lock ref" in stderr):
        return GitLockedError(f"HEAD moved while the archive index was committed: {stderr}",
                              "run `log-archiver commit` again")
    if "Please tell me who you are" in stderr or "empty ident" in stderr:
        return GitError(f"{command} failed: git does not know who you are ({stderr[:200]!r})",
                        'run `git config user.name "Your Name"` and `git config user.email '
                        'you@example.com`, then `log-archiver commit`')
    if "failed to sign" in stderr:
        return GitError(f"{command} could not sign the commit: {stderr[:300]!r}",
                        "commit.gpgSign is on: fix the signing setup (`git commit` fails the "
                        "same way), then run `log-archiver commit` again")
    return GitError(f"{command} failed in {git_index.parent}: {stderr[:500]!r}",
                    "fix the repository state shown by `git status`, then run "
                    "`log-archiver commit` again")


def find_repository(start: Path, *, search_parents: bool) -> tuple[Path, Path, Path] | str:
    """``(work tree, git dir, git index)`` of the repository ``start`` lies in (or is the
    top of, without ``search_parents``), or why there is none to commit to."""
    if not start.is_dir():
        return f"{start} is not inside a git repository"
    try:
        bare, git_dir, top, git_index = run_git(
            start, ["rev-parse", "--is-bare-repository", "--absolute-git-dir",
                    "--show-toplevel", "--git-path", "index"]).split("\n")
    except (GitFailed, ValueError):
        try:
            bare, git_dir = run_git(start, ["rev-parse", "--is-bare-repository",
                                            "--absolute-git-dir"]).split("\n")
        except (GitFailed, ValueError):
            return f"{start} is not inside a git repository"
        if bare == "true":
            return f"{git_dir} is a bare repository"
        return f"{start} has no git work tree"
    if bare == "true":
        return f"{git_dir} is a bare repository"
    work = Path(top).resolve()
    if not search_parents and work != start.resolve():
        return f"{start} is not the top of a git repository"
    index_file = Path(git_index) if Path(git_index).is_absolute() else start / git_index
    return work, Path(git_dir), Path(os.path.normpath(index_file.absolute()))

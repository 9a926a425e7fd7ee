"""git plumbing input and git's errors, for :mod:`.git`'s commit."""

from __future__ import annotations

from pathlib import Path

from log_archiver.errors import GitError, GitLockedError

ZERO_SHA = "0" * 40


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

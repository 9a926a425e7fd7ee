"""Running git in the temp repositories of the tests."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path


def run_git(root: Path, *args: str, check: bool = True, env: dict | None = None
            ) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(root), *args], check=check, capture_output=True,
                          text=True, env=env)


def git(root: Path, *args: str) -> str:
    """The stdout of a git command that must succeed."""
    return run_git(root, *args).stdout


def init_repo(root: Path, *, origin: str | None = None) -> Path:
    """A new repository on branch main (with an ``origin`` remote when given)."""
    root.mkdir(parents=True, exist_ok=True)
    git(root, "init", "-q", "-b", "main")
    if origin:
        git(root, "remote", "add", "origin", origin)
    return root


def first_commit(root: Path) -> Path:
    """A README committed as the repository's first commit (its git index then agrees)."""
    (root / "README.md").write_text("project\n")
    git(root, "add", "README.md")
    git(root, "commit", "-q", "-m", "start")
    return root


PAUSING_GIT = """#!/bin/sh
# git, except that the Nth run of one subcommand first says so and sleeps (to be killed)
if [ "$1" = "$PAUSE_GIT_AT" ]; then
    count=$(( $(cat "$PAUSE_GIT_DIR/count" 2>/dev/null || echo 0) + 1 ))
    echo "$count" > "$PAUSE_GIT_DIR/count"
    if [ "$count" = "${PAUSE_GIT_NTH:-1}" ]; then
        touch "$PAUSE_GIT_DIR/paused"
        sleep 60
    fi
fi
exec "$REAL_GIT" "$@"
"""


def pausing_git(folder: Path) -> Path:
    """A folder holding a ``git`` that pauses before a chosen subcommand (see
    :data:`PAUSING_GIT`); put it first on PATH and set PAUSE_GIT_AT, PAUSE_GIT_NTH,
    PAUSE_GIT_DIR and REAL_GIT."""
    folder.mkdir(parents=True, exist_ok=True)
    wrapper = folder / "git"
    wrapper.write_text(PAUSING_GIT)
    wrapper.chmod(0o755)
    return folder


def audit_file(root: Path) -> str:
    """The repo-relative path of the one audit-trail file an archive run wrote.

    Named by the day the run happened, which is read from the tree rather than the clock:
    a suite that runs across midnight must not expect the wrong day's file.
    """
    files = sorted((root / "logs" / ".archive-audit").glob("*.jsonl"))
    assert len(files) == 1, files
    assert re.fullmatch(r"\d{4}-\d\d-\d\d\.jsonl", files[0].name), files[0]
    return files[0].relative_to(root).as_posix()

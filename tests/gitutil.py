"""Running git in the temp repositories of the tests."""

from __future__ import annotations

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

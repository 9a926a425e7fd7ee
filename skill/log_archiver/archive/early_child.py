"""Starting a batch's compressing child (:mod:`.ahead_child`) before the batch needs it.

A batch's command line is known before anything is imported; the settings, the index and
the list of issues are not. Started from the command line, the child loads its modules
on the core the batch's own start-up leaves idle, then waits for its orders. This module
imports nothing of the package, so starting the child is the first thing a batch does,
and every other command loads it without :mod:`subprocess`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import subprocess

_early: subprocess.Popen | None = None


def child_command() -> list[str]:
    package_parent = str(Path(__file__).resolve().parents[2])
    # isolated (-I): no environment variable, user site or current folder steers it
    return [sys.executable, "-I", "-c",
            f"import sys; sys.path.insert(0, {package_parent!r}); "
            "from log_archiver.archive.ahead_child import child_main; child_main()"]


# The child reads and compresses a block of a MiB at a time. glibc gives each such
# buffer fresh pages from the kernel and returns them when it is freed; kept in its heap
# instead, they are reused, and the run takes a third of the page faults and less time.
_MALLOC = {"MALLOC_MMAP_THRESHOLD_": str(32 << 20), "MALLOC_TRIM_THRESHOLD_": str(128 << 20)}


def spawn_child() -> subprocess.Popen:
    """A new child waiting for its orders on stdin. Raises OSError when none can start."""
    import subprocess

    return subprocess.Popen(child_command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, env={**_MALLOC, **os.environ})


def is_batch(words: list[str]) -> bool:
    """Whether ``log-archiver`` ``words`` ask for a batch that compresses ahead: archive
    with --all-closed or several issues, not a dry run nor --force."""
    if words[:1] != ["archive"] or {"--dry-run", "--force", "-h", "--help"} & set(words):
        return False
    return "--all-closed" in words or sum(word.isdigit() for word in words[1:]) >= 2


def start_early() -> None:
    """Start the child now, for the batch to take (:func:`take_early`)."""
    global _early
    try:
        _early = spawn_child()
    except OSError:  # the batch starts one itself, or compresses on threads
        _early = None


def take_early() -> subprocess.Popen | None:
    """The child started early, if one is still waiting (it is the caller's now)."""
    global _early
    child, _early = _early, None
    if child is not None and child.poll() is not None:
        return None
    return child


def discard_early() -> None:
    """End a child started early that no batch took: without orders it exits at once."""
    child = take_early()
    if child is None:
        return
    try:
        child.stdin.close()
    except OSError:
        pass
    import subprocess

    try:
        child.wait(timeout=10)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()

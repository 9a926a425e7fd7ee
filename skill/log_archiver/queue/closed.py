"""``archive --all-closed``: the issues that have logs on disk and are closed on GitHub.

The logs dir is scanned once (each type folder's names, as :mod:`.archive.collect` would
match them), and GitHub is asked only about the issues found there, one page of closed
issues at a time (:mod:`.integrations.github_closed`), never one request per issue.
"""

from __future__ import annotations

import os
import re
from datetime import datetime
from pathlib import Path

from log_archiver.errors import TriggerNotMetError
from log_archiver.integrations.github_closed import closed_issues
from log_archiver.model.issues import MAX_ISSUE
from log_archiver.model.log_types import LOG_TYPES
from log_archiver.repository import Repository
from log_archiver.util.clock import parse_iso
from log_archiver.util.fsutil import is_temp_name

_NUMBER = re.compile(r"(?<![0-9])[1-9][0-9]{0,9}(?![0-9])")


def issues_named(name: str, matches) -> set[int]:
    """The issues whose logs a file of this name is, by its folder's rule ``matches``."""
    found = set()
    for text in _NUMBER.findall(name):
        number = int(text)
        if number <= MAX_ISSUE and matches(name, number):
            found.add(number)
    return found


def issues_with_logs(logs_dir: Path) -> dict[int, int]:
    """``{issue: bytes of its logs}`` for every issue with a log in a type folder (one
    pass over the folders' names; hidden, temp and non-regular files are no logs)."""
    sizes: dict[int, int] = {}
    for folder, (_type, matches) in LOG_TYPES.items():
        try:
            entries = list(os.scandir(Path(logs_dir) / folder))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for entry in entries:
            name = entry.name
            if name.startswith(".") or is_temp_name(name):
                continue
            try:
                if not entry.is_file():
                    continue
                size = entry.stat().st_size
            except OSError:
                continue
            for issue in issues_named(name, matches):
                sizes[issue] = sizes.get(issue, 0) + size
    return dict(sorted(sizes.items()))


def plan_all_closed(repo: Repository, *, since: datetime | None = None,
                    limit: int | None = None, candidates: list[int] | None = None) -> dict:
    """``{"planned": [...], "skipped": [{issue_number, reason}], "github": {n: info},
    "candidates": n, "pages": n}``; raises when GitHub cannot be asked. ``candidates``:
    what :func:`issues_with_logs` found, when the caller scanned already."""
    repo.check_logs_dir()
    if candidates is None:
        candidates = list(issues_with_logs(repo.logs_dir))
    client = repo.github
    if client is None:
        if repo.github_error is not None:
            raise repo.github_error
        raise TriggerNotMetError(
            "--all-closed asks GitHub which issues are closed, but no GitHub repository "
            "is known", "set GITHUB_REPOSITORY=owner/name (or github.repository in "
            ".log-archiver.json), or name the issues: `log-archiver archive ISSUE...`")
    closed, pages = closed_issues(client, candidates, since=since)
    planned, skipped = [], []
    for issue in candidates:
        info = closed.get(issue)
        if info is None:
            why = ("not closed on GitHub (still open, or no such issue)" if since is None else
                   "not closed on GitHub, or not updated since --since (open, or no such "
                   "issue)")
            skipped.append({"issue_number": issue, "reason": why})
        elif info["is_pull_request"]:
            skipped.append({"issue_number": issue, "reason": "a pull request, not an issue"})
        elif since is not None and not _closed_since(info, since):
            skipped.append({"issue_number": issue,
                            "reason": f"closed before --since ({info.get('closed_at')})"})
        elif limit is not None and len(planned) >= limit:
            skipped.append({"issue_number": issue, "reason": f"past --limit {limit}"})
        else:
            planned.append(issue)
    return {"planned": planned, "skipped": skipped,
            "github": {n: closed[n] for n in planned}, "candidates": len(candidates),
            "pages": pages}


def _closed_since(info: dict, since: datetime) -> bool:
    closed_at = info.get("closed_at")
    if not closed_at:
        return True  # GitHub's own since filter let it through
    try:
        return parse_iso(closed_at) >= since
    except ValueError:
        return True

"""Commit the index after gc, hold or release, as the archive commits it (the index alone,
other staged work untouched; see :mod:`log_archiver.integrations.git`)."""

from __future__ import annotations

from log_archiver.errors import ArchiveError
from log_archiver.integrations.comment import human_size
from log_archiver.repository import Repository


def gc_message(expired_logs: int, deleted: int, freed: int, issues: list[int]) -> str:
    shown = ", ".join(f"#{n}" for n in sorted(issues)[:20]) + (", ..." if len(issues) > 20
                                                               else "")
    noun = "log" if expired_logs == 1 else "logs"
    return (f"Expire {expired_logs} archived {noun} past their retention\n\n"
            f"- Deleted {deleted} stored object{'s' if deleted != 1 else ''} "
            f"({human_size(freed)})\n"
            "- Tombstones kept in the archive index (expired_at, expired_rule)\n"
            f"- Issues: {shown}\n")


def hold_message(issue: int, hold: dict | None, *, on: bool) -> str:
    if on:
        return (f"Legal hold on issue #{issue}\n\nReason: {hold['reason']}\nBy: {hold['by']}\n"
                f"Issue: #{issue}\n")
    return f"Release the legal hold on issue #{issue}\n\nIssue: #{issue}\n"


def commit(repo: Repository, message: str) -> dict:
    """Commit the index with ``message`` (``noop`` when committing is off); never raises."""
    if not repo.config.commit:
        return {"status": "noop", "reason": "committing was turned off"}
    from log_archiver.integrations.git import commit_index

    try:
        with repo.index.locked():
            return commit_index(repo.index.path, message, repo_root=repo.config.root)
    except ArchiveError as error:
        return {"status": "error", **error.to_dict()}

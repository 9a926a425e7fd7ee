"""Whether the archive reason holds (issue closed, pull request merged), asked of GitHub."""

from __future__ import annotations

from log_archiver.errors import ArchiveError
from log_archiver.integrations.github import check_trigger
from log_archiver.repository import Repository


def note_github(repo: Repository, result: dict):
    """The GitHub client, or None with the reason added once to ``result["warnings"]``."""
    warning = repo.github_warning()
    if warning and warning not in result["warnings"]:
        result["warnings"].append(warning)
    return repo.github


def check_reason(repo: Repository, issue: int, reason: str, pr: int | None, force: bool,
                 result: dict, *, describe: bool = True) -> dict:
    """The issue's title, URL and labels when GitHub answers (the one request made for the
    title brings the labels too); raises when the reason does not hold.

    ``--force`` skips the check; ``manual`` needs none. The check goes into
    ``result["trigger"]``, warnings into ``result["warnings"]``. Without ``describe`` no
    request is made just for the title (the entry already records it)."""
    client = note_github(repo, result)
    if not force:
        if client is None and reason in ("issue_closed", "pr_merged") \
                and repo.github_error is not None:
            raise repo.github_error  # the cause, not just "no repository known"
        result["trigger"] = check_trigger(client, issue, reason, pr=pr)
    if client is None:
        return {}
    info = (result.get("trigger") or {}).get("issue")
    if info is None and not describe:
        return {}
    if info is None:
        try:
            info = client.issue(issue)
        except ArchiveError as error:
            result["warnings"].append(f"issue title not fetched: {error.message}")
            return {}
    return {"title": info.get("title"), "url": info.get("url"), "labels": info.get("labels")}

"""Which of many issues are closed, asked of GitHub one page of closed issues at a time.

``GET /repos/{owner}/{repo}/issues?state=closed&since=...&per_page=100&page=N``, newest
first, one request per page (each under the client's retry policy), never one request
per issue. Pull requests, which the endpoint lists too, are kept apart. Paging stops
once every wanted number is found or a page comes back short (the last one).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from log_archiver.integrations.github import GitHubClient, _clean_url

PER_PAGE = 100
MAX_PAGES = 1000  # 100,000 closed issues: a repository past that is asked no further


def issue_info(data: dict) -> dict:
    """What the archive keeps of one issue of GitHub's answer (the shape of
    :meth:`GitHubClient.issue`, with the time it was closed)."""
    title = data.get("title")
    closed_at = data.get("closed_at")
    return {"title": title if isinstance(title, str) else None,
            "url": _clean_url(data.get("html_url")),
            "state": data.get("state") if isinstance(data.get("state"), str) else None,
            "closed": data.get("state") == "closed",
            "is_pull_request": bool(data.get("pull_request")),
            "closed_at": closed_at if isinstance(closed_at, str) else None}


def closed_issues(client: GitHubClient, wanted: Iterable[int], *,
                  since: datetime | None = None) -> tuple[dict[int, dict], int]:
    """``({number: info}, pages asked)`` for the closed issues and pull requests among
    ``wanted`` (updated, so possibly closed, at or after ``since``)."""
    left = {int(n) for n in wanted}
    found: dict[int, dict] = {}
    if not left:
        return found, 0
    parameters = {"state": "closed", "sort": "created", "direction": "desc",
                  "per_page": PER_PAGE}
    if since is not None:
        parameters["since"] = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    path = f"/repos/{client.repository}/issues"
    pages = 0
    while left and pages < MAX_PAGES:
        page = pages + 1

        def fetch(page=page):
            data = client.get_json(path, {**parameters, "page": page})
            return data if isinstance(data, list) else []

        items = client._call(f"listing closed issues (page {page})", "closed issues",
                             fetch)
        pages += 1
        for data in items:
            number = data.get("number") if isinstance(data, dict) else None
            if isinstance(number, int) and not isinstance(number, bool) and number in left:
                info = issue_info(data)
                if info["closed"]:
                    found[number] = info
                    left.discard(number)
        if len(items) < PER_PAGE:
            break
    return found, pages



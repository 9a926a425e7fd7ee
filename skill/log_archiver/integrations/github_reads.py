"""GitHub reads without PyGithub (a plain ``GET`` of an API path, its JSON answer), and
what GitHub's error answers mean, whoever asked.

Importing PyGithub costs more than the rest of a batch's talk with GitHub, and reading an
issue or a page of closed issues needs none of its objects. The transport is the one
PyGithub uses (requests: the proxies and CA bundle of the environment, no token sent on to
another host on a redirect), with the same headers and the client's pacing. An answer
past :data:`MAX_ANSWER_BYTES`, or one that is not JSON, is refused with a clear error; an
error answer raises :class:`HTTPAnswerError` for the client to translate.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping

from log_archiver.errors import GitHubError, GitHubThrottledError, GitHubTransientError
from log_archiver.util.urls import redact_userinfo

MAX_ANSWER_BYTES = 32 << 20  # a page of 100 issues is well under 1 MiB
USER_AGENT = "log-archiver"


class HTTPAnswerError(Exception):
    """GitHub's error answer to a read (PyGithub's ``GithubException`` has the same three
    fields)."""

    def __init__(self, status: int, data, headers: dict):
        super().__init__(f"HTTP {status}")
        self.status = status
        self.data = data
        self.headers = headers


class Reader:
    """The reads of one :class:`~.github.GitHubClient` (its API URL, token, timeout and
    ``seconds_between_requests``), over one session."""

    def __init__(self, client):
        import requests

        self._client = client
        self._session = requests.Session()
        self._session.headers.update({"Accept": "application/vnd.github+json",
                                      "User-Agent": USER_AGENT})
        if client.token:
            self._session.headers["Authorization"] = f"token {client.token}"
        self._last = None

    def get_json(self, path: str, parameters: Mapping[str, object] | None = None):
        pacing = self._client.seconds_between_requests
        if self._last is not None and pacing:
            wait = self._last + pacing - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        self._last = time.monotonic()
        url = self._client.api_url + path
        with self._session.get(url, params=dict(parameters or {}),
                               timeout=self._client.timeout, stream=True) as response:
            body = _read_capped(response, url)
        if response.status_code >= 400:
            try:
                data = json.loads(body)
            except ValueError:
                data = body[:200].decode("utf-8", "replace")
            raise HTTPAnswerError(response.status_code, data, dict(response.headers))
        try:
            return json.loads(body)
        except ValueError:
            raise GitHubError(f"GitHub's answer to GET {redact_userinfo(url)} is not JSON "
                              f"(HTTP {response.status_code}, "
                              f"{response.headers.get('content-type') or 'no content type'})",
                              "check that GITHUB_API_URL is the API root, e.g. "
                              "https://ghe.example.com/api/v3, or unset it for github.com"
                              ) from None


def error_for_answer(repo: str, status: int, data, headers, doing: str, what: str, *,
                     limited: bool = False) -> Exception:
    """Our error for GitHub's error answer (``status``, its JSON ``data``) to a request
    about ``repo``, whoever made the request (PyGithub, or :class:`Reader`)."""
    message = redact_userinfo((data.get("message") if isinstance(data, dict) else None)
                              or str(data or ""))
    headers = {str(k).lower(): v for k, v in (headers or {}).items()}
    said = f"HTTP {status}: {message!r}"
    throttled = (limited or status == 429
                 or (status == 403 and (str(headers.get("x-ratelimit-remaining")) == "0"
                                        or "retry-after" in headers)))
    if throttled:
        reset = headers.get("x-ratelimit-reset")
        return GitHubThrottledError(
            f"GitHub rate limit reached while {doing} in {repo!r} ({said})",
            "wait for the limit to reset" + (f" (epoch {reset})" if reset else "")
            + " and run the step again; a token (GITHUB_TOKEN) raises the limit")
    if status >= 500:
        return GitHubTransientError(f"GitHub failed while {doing} in {repo!r} ({said})",
                                    "GitHub is having trouble; run the step again later")
    if status == 401:
        return GitHubError(f"GitHub rejected the token while {doing} ({said})",
                           "check that GITHUB_TOKEN or GH_TOKEN is valid and not expired")
    if status == 403:
        return GitHubError(
            f"GitHub denied access while {doing} in {repo!r} ({said})",
            f"give the token read/write access to issues and read access to pull "
            f"requests of {repo}")
    if status == 404:
        return GitHubError(
            f"GitHub has no {what} in {repo!r} ({said})",
            f"check the number and the repository (GITHUB_REPOSITORY={repo}); a private "
            "repository also needs GITHUB_TOKEN or GH_TOKEN")
    return GitHubError(f"GitHub refused {doing} in {repo!r} ({said})",
                       "fix the request named in the message and run the step again")


def _read_capped(response, url: str) -> bytes:
    """The body of ``response``, refused past :data:`MAX_ANSWER_BYTES` (a hostile or
    broken server does not fill the memory)."""
    parts, size = [], 0
    for part in response.iter_content(chunk_size=1 << 16):
        size += len(part)
        if size > MAX_ANSWER_BYTES:
            raise GitHubError(f"GitHub's answer to GET {redact_userinfo(url)} is larger than "
                              f"{MAX_ANSWER_BYTES >> 20} MiB",
                              "check that GITHUB_API_URL is the API root of GitHub or GitHub "
                              "Enterprise")
        parts.append(part)
    return b"".join(parts)

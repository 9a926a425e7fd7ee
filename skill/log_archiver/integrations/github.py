"""GitHub: which repository, the issue's state, the archive comment, the archive trigger.

Nothing here may block or undo an archive. Once logs are stored and indexed, callers
treat every :class:`GitHubError` from this module as a warning: the archive stands, and
the comment step can be run again later. Only :func:`check_trigger`, which runs before
anything is uploaded, is meant to stop a run (with :class:`TriggerNotMetError`).
:func:`publish_comment` wraps :meth:`GitHubClient.upsert_comment` and never raises.

Which repository: ``github.repository`` from the config, else ``GITHUB_REPOSITORY``
(``owner/name``), else the ``origin`` remote of the project root (https, ssh or scp-like
URL, with or without ``.git``; a path of more than two parts is not taken) when its host
is GitHub's: github.com, the host of ``GITHUB_SERVER_URL`` or ``GITHUB_API_URL`` (GitHub
Enterprise), or an ssh alias whose name contains "github" (``git@github-work:o/r``).
Token: ``GITHUB_TOKEN``, else ``GH_TOKEN``. API: ``GITHUB_API_URL`` (GitHub Enterprise, and
what GitHub Actions sets), else https://api.github.com. Reads (an issue, a page of
closed issues) are plain GETs through requests; comments and timelines go through PyGithub
(imported only when such a call is made). Neither retries on its own: :class:`RetryPolicy`
does it, with the spec's delays.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Mapping
from urllib.parse import urlsplit

from log_archiver.errors import (
    ArchiveError,
    ConfigError,
    GitHubError,
    GitHubTransientError,
    TriggerNotMetError,
    UsageError,
)
from log_archiver.integrations.comment import find_marker, marker
from log_archiver.util.retry import RetryPolicy
from log_archiver.util.urls import redact_userinfo, strip_userinfo

DEFAULT_API_URL = "https://api.github.com"
TRIGGER_HINT = "archive anyway with `--reason manual` or `--force`"
MAX_PR_LOOKUPS = 20

_NAME_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]+")
_URL_RE = re.compile(r"^(?:https?|git|ssh|git\+ssh)://(?:[^@/]+@)?(?P<host>[^/:]+)(?::\d*)?"
                     r"/(?P<path>.+?)/*$")
_SCP_RE = re.compile(r"^(?:[^@/:]+@)?(?P<host>[^/:]+):(?P<path>[^/].*?)/*$")
GITHUB_HOSTS = ("github.com", "www.github.com", "ssh.github.com")


def _valid_name(value: str) -> bool:
    return bool(_NAME_RE.fullmatch(value)) and value.split("/")[1] not in (".", "..")


def _parse_remote(url: str) -> tuple[str, str] | None:
    """``(host, owner/name)`` from a git remote URL, or None when it is not of that shape."""
    url = (url or "").strip()
    match = _URL_RE.match(url) or _SCP_RE.match(url)
    if not match:
        return None
    path = match.group("path")
    if path.endswith(".git"):
        path = path[:-4]
    if path.count("/") != 1 or not _valid_name(path):
        return None
    return match.group("host").lower(), path


def is_github_host(host: str, environ: Mapping[str, str] | None = None) -> bool:
    """github.com, the GitHub Enterprise host the environment names, or a "github" alias."""
    environ = os.environ if environ is None else environ
    host = host.lower()
    known = set(GITHUB_HOSTS)
    for name in ("GITHUB_SERVER_URL", "GITHUB_API_URL"):
        server = urlsplit(environ.get(name) or "").hostname
        if server:
            known.update({server, server.removeprefix("api.")})
    return host in known or "github" in host


def _origin_url(root) -> str | None:
    """The ``origin`` remote's URL (``git config``, so includes and worktrees count)."""
    if root is None:
        return None
    import subprocess

    try:
        done = subprocess.run(["git", "-C", str(root), "config", "--get", "remote.origin.url"],
                              capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    return done.stdout.strip() or None


def resolve_repository(config, environ: Mapping[str, str] | None = None) -> str | None:
    """``owner/name`` of the repository the issues live in, or None when unknown."""
    environ = os.environ if environ is None else environ
    candidates = (("github.repository in the config", getattr(config, "github_repository", None)),
                  ("GITHUB_REPOSITORY", environ.get("GITHUB_REPOSITORY")))
    for source, value in candidates:
        if value:
            value = value.strip()
            if not _valid_name(value):
                raise ConfigError(f"{source} is {value!r}, not owner/name",
                                  "set it to the repository as owner/name, e.g. octo/project")
            return value
    parsed = _parse_remote(_origin_url(getattr(config, "root", None)) or "")
    if parsed is None or not is_github_host(parsed[0], environ):
        return None
    return parsed[1]


def resolve_token(environ: Mapping[str, str] | None = None) -> str | None:
    environ = os.environ if environ is None else environ
    return environ.get("GITHUB_TOKEN") or environ.get("GH_TOKEN") or None


class GitHubClient:
    """The few GitHub calls the archive needs, each retried by one :class:`RetryPolicy`.

    ``seconds_between_requests`` / ``seconds_between_writes`` are PyGithub's own pacing
    (its defaults are 0.25 s and 1 s); ``from_config`` scales them like the retry delays
    (``LOG_ARCHIVER_RETRY_DELAY_SCALE``), so tests run with none.
    """

    def __init__(self, repository: str, token: str | None = None, *, api_url: str | None = None,
                 policy: RetryPolicy | None = None, timeout: float = 15.0,
                 seconds_between_requests: float | None = 0.25,
                 seconds_between_writes: float | None = 1.0,
                 on_retry: Callable[[BaseException, int, float], None] | None = None):
        if not _valid_name(repository):
            raise ConfigError(f"GitHub repository {repository!r} is not owner/name",
                              "set GITHUB_REPOSITORY=owner/name")
        self.repository = repository
        self.token = token
        # credentials in the URL are dropped (PyGithub would not send them either): the
        # token comes from GITHUB_TOKEN / GH_TOKEN, and the URL is printed in messages
        self.api_url = strip_userinfo((api_url or DEFAULT_API_URL).strip()).rstrip("/")
        parts = urlsplit(self.api_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"GitHub API URL {self.api_url!r} is not an http(s) URL",
                              "set GITHUB_API_URL to the API root, e.g. "
                              "https://ghe.example.com/api/v3, or unset it for github.com")
        self.policy = policy or RetryPolicy()
        self.timeout = timeout
        self.seconds_between_requests = seconds_between_requests
        self.seconds_between_writes = seconds_between_writes
        self.on_retry = on_retry
        self.retries = 0
        self._gh = None
        self._reader = None  # the reads made without PyGithub (get_json)

    @classmethod
    def from_config(cls, config, environ: Mapping[str, str] | None = None,
                    **options) -> GitHubClient | None:
        """A client for the configured repository, or None when no repository is known."""
        environ = os.environ if environ is None else environ
        repository = resolve_repository(config, environ)
        if repository is None:
            return None
        options.setdefault("api_url", environ.get("GITHUB_API_URL") or None)
        from log_archiver.util.retry import delay_scale_from_environment

        scale = delay_scale_from_environment(environ)  # 0 in tests: no pacing either
        options.setdefault("seconds_between_requests", 0.25 * scale)
        options.setdefault("seconds_between_writes", 1.0 * scale)
        return cls(repository, resolve_token(environ), **options)

    @property
    def can_write(self) -> bool:
        return bool(self.token)

    def _repo(self):
        if self._gh is None:
            from github import Auth, Github

            self._gh = Github(
                auth=Auth.Token(self.token) if self.token else None,
                base_url=self.api_url, timeout=int(max(self.timeout, 1)), retry=None,
                per_page=100, lazy=True,
                seconds_between_requests=self.seconds_between_requests,
                seconds_between_writes=self.seconds_between_writes,
            )
        return self._gh.get_repo(self.repository)

    def get_json(self, path: str, parameters: Mapping[str, object] | None = None):
        """``GET`` an API path (``/repos/...``): the JSON answer, read without PyGithub
        (:mod:`.github_reads`); an error answer raises :class:`HTTPAnswerError`, which
        :meth:`_call` translates like PyGithub's."""
        from log_archiver.integrations.github_reads import Reader

        if self._reader is None:
            self._reader = Reader(self)
        return self._reader.get_json(path, parameters)

    def _call(self, doing: str, what: str, attempt: Callable[[], object]):
        """Run ``attempt`` under the retry policy, turning PyGithub errors into ours."""
        def once(_timeout: float):
            try:
                return attempt()
            except ArchiveError:
                raise
            except Exception as error:  # noqa: BLE001 - translated, cause kept
                raise self._translate(error, doing, what) from error

        result, retries = self.policy.run(once, base_timeout=self.timeout,
                                          on_retry=self.on_retry)
        self.retries += retries
        return result

    def _translate(self, error: Exception, doing: str, what: str) -> Exception:
        from requests import RequestException

        repo = self.repository
        if isinstance(error, RequestException):
            return GitHubTransientError(
                f"could not reach GitHub at {self.api_url!r} while {doing}: "
                f"{redact_userinfo(str(error))}",
                "check the network and run the step again")
        # (PyGithub is imported only by the calls that use it)
        from log_archiver.integrations.github_reads import HTTPAnswerError, error_for_answer

        pygithub = sys.modules.get("github")
        if isinstance(error, HTTPAnswerError) or (
                pygithub is not None and isinstance(error, pygithub.GithubException)):
            limited = pygithub is not None and isinstance(
                error, pygithub.RateLimitExceededException)
            return error_for_answer(self.repository, error.status or 0, error.data,
                                    error.headers, doing, what, limited=limited)
        return GitHubError(f"unexpected failure while {doing} in {repo!r}: "
                           f"{redact_userinfo(repr(error))}",
                           "run the step again; report it if it keeps happening")

    def issue(self, number: int) -> dict:
        """``{"title", "url", "state", "closed", "is_pull_request", "labels"}`` of an issue."""
        def fetch():
            data = self.get_json(f"/repos/{self.repository}/issues/{int(number)}")
            if not isinstance(data, dict):
                data = {}
            return {"title": data.get("title"), "url": _clean_url(data.get("html_url")),
                    "state": data.get("state"), "closed": data.get("state") == "closed",
                    "is_pull_request": bool(data.get("pull_request")),
                    "labels": label_names(data.get("labels"))}

        return self._call(f"reading issue #{number}", f"issue #{number}", fetch)

    def pr_merged(self, pr_number: int) -> bool:
        def fetch():
            data = self._repo().get_pull(int(pr_number)).raw_data
            return bool(data.get("merged") or data.get("merged_at"))

        return self._call(f"reading pull request #{pr_number}",
                          f"pull request #{pr_number}", fetch)

    def find_merged_pr_for_issue(self, number: int) -> int | None:
        """The newest merged pull request of this repository that references the issue.

        Looks at the issue timeline's ``cross-referenced`` and ``connected`` events whose
        source is a pull request, newest first, and asks GitHub about each (at most
        :data:`MAX_PR_LOOKUPS`) unless the event already says it was merged.
        """
        def fetch():
            return [event.raw_data for event in self._repo().get_issue(int(number)).get_timeline()]

        events = self._call(f"reading the timeline of issue #{number}", f"issue #{number}",
                            fetch)
        candidates: dict[int, str | None] = {}
        for event in events:
            if event.get("event") not in ("cross-referenced", "connected"):
                continue
            source = (event.get("source") or {}).get("issue") or {}
            pull = source.get("pull_request")
            full_name = (source.get("repository") or {}).get("full_name")
            if not pull or not isinstance(source.get("number"), int):
                continue
            if full_name and full_name.lower() != self.repository.lower():
                continue
            candidates.pop(source["number"], None)
            candidates[source["number"]] = pull.get("merged_at") if isinstance(pull, dict) else None
        for lookups, (pr, merged_at) in enumerate(reversed(list(candidates.items()))):
            if merged_at:
                return pr
            if lookups >= MAX_PR_LOOKUPS:
                break
            if self.pr_merged(pr):
                return pr
        return None

    def upsert_comment(self, number: int, body: str) -> dict:
        """Post the archive comment, or edit the one already carrying the marker.

        Returns ``{"action": "created" | "updated" | "unchanged", "url": ...}``. Each
        attempt lists the comments again, so a retry after a lost answer edits the
        comment the first attempt created instead of posting a second one.
        """
        if not self.token:
            raise GitHubError(f"no GitHub token to comment on issue #{number} of "
                              f"{self.repository!r}",
                              "set GITHUB_TOKEN or GH_TOKEN and run the comment step again")
        if not find_marker(body, number):
            body = f"{marker(number)}\n{body}"

        def attempt():
            issue = self._repo().get_issue(int(number))
            for comment in issue.get_comments():
                if find_marker(comment.body, number):
                    if (comment.body or "").strip() == body.strip():
                        return {"action": "unchanged", "url": _clean_url(comment.html_url)}
                    comment.edit(body)
                    return {"action": "updated", "url": _clean_url(comment.html_url)}
            created = issue.create_comment(body)
            return {"action": "created", "url": _clean_url(created.html_url)}

        return self._call(f"commenting on issue #{number}", f"issue #{number}", attempt)


def label_names(labels) -> list[str]:
    """The names of an issue's labels as GitHub gives them (objects or strings), each a
    printable string of 1 to 100 characters, without repeats; anything else is dropped."""
    names: list[str] = []
    for label in labels if isinstance(labels, list) else []:
        name = label.get("name") if isinstance(label, dict) else label
        if isinstance(name, str) and 0 < len(name) <= 100 and name.isprintable() \
                and name not in names:
            names.append(name)
    return names[:100]


def _clean_url(url):
    """A URL from GitHub's answer, as we print and store it: no credentials in it."""
    return strip_userinfo(url) if isinstance(url, str) else None


def publish_comment(client: GitHubClient | None, issue: int, body: str) -> dict:
    """Post or update the archive comment; never raises, so it cannot fail an archive.

    ``status`` is ``created``/``updated``/``unchanged`` (posted), ``skipped`` (no
    repository or no token: ``body`` is returned for the output) or ``failed`` (``error``
    holds the error as a dict, for the warnings of the output).
    """
    if client is None:
        return {"status": "skipped", "reason": "no GitHub repository is known", "body": body}
    if not client.can_write:
        return {"status": "skipped", "reason": "no GITHUB_TOKEN or GH_TOKEN", "body": body}
    try:
        done = client.upsert_comment(issue, body)
    except ArchiveError as error:
        return {"status": "failed", "error": error.to_dict(), "body": body,
                "retries": getattr(error, "retries", 0)}
    return {"status": done["action"], "url": done["url"]}


def check_trigger(client: GitHubClient | None, issue: int, reason: str,
                  pr: int | None = None) -> dict:
    """Check that the archive reason holds before anything is uploaded.

    ``manual`` and ``retention`` check nothing. ``issue_closed`` needs the issue closed;
    ``pr_merged`` needs ``pr`` merged, or (without ``pr``) a merged pull request that
    references the issue. Raises :class:`TriggerNotMetError` when the reason does not
    hold or cannot be checked (no repository known, GitHub unreachable); ``--force``
    in the caller skips this check.
    """
    if reason in ("manual", "retention"):
        return {"reason": reason, "checked": False}
    if reason not in ("issue_closed", "pr_merged"):
        raise UsageError(f"archive reason {reason!r} is unknown",
                         "use issue_closed, pr_merged, manual or retention")
    if client is None:
        raise TriggerNotMetError(
            f"cannot check archive reason {reason!r} for issue #{issue}: no GitHub repository "
            "is known",
            "set GITHUB_REPOSITORY=owner/name (or github.repository in .log-archiver.json), "
            f"or {TRIGGER_HINT}")
    try:
        if reason == "issue_closed":
            info = client.issue(issue)
            if not info["closed"]:
                raise TriggerNotMetError(
                    f"issue #{issue} of {client.repository} is {info['state']!r}, not closed",
                    f"close the issue first, or {TRIGGER_HINT}")
            return {"reason": reason, "checked": True, "issue": info}
        if pr is not None:
            if not client.pr_merged(pr):
                raise TriggerNotMetError(
                    f"pull request #{pr} of {client.repository} is not merged",
                    f"merge it first, or {TRIGGER_HINT}")
            return {"reason": reason, "checked": True, "pr": pr}
        found = client.find_merged_pr_for_issue(issue)
        if found is None:
            raise TriggerNotMetError(
                f"no merged pull request of {client.repository} references issue #{issue}",
                f"name the pull request with `--pr N`, or {TRIGGER_HINT}")
        return {"reason": reason, "checked": True, "pr": found}
    except GitHubError as error:
        raise TriggerNotMetError(
            f"could not check archive reason {reason!r} for issue #{issue}: {error.message}",
            f"{error.hint}; or {TRIGGER_HINT}", retryable=error.retryable) from error

"""GitHub layer, with PyGithub answered at the HTTP layer by `responses` (no network)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import requests
import responses

from gitutil import init_repo
from log_archiver.config import Config
from log_archiver.errors import (
    ConfigError,
    GitHubError,
    GitHubThrottledError,
    GitHubTransientError,
    TriggerNotMetError,
)
from log_archiver.integrations.comment import marker
from log_archiver.integrations.github import (
    GitHubClient,
    _parse_remote,
    check_trigger,
    publish_comment,
    resolve_repository,
    resolve_token,
)
from log_archiver.util.retry import RetryPolicy

API = "https://api.github.com:443/repos/o/r"  # PyGithub spells the port out
READ = "https://api.github.com/repos/o/r"  # the reads made without PyGithub


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps():
    return Sleeps()


@pytest.fixture
def client(sleeps):
    return GitHubClient("o/r", "tok", policy=RetryPolicy(sleep=sleeps),
                        seconds_between_requests=0, seconds_between_writes=0)


@pytest.fixture
def http():
    with responses.RequestsMock() as mock:
        yield mock


def comment_json(cid: int, body: str) -> dict:
    return {"id": cid, "body": body,
            "url": f"https://api.github.com/repos/o/r/issues/comments/{cid}",
            "html_url": f"https://github.com/o/r/issues/5#issuecomment-{cid}"}


def calls(http, method: str) -> list:
    return [c for c in http.calls if c.request.method == method]


RATE_LIMITED = {"json": {"message": "API rate limit exceeded for user ID 1."}, "status": 403,
                "headers": {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1700000000"}}


# --- which repository and token ---------------------------------------------------------

def parse_remote_url(url: str) -> str | None:
    parsed = _parse_remote(url)
    return parsed[1] if parsed else None


@pytest.mark.parametrize("url", [
    "https://github.com/octo/proj.git", "https://github.com/octo/proj", "https://github.com/octo/proj/",
    "https://x-access-token:abc@github.com/octo/proj.git", "git@github.com:octo/proj.git",
    "git@github.com:octo/proj", "ssh://git@github.com/octo/proj.git",
    "ssh://git@ghe.example.com:2222/octo/proj", "git://github.com/octo/proj.git",
])
def test_parse_remote_url_forms(url):
    assert parse_remote_url(url) == "octo/proj"


@pytest.mark.parametrize("url", ["https://gitlab.com/group/sub/proj.git", "/srv/git/proj.git",
                                 "", "https://github.com/octo"])
def test_parse_remote_url_rejects_other_shapes(url):
    assert parse_remote_url(url) is None


def config_for(root: Path, repository: str | None = None) -> Config:
    return Config(root=root, logs_dir=root / "logs", github_repository=repository)


def test_repository_from_config_then_env_then_origin(tmp_path):
    root = init_repo(tmp_path / "r", origin="git@github.com:from/origin.git")
    env = {"GITHUB_REPOSITORY": "from/env"}
    assert resolve_repository(config_for(root, "from/config"), env) == "from/config"
    assert resolve_repository(config_for(root), env) == "from/env"
    assert resolve_repository(config_for(root), {}) == "from/origin"


def test_repository_unknown_without_origin_or_git(tmp_path):
    assert resolve_repository(config_for(init_repo(tmp_path / "r")), {}) is None
    plain = tmp_path / "plain"
    plain.mkdir()
    assert resolve_repository(config_for(plain), {}) is None
    assert GitHubClient.from_config(config_for(plain), {}) is None


@pytest.mark.parametrize(("origin", "env", "expected"), [
    ("https://github.com/octo/proj.git", {}, "octo/proj"),
    ("git@ssh.github.com:octo/proj.git", {}, "octo/proj"),
    ("git@github-work:octo/proj.git", {}, "octo/proj"),  # an ssh config alias
    ("https://gitlab.com/octo/proj.git", {}, None),
    ("git@bitbucket.org:octo/proj.git", {}, None),
    ("ssh://git@ghe.example.com:2222/octo/proj", {}, None),
    ("ssh://git@ghe.example.com:2222/octo/proj",
     {"GITHUB_API_URL": "https://ghe.example.com/api/v3"}, "octo/proj"),
    ("https://code.example.com/octo/proj", {"GITHUB_SERVER_URL": "https://code.example.com"},
     "octo/proj"),
    ("git@octocorp.ghe.com:octo/proj.git", {"GITHUB_API_URL": "https://api.octocorp.ghe.com"},
     "octo/proj"),
])
def test_origin_counts_only_on_a_github_host(tmp_path, origin, env, expected):
    root = init_repo(tmp_path / "r", origin=origin)
    assert resolve_repository(config_for(root), env) == expected


@pytest.mark.parametrize("url", ["ftp://ghe.example.com/api", "ghe.example.com/api/v3",
                                 "https://"])
def test_api_url_must_be_http(tmp_path, url):
    env = {"GITHUB_REPOSITORY": "o/r", "GITHUB_API_URL": url}
    with pytest.raises(ConfigError, match="GitHub API URL") as caught:
        GitHubClient.from_config(config_for(tmp_path), env)
    assert "GITHUB_API_URL" in caught.value.hint


def test_malformed_repository_setting_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="'not a repo'"):
        resolve_repository(config_for(tmp_path, "not a repo"), {})
    with pytest.raises(ConfigError, match="GITHUB_REPOSITORY"):
        resolve_repository(config_for(tmp_path), {"GITHUB_REPOSITORY": "a/b/c"})


def test_token_and_enterprise_api_url(tmp_path, http):
    assert resolve_token({"GH_TOKEN": "gh"}) == "gh"
    assert resolve_token({"GITHUB_TOKEN": "a", "GH_TOKEN": "b"}) == "a"
    assert resolve_token({}) is None
    env = {"GITHUB_REPOSITORY": "o/r", "GH_TOKEN": "sekrit",
           "GITHUB_API_URL": "https://ghe.example.com/api/v3"}
    client = GitHubClient.from_config(config_for(tmp_path), env, seconds_between_requests=0)
    http.get("https://ghe.example.com/api/v3/repos/o/r/issues/5",
             json={"title": "T", "html_url": "https://ghe.example.com/o/r/issues/5",
                   "state": "closed"})
    assert client.issue(5) == {"title": "T", "url": "https://ghe.example.com/o/r/issues/5",
                               "state": "closed", "closed": True, "is_pull_request": False,
                               "labels": []}
    assert http.calls[0].request.headers["Authorization"] == "token sekrit"


# --- the archive comment ----------------------------------------------------------------

def test_upsert_creates_when_no_marked_comment(client, http):
    http.get(f"{API}/issues/5/comments", json=[
        comment_json(1, "thanks!"),
        comment_json(2, "quoting " + marker(55)),  # another issue's marker is not ours
    ])
    http.post(f"{API}/issues/5/comments", status=201, json=comment_json(3, "x"))
    result = client.upsert_comment(5, marker(5) + "\nLogs archived")
    assert result == {"action": "created",
                      "url": "https://github.com/o/r/issues/5#issuecomment-3"}
    assert len(calls(http, "POST")) == 1 and not calls(http, "PATCH")
    assert json.loads(calls(http, "POST")[0].request.body)["body"].startswith(marker(5))


def test_upsert_edits_the_marked_comment_instead_of_posting_again(client, http):
    http.get(f"{API}/issues/5/comments", json=[
        comment_json(1, "thanks!"), comment_json(11, marker(5) + "\nold list")])
    http.patch(f"{API}/issues/comments/11", json=comment_json(11, "new"))
    result = client.upsert_comment(5, marker(5) + "\nnew list")
    assert result["action"] == "updated" and result["url"].endswith("issuecomment-11")
    assert not calls(http, "POST")
    assert json.loads(calls(http, "PATCH")[0].request.body) == {"body": marker(5) + "\nnew list"}


def test_upsert_same_body_is_unchanged_and_adds_missing_marker(client, http):
    http.get(f"{API}/issues/5/comments", json=[comment_json(11, marker(5) + "\nsame\n")])
    assert client.upsert_comment(5, "same")["action"] == "unchanged"  # marker put in front
    assert [c.request.method for c in http.calls] == ["GET"]


def test_lost_answer_on_create_does_not_duplicate(client, http, sleeps):
    listing = f"{API}/issues/5/comments"
    http.get(listing, json=[])
    http.post(listing, status=502, json={"message": "Bad Gateway"})  # but it was created
    http.get(listing, json=[comment_json(3, marker(5) + "\nbody")])
    assert client.upsert_comment(5, marker(5) + "\nbody")["action"] == "unchanged"
    assert len(calls(http, "POST")) == 1
    assert sleeps == [2.0] and client.retries == 1


def test_server_errors_are_retried_with_network_delays(client, http, sleeps):
    http.get(f"{READ}/issues/5", status=502, json={"message": "Bad Gateway"})
    http.get(f"{READ}/issues/5", status=503, json={"message": "Unavailable"})
    http.get(f"{READ}/issues/5", json={"title": "T", "html_url": "u", "state": "open"})
    assert client.issue(5)["closed"] is False
    assert sleeps == [2.0, 4.0] and len(http.calls) == 3


def test_connection_errors_are_transient_and_keep_their_cause(client, http, sleeps):
    http.get(f"{READ}/issues/5", body=requests.ConnectionError("refused"))
    with pytest.raises(GitHubTransientError, match="could not reach GitHub") as caught:
        client.issue(5)
    assert isinstance(caught.value.__cause__, requests.ConnectionError)
    assert sleeps == [2.0, 4.0, 8.0] and len(http.calls) == 4


def test_rate_limit_is_retried_then_reported_as_a_warning(client, http, sleeps):
    http.get(f"{API}/issues/5/comments", **RATE_LIMITED)
    outcome = publish_comment(client, 5, marker(5) + "\nbody")  # never raises
    assert outcome["status"] == "failed"
    assert outcome["error"]["type"] == "github_throttled" and outcome["error"]["retryable"]
    assert "rate limit" in outcome["error"]["message"] and "1700000000" in outcome["error"]["hint"]
    assert outcome["body"].endswith("body") and outcome["retries"] == 3
    assert sleeps == [10.0, 30.0, 60.0] and len(http.calls) == 4


def test_secondary_rate_limit_429_is_throttling(client, http, sleeps):
    http.get(f"{READ}/issues/5", status=429, headers={"Retry-After": "60"},
             json={"message": "You have exceeded a secondary rate limit."})
    http.get(f"{READ}/issues/5", json={"title": "T", "html_url": "u", "state": "closed"})
    assert client.issue(5)["closed"] is True
    assert sleeps == [10.0]


@pytest.mark.parametrize(("status", "message", "hint"), [
    (401, "Bad credentials", "GITHUB_TOKEN"),
    (403, "Resource not accessible by integration", "access to issues"),
    (404, "Not Found", "GITHUB_REPOSITORY=o/r"),
])
def test_permanent_errors_are_not_retried(client, http, sleeps, status, message, hint):
    http.get(f"{READ}/issues/5", status=status, json={"message": message})
    with pytest.raises(GitHubError) as caught:
        client.issue(5)
    assert not isinstance(caught.value, GitHubTransientError)
    assert not caught.value.retryable and hint in caught.value.hint
    assert repr(message) in caught.value.message
    assert sleeps == [] and len(http.calls) == 1


def test_publish_skips_without_repository_or_token():
    assert publish_comment(None, 5, "b") == {
        "status": "skipped", "reason": "no GitHub repository is known", "body": "b"}
    reader = GitHubClient("o/r", None, seconds_between_requests=0)
    assert publish_comment(reader, 5, "b")["status"] == "skipped"
    with pytest.raises(GitHubError, match="no GitHub token"):
        reader.upsert_comment(5, "b")


# --- the archive trigger ----------------------------------------------------------------

def test_manual_and_retention_check_nothing(client, http):
    assert check_trigger(client, 5, "manual") == {"reason": "manual", "checked": False}
    assert check_trigger(client, 5, "retention") == {"reason": "retention", "checked": False}
    assert not http.calls


@pytest.mark.parametrize("reason", ["issue_closed", "pr_merged"])
def test_no_repository_known_cannot_check(reason):
    with pytest.raises(TriggerNotMetError, match="no GitHub repository") as caught:
        check_trigger(None, 5, reason)
    assert "`--reason manual` or `--force`" in caught.value.hint
    assert "GITHUB_REPOSITORY" in caught.value.hint


def test_issue_closed_trigger(client, http):
    http.get(f"{READ}/issues/5", json={"title": "T", "html_url": "u", "state": "open"})
    with pytest.raises(TriggerNotMetError, match=r"issue #5 of o/r is 'open'") as caught:
        check_trigger(client, 5, "issue_closed")
    assert "`--reason manual` or `--force`" in caught.value.hint
    http.replace(responses.GET, f"{READ}/issues/5",
                 json={"title": "T", "html_url": "u", "state": "closed"})
    assert check_trigger(client, 5, "issue_closed")["issue"]["title"] == "T"


def test_pr_merged_trigger_with_named_pr(client, http):
    http.get(f"{API}/pulls/9", json={"number": 9, "merged": False, "merged_at": None})
    with pytest.raises(TriggerNotMetError, match="pull request #9 of o/r is not merged"):
        check_trigger(client, 5, "pr_merged", pr=9)
    http.replace(responses.GET, f"{API}/pulls/9",
                 json={"number": 9, "merged": True, "merged_at": "2025-01-15T10:00:00Z"})
    assert check_trigger(client, 5, "pr_merged", pr=9) == {
        "reason": "pr_merged", "checked": True, "pr": 9}


def xref(number: int, *, pr: dict | None, repo: str = "o/r", event="cross-referenced"):
    issue = {"number": number, "repository": {"full_name": repo}}
    if pr is not None:
        issue["pull_request"] = pr
    return {"event": event, "source": {"type": "issue", "issue": issue}}


def test_pr_merged_trigger_found_through_the_timeline(client, http):
    http.get(f"{API}/issues/5/timeline", json=[
        {"event": "labeled"},
        xref(6, pr=None),                                      # an issue, not a PR
        xref(7, pr={"merged_at": None}),                       # open PR: asked, not merged
        xref(8, pr={"merged_at": "2025-01-15T10:00:00Z"}, repo="fork/r"),  # other repo
        xref(10, pr={"merged_at": None}, event="connected"),   # merged, said by /pulls
        xref(11, pr={"merged_at": None}),                      # newest, not merged
    ])
    http.get(f"{API}/pulls/11", json={"number": 11, "merged": False})
    http.get(f"{API}/pulls/10", json={"number": 10, "merged": True})
    assert check_trigger(client, 5, "pr_merged") == {
        "reason": "pr_merged", "checked": True, "pr": 10}
    asked = [c.request.url for c in http.calls if "/pulls/" in c.request.url]
    assert asked == [f"{API}/pulls/11", f"{API}/pulls/10"]


def test_pr_merged_trigger_without_a_merged_pr(client, http):
    http.get(f"{API}/issues/5/timeline", json=[xref(7, pr={"merged_at": None})])
    http.get(f"{API}/pulls/7", json={"number": 7, "merged": False})
    with pytest.raises(TriggerNotMetError, match="no merged pull request") as caught:
        check_trigger(client, 5, "pr_merged")
    assert "`--pr N`" in caught.value.hint and "`--force`" in caught.value.hint


def test_unreachable_github_during_the_check_is_a_retryable_trigger_error(client, http):
    http.get(f"{READ}/issues/5", body=requests.ConnectionError("down"))
    with pytest.raises(TriggerNotMetError, match="could not check") as caught:
        check_trigger(client, 5, "issue_closed")
    assert caught.value.retryable
    assert isinstance(caught.value.__cause__, GitHubTransientError)
    assert "`--force`" in caught.value.hint


def test_importing_the_modules_loads_neither_pygithub_nor_gitpython():
    code = ("import sys, log_archiver.integrations.github, log_archiver.integrations.git, "
            "log_archiver.index.merge, log_archiver.integrations.comment; "
            "print(sorted(m for m in ('github', 'git', 'requests') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_rate_limit_error_type_is_throttled(client, http):
    http.get(f"{API}/pulls/3", **RATE_LIMITED)
    with pytest.raises(GitHubThrottledError):
        client.pr_merged(3)


def test_pacing_follows_the_retry_delay_scale(tmp_path):
    config = config_for(tmp_path)
    paced = GitHubClient.from_config(config, {"GITHUB_REPOSITORY": "o/r"})
    assert (paced.seconds_between_requests, paced.seconds_between_writes) == (0.25, 1.0)
    unpaced = GitHubClient.from_config(config, {"GITHUB_REPOSITORY": "o/r",
                                                "LOG_ARCHIVER_RETRY_DELAY_SCALE": "0"})
    assert (unpaced.seconds_between_requests, unpaced.seconds_between_writes) == (0, 0)


@pytest.mark.parametrize(("url", "clean"), [
    ("https://x-access-token:TOKEN@ghe.example.com/api/v3", "https://ghe.example.com/api/v3"),
    ("http://user@127.0.0.1:8080/x?q=1#f", "http://127.0.0.1:8080/x?q=1#f"),
    ("https://a:b@c@host/p", "https://host/p"),
    ("s3://AKIA:se+cr@et@bucket/prefix", "s3://bucket/prefix"),  # an '@' in the password
    ("https://host/archive/@octocat.log", "https://host/archive/@octocat.log"),  # a key
    ("file:///srv/a@b/store", "file:///srv/a@b/store"),  # a path, no userinfo
    ("https://api.github.com", "https://api.github.com"),
    ("git@github.com:o/r.git", "git@github.com:o/r.git"),  # scp-like: no userinfo secret
    ("not a url @ all", "not a url @ all"),
])
def test_strip_userinfo(url, clean):
    from log_archiver.util.urls import strip_userinfo

    assert strip_userinfo(url) == clean


def test_redact_userinfo_in_free_text():
    from log_archiver.util.urls import redact_userinfo

    text = ("failed at 'https://x:SECRET@h.example/api' and s3://K:S@bucket/k, "
            "mail me@example.com")
    assert redact_userinfo(text) == ("failed at 'https://h.example/api' and s3://bucket/k, "
                                     "mail me@example.com")
    assert redact_userinfo("see https://u:p@ss@host/x now") == "see https://host/x now"


def test_client_drops_credentials_from_the_api_url():
    client = GitHubClient("o/r", api_url="https://u:SECRET@ghe.example.com/api/v3/")
    assert client.api_url == "https://ghe.example.com/api/v3"
    with pytest.raises(ConfigError) as caught:
        GitHubClient("o/r", api_url="ftp://u:SECRET@h.example/x")
    assert "SECRET" not in caught.value.message and "ftp://h.example/x" in caught.value.message


def test_comment_links_carry_no_credentials():
    from log_archiver.integrations.comment import render_comment

    entry = {"issue_number": 4, "archived_at": "2025-01-15T14:00:00Z", "logs": [
        {"type": "build", "filename": "4-build.log", "size_bytes": 10,
         "public_url": "https://cdn:SECRET@cdn.example.com/4-build.log",
         "upload_status": "cleaned"}]}
    body = render_comment(entry)
    assert "SECRET" not in body and "(https://cdn.example.com/4-build.log)" in body


# --- reads made without PyGithub ----------------------------------------------------------

def test_reads_load_no_pygithub_and_send_the_token(tmp_path):
    code = ("import sys, responses\n"
            "from log_archiver.integrations.github import GitHubClient\n"
            "from log_archiver.integrations.github_closed import closed_issues\n"
            "with responses.RequestsMock() as http:\n"
            "    http.get('https://api.github.com/repos/o/r/issues/5',\n"
            "             json={'title': 'T', 'html_url': 'u', 'state': 'closed'})\n"
            "    http.get('https://api.github.com/repos/o/r/issues',\n"
            "             json=[{'number': 5, 'state': 'closed', 'title': 'T'}])\n"
            "    client = GitHubClient('o/r', 'tok', seconds_between_requests=0)\n"
            "    assert client.issue(5)['closed']\n"
            "    assert 5 in closed_issues(client, [5])[0]\n"
            "    print([c.request.headers['Authorization'] for c in http.calls])\n"
            "print('github' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split("\n")
    assert out[:2] == ["['token tok', 'token tok']", "False"]


def test_a_read_redirected_to_another_host_does_not_carry_the_token(client, http):
    http.get(f"{READ}/issues/5", status=301,
             headers={"Location": "https://elsewhere.example.com/repos/o/r/issues/5"})
    http.get("https://elsewhere.example.com/repos/o/r/issues/5",
             json={"title": "T", "html_url": "u", "state": "open"})
    assert client.issue(5)["state"] == "open"
    assert http.calls[0].request.headers["Authorization"] == "token tok"
    assert "Authorization" not in http.calls[1].request.headers


def test_a_read_answered_with_html_names_the_api_url(client, http, sleeps):
    http.get(f"{READ}/issues/5", body="<html>sign in</html>", content_type="text/html")
    with pytest.raises(GitHubError, match="not JSON") as caught:
        client.issue(5)
    assert "text/html" in caught.value.message and "GITHUB_API_URL" in caught.value.hint
    assert sleeps == [] and len(http.calls) == 1  # not retried: asking again gives the same


def test_a_read_answer_past_the_cap_is_refused(client, http, monkeypatch):
    import log_archiver.integrations.github_reads as reads

    monkeypatch.setattr(reads, "MAX_ANSWER_BYTES", 1000)
    http.get(f"{READ}/issues/5", json={"title": "x" * 2000, "state": "open"})
    with pytest.raises(GitHubError, match="larger than"):
        client.issue(5)


def test_a_read_error_answer_that_is_not_json_keeps_its_text(client, http):
    http.get(f"{READ}/issues/5", status=404, body="no such thing")
    with pytest.raises(GitHubError, match="no such thing") as caught:
        client.issue(5)
    assert "GITHUB_REPOSITORY=o/r" in caught.value.hint


def test_a_rate_limited_read_is_throttling(client, http, sleeps):
    http.get(f"{READ}/issues/5", **RATE_LIMITED)
    with pytest.raises(GitHubThrottledError, match="rate limit") as caught:
        client.issue(5)
    assert "1700000000" in caught.value.hint and sleeps == [10.0, 30.0, 60.0]


def test_reads_are_paced(http, monkeypatch):
    import log_archiver.integrations.github_reads as reads

    waits = []
    monkeypatch.setattr(reads.time, "sleep", waits.append)
    paced = GitHubClient("o/r", None, seconds_between_requests=0.25)
    for _ in range(3):
        http.get(f"{READ}/issues/5", json={"title": "T", "html_url": "u", "state": "open"})
        paced.issue(5)
    assert len(waits) == 2 and all(0 < wait <= 0.25 for wait in waits)

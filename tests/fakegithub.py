"""A tiny stand-in for the GitHub REST API on 127.0.0.1, for end-to-end CLI tests.

It serves just the endpoints the archive calls (issue, the list of issues, its comments,
its timeline, a pull request, comment create and edit), keeps what was posted, records
every request, and answers with injected failures on demand. Tests point ``GITHUB_API_URL`` at
:attr:`FakeGitHub.url`.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Request:
    method: str
    path: str  # without the query
    query: str
    headers: dict
    body: dict | list | None


@dataclass
class Fault:
    method: str
    pattern: re.Pattern
    status: int
    times: int | None  # None: every time
    body: dict
    headers: dict = field(default_factory=dict)


class FakeGitHub:
    def __init__(self, repository: str = "octo/proj", token: str | None = "test-token"):
        self.repository = repository
        self.token = token
        self.issues: dict[int, dict] = {}
        self.comments: dict[int, list[dict]] = {}
        self.timelines: dict[int, list[dict]] = {}
        self.pulls: dict[int, dict] = {}
        self.requests: list[Request] = []
        self.faults: list[Fault] = []
        self.delay = 0.0  # seconds each answer waits (a slow GitHub, for timing tests)
        self._next_id = 1000
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeGitHub:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    # --- state the tests set up and inspect -------------------------------------------

    def add_issue(self, number: int, title: str, state: str = "open", *,
                  closed_at: str | None = None, pull_request: bool = False) -> dict:
        """An issue (or, with ``pull_request``, a pull request as the issues API lists it);
        a closed one is closed (and last updated) at ``closed_at``."""
        self.issues[number] = {"number": number, "title": title, "state": state}
        if state == "closed":
            self.issues[number]["closed_at"] = closed_at or "2025-01-15T10:00:00Z"
            self.issues[number]["updated_at"] = self.issues[number]["closed_at"]
        if pull_request:
            self.issues[number]["pull_request"] = {"url": f"{self.url}/pulls/{number}"}
        self.comments.setdefault(number, [])
        return self.issues[number]

    def add_pull(self, number: int, merged: bool) -> None:
        self.pulls[number] = {"number": number, "merged": merged,
                              "merged_at": "2025-01-15T10:00:00Z" if merged else None,
                              "state": "closed" if merged else "open"}

    def reference(self, issue: int, pull: int) -> None:
        """Pull request ``pull`` mentions ``issue`` (a cross-referenced timeline event)."""
        source = {"number": pull, "pull_request": {"merged_at": None},
                  "repository": {"full_name": self.repository}}
        self.timelines.setdefault(issue, []).append(
            {"event": "cross-referenced", "source": {"type": "issue", "issue": source}})

    def fail(self, method: str, path_pattern: str, status: int, *, times: int | None = None,
             message: str = "failure injected by the test", headers: dict | None = None):
        """Answer ``status`` to matching requests, ``times`` times (None: always)."""
        self.faults.append(Fault(method, re.compile(path_pattern), status, times,
                                 {"message": message}, headers or {}))

    def calls(self, method: str, path_pattern: str = "") -> list[Request]:
        pattern = re.compile(path_pattern)
        return [r for r in self.requests if r.method == method and pattern.search(r.path)]

    # --- the API ----------------------------------------------------------------------

    def issue_json(self, number: int) -> dict:
        issue = self.issues[number]
        return {**issue, "url": f"{self.url}/repos/{self.repository}/issues/{number}",
                "html_url": f"https://github.com/{self.repository}/issues/{number}",
                "comments": len(self.comments[number])}

    def _comment_json(self, issue: int, comment_id: int, body: str) -> dict:
        return {"id": comment_id, "body": body,
                "url": f"{self.url}/repos/{self.repository}/issues/comments/{comment_id}",
                "html_url": (f"https://github.com/{self.repository}/issues/{issue}"
                             f"#issuecomment-{comment_id}"),
                "issue_url": f"{self.url}/repos/{self.repository}/issues/{issue}"}

    def handle(self, request: Request) -> tuple[int, dict, object]:
        if self.delay:
            import time

            time.sleep(self.delay)
        with self._lock:
            self.requests.append(request)
            for fault in self.faults:
                if fault.method == request.method and fault.pattern.search(request.path) \
                        and fault.times != 0:
                    if fault.times is not None:
                        fault.times -= 1
                    return fault.status, fault.headers, fault.body
            return self._route(request)

    def _route(self, request: Request) -> tuple[int, dict, object]:
        prefix = f"/repos/{self.repository}"
        if not request.path.startswith(prefix + "/"):
            return 404, {}, {"message": "Not Found"}
        rest = request.path[len(prefix):]
        writing = request.method in ("POST", "PATCH")
        if writing and request.headers.get("authorization") != f"token {self.token}":
            return 401, {}, {"message": "Bad credentials"}
        if rest == "/issues" and request.method == "GET":
            return _list_issues(self, request)
        if match := re.fullmatch(r"/issues/(\d+)(/comments|/timeline)?", rest):
            number, tail = int(match.group(1)), match.group(2)
            if number not in self.issues:
                return 404, {}, {"message": "Not Found"}
            if tail is None and request.method == "GET":
                return 200, {}, self.issue_json(number)
            if tail == "/timeline" and request.method == "GET":
                return 200, {}, self.timelines.get(number, [])
            if tail == "/comments" and request.method == "GET":
                return 200, {}, [self._comment_json(number, c["id"], c["body"])
                                 for c in self.comments[number]]
            if tail == "/comments" and request.method == "POST":
                self._next_id += 1
                self.comments[number].append({"id": self._next_id, "body": request.body["body"]})
                return 201, {}, self._comment_json(number, self._next_id, request.body["body"])
        if (match := re.fullmatch(r"/issues/comments/(\d+)", rest)) and \
                request.method == "PATCH":
            wanted = int(match.group(1))
            for number, comments in self.comments.items():
                for comment in comments:
                    if comment["id"] == wanted:
                        comment["body"] = request.body["body"]
                        return 200, {}, self._comment_json(number, wanted, comment["body"])
        if (match := re.fullmatch(r"/pulls/(\d+)", rest)) and request.method == "GET":
            pull = self.pulls.get(int(match.group(1)))
            return (200, {}, pull) if pull else (404, {}, {"message": "Not Found"})
        return 404, {}, {"message": "Not Found"}


def _list_issues(fake: FakeGitHub, request: Request) -> tuple[int, dict, object]:
    """``GET /repos/o/r/issues``: state, since (updated at or after), sort=created with
    direction, per_page and page, with a ``Link`` header to the next page."""
    from urllib.parse import parse_qs, urlencode

    query = {k: v[-1] for k, v in parse_qs(request.query).items()}
    state = query.get("state", "open")
    chosen = [n for n, issue in fake.issues.items()
              if state == "all" or issue["state"] == state]
    if "since" in query:
        since = query["since"].replace("+00:00", "Z")
        chosen = [n for n in chosen if fake.issues[n].get("updated_at", "") >= since]
    chosen.sort(reverse=query.get("direction", "desc") == "desc")
    per_page = min(int(query.get("per_page", 30)), 100)
    page = int(query.get("page", 1))
    items = [fake.issue_json(n) for n in chosen[(page - 1) * per_page: page * per_page]]
    headers = {}
    if page * per_page < len(chosen):
        following = urlencode({**query, "page": page + 1})
        headers["Link"] = (f'<{fake.url}/repos/{fake.repository}/issues?{following}>; '
                           'rel="next"')
    return 200, headers, items



def _handler_for(fake: FakeGitHub):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self):
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            headers = {k.lower(): v for k, v in self.headers.items()}
            path, _, query = self.path.partition("?")
            status, extra, answer = fake.handle(Request(self.command, path, query, headers, body))
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for name, value in extra.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = _serve

        def log_message(self, *args):  # keep the test output clean
            pass

    return Handler

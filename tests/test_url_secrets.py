"""A URL from the configuration (file or environment) never has its userinfo or its query
repeated, whatever its scheme and however malformed: the messages land in CI logs. A
password in any of them is refused with where it goes instead."""

from __future__ import annotations

import json

import pytest

from log_archiver.util.samples import write_sample_logs

SECRET = "hunter2"
QUEUE_FILE = "logs/.log-archiver-queue.sqlite3"

QUEUE_URLS = [
    "valkey://default:hunter2@h", "redis+sentinel://:hunter2@h",
    "unix://:hunter2@/run/redis.sock", "sqlite://u:hunter2@x", "redis:/:hunter2@h",
    "redis://h:6379/0?password=hunter2", "redis://:hunter2@db.example:6379/0",
    "rediss://u:pre@hunter2@h:6380/1",  # an '@' in the password: all of it is hidden
    "REDIS://:hunter2@h", "hunter2@h", "redis://h/0#hunter2", "sqlite:///q.db?key=hunter2",
    "mysql://root:hunter2@db/queue",
]
QUEUE_COMMANDS = [["enqueue", "5"], ["enqueue", "--", "5"],  # without click, and with it
                  ["queue", "status"], ["queue", "purge", "--done"], ["worker", "--once"]]


def configure(workspace, monkeypatch, where: str, key: str, url: str) -> None:
    """``url`` as the setting ``key`` (``queue.url``, ``storage``...), from ``where``."""
    if where == "environment":
        monkeypatch.setenv(f"LOG_ARCHIVER_{key.replace('.', '_').upper()}", url)
        return
    if key == "storage":
        monkeypatch.delenv("LOG_ARCHIVER_STORAGE")
    document: dict = {"logs_dir": "logs"}
    node = document
    *parents, last = key.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = url
    (workspace / ".log-archiver.json").write_text(json.dumps(document))


def assert_refused_unseen(result, what: str) -> dict:
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert SECRET not in result.stdout and SECRET not in result.stderr
    [error] = result.json["errors"]
    assert error["type"] == "usage" and error["message"].startswith(what)
    assert "(not shown)" in error["message"]
    assert f"error: {error['message']}" in result.stderr  # the same, for people
    return error


@pytest.mark.parametrize("where", ["config file", "environment"])
@pytest.mark.parametrize("url", QUEUE_URLS)
def test_a_queue_url_with_a_password_is_refused_and_never_shown(workspace, run_cli,
                                                                monkeypatch, where, url):
    configure(workspace, monkeypatch, where, "queue.url", url)
    for args in QUEUE_COMMANDS:
        error = assert_refused_unseen(run_cli(*args), "queue URL")
        assert "LOG_ARCHIVER_REDIS_PASSWORD" in error["hint"], args
        assert "sqlite:///" in error["hint"]  # and what a queue URL looks like
    assert not (workspace / QUEUE_FILE).exists() and not (workspace / "x").exists()


def test_what_a_refused_queue_url_shows_is_its_host_and_scheme(workspace, run_cli,
                                                               monkeypatch):
    for url, shown in [("valkey://default:hunter2@cache.example", "valkey://***@cache.example"),
                       ("redis://h.example:6379/0?password=hunter2",
                        "redis://h.example:6379/0?***"),
                       ("redis:/:hunter2@h.example", "redis:***@h.example"),
                       ("hunter2@h.example", "***@h.example")]:
        monkeypatch.setenv("LOG_ARCHIVER_QUEUE_URL", url)
        assert repr(shown) in assert_refused_unseen(run_cli("queue", "status"),
                                                    "queue URL")["message"]


def test_an_at_sign_in_a_sqlite_path_is_a_path_not_a_password(workspace, run_cli,
                                                              monkeypatch):
    monkeypatch.setenv("LOG_ARCHIVER_QUEUE_URL", "sqlite:///logs/jobs@ci.sqlite3")
    queued = run_cli("enqueue", "5")
    assert queued.exit_code == 0, queued.stdout + queued.stderr
    assert (workspace / "logs/jobs@ci.sqlite3").is_file()
    status = run_cli("queue", "status")
    assert status.exit_code == 0 and status.json["counts"]["pending"] == 1, status.stdout
    assert "jobs@ci.sqlite3" in status.json["queue_url"]


STORE_URLS = ["s3:/AKIDEXAMPLE:hunter2@bucket/p", "s3:AKIDEXAMPLE:hunter2@bucket",
              "s3://bucket/p?secret=hunter2", "https://h.example/logs?sig=hunter2",
              "file:///srv/store#hunter2", "r2://bucket/p?X-Amz-Signature=hunter2"]
PUBLIC_URLS = ["https:/u:hunter2@cdn.example", "https://cdn.example/logs?token=hunter2",
               "ftp://cdn.example/#hunter2", "u:hunter2@cdn.example"]


@pytest.mark.parametrize("where", ["config file", "environment"])
@pytest.mark.parametrize(("key", "url"), [*(("storage", url) for url in STORE_URLS),
                                          *(("public_base_url", url) for url in PUBLIC_URLS)])
def test_a_store_or_public_url_with_a_secret_is_refused_and_never_shown(
        workspace, run_cli, monkeypatch, where, key, url):
    configure(workspace, monkeypatch, where, key, url)
    write_sample_logs(workspace / "logs", 5)
    what = "storage URL" if key == "storage" else "public base URL"
    for args in (["archive", "5", "--no-commit"], ["list"], ["queue", "status"]):
        result = run_cli(*args)
        assert_refused_unseen(result, what)
        assert "AKIDEXAMPLE" not in result.stdout + result.stderr
    assert not (workspace / "logs/.archive-index.json").exists()
    assert not (workspace.parent / "store").exists()

"""The issue's labels come with the one request made for its title, are recorded in the
entry at archive time, and retention rules by label read them."""

from __future__ import annotations

import pytest

from fakegithub import FakeGitHub
from lifecycle_scene import age, index_of, set_retention
from log_archiver.integrations.github import label_names
from log_archiver.util.samples import write_sample_logs


@pytest.fixture
def github(workspace, monkeypatch):
    with FakeGitHub("octo/project", token="t0ken") as fake:
        monkeypatch.setenv("GITHUB_API_URL", fake.url)
        monkeypatch.setenv("GITHUB_REPOSITORY", "octo/project")
        monkeypatch.setenv("GITHUB_TOKEN", "t0ken")
        monkeypatch.setenv("LOG_ARCHIVER_RETRY_DELAY_SCALE", "0")
        yield fake


def test_labels_are_recorded_from_the_title_request_and_rules_read_them(workspace, github,
                                                                        run_cli):
    issue = github.add_issue(7, "Flaky deploy", state="closed")
    issue["labels"] = [{"name": "compliance"}, {"name": "bug"}, {"name": "x\x1b[31m"}, 5]
    write_sample_logs(workspace / "logs", 7, big=3000, small=2000)
    result = run_cli("archive", "7", "--reason", "issue_closed", "-q")
    assert result.exit_code == 0, result.stdout
    assert index_of(workspace).find(7)["labels"] == ["compliance", "bug"]
    assert len(github.calls("GET", r"/issues/7$")) == 1  # no request just for the labels
    set_retention(workspace, {"default": "30d", "by_label": {"compliance": "audit: 7y"}})
    age(workspace, 7, at="2024-01-01T00:00:00Z")
    dry = run_cli("gc", "--dry-run", "-q")
    assert dry.json["deleted"] == []
    assert {(k["reason"], k["rule"]) for k in dry.json["kept"]} == {("not_due", "audit")}


def test_label_names_drop_what_is_not_a_plain_name():
    assert label_names([{"name": "a"}, "b", {"name": "a"}, {"name": ""}, {"name": "x" * 101},
                        {"nope": 1}, None]) == ["a", "b"]
    assert label_names("bug") == [] and label_names(None) == []

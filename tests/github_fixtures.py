"""The fake GitHub most tests of the CLI's GitHub steps use: ``octo/proj`` with a token."""

from __future__ import annotations

import pytest

from fakegithub import FakeGitHub

REPOSITORY = "octo/proj"
TOKEN = "test-token"


@pytest.fixture
def github():
    with FakeGitHub(REPOSITORY, token=TOKEN) as fake:
        yield fake


def closed_issues_project(workspace, github: FakeGitHub, monkeypatch, issues: list[int]):
    """``workspace`` as a git repository whose closed ``issues`` have logs on disk, the
    fake GitHub named by the environment (retries without delay)."""
    from gitutil import first_commit, init_repo
    from log_archiver.util.samples import write_sample_logs

    init_repo(workspace)
    first_commit(workspace)
    for number in issues:
        github.add_issue(number, f"Issue {number}", state="closed")
        write_sample_logs(workspace / "logs", number, big=200_000, small=3_000, seed=number)
    for name, value in {"LOG_ARCHIVER_RETRY_DELAY_SCALE": "0", "GITHUB_TOKEN": TOKEN,
                        "GITHUB_REPOSITORY": REPOSITORY, "GITHUB_API_URL": github.url}.items():
        monkeypatch.setenv(name, value)
    return workspace

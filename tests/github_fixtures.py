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

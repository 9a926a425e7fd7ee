"""Claude Code itself validates the plugin: `claude plugin validate .` passes with no
warning and no advice (the manifests, the skill, the agents, the commands, the icon and
the README's install line)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LOCAL_BIN = REPO / ".ci/node/node_modules/.bin"


@pytest.fixture(scope="module")
def claude() -> str:
    """The `claude` command: on PATH, or where `.ci/run` installs it."""
    found = shutil.which("claude") or shutil.which("claude", path=str(LOCAL_BIN))
    assert found, ("the Claude Code client is needed to validate the plugin: run .ci/run, or "
                   "`npm install --prefix .ci/node @anthropic-ai/claude-code` and put "
                   ".ci/node/node_modules/.bin on PATH")
    return found


def validate(claude: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("ANTHROPIC_", "CLAUDE_"))}
    env.update(HOME=str(home), CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1",
               DISABLE_AUTOUPDATER="1", NO_COLOR="1")
    return subprocess.run([claude, "plugin", "validate", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)


def test_claude_validates_the_plugin_with_no_warning(claude, tmp_path):
    done = validate(claude, tmp_path, ".")
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "Validation passed" in output, output
    assert "warning" not in output.lower() and "⚠" not in output, output
    assert "Advice" not in output, output  # e.g. the README's install line
    for provided in ("skills: log-archiver:log-archiver", "commands: log-archiver:archive",
                     "agents: log-archiver:log-manager", "agents: log-archiver:file-manager"):
        assert provided in output, output


def test_every_check_is_clean_even_when_strict(claude, tmp_path):
    """The same checks as JSON, warnings failing: nothing found, nothing advised."""
    for target in (".", ".claude-plugin/plugin.json"):
        done = validate(claude, tmp_path, "--strict", "--json", target)
        assert done.returncode == 0, done.stdout + done.stderr
        report = json.loads(done.stdout)
        assert report["success"] is True
        assert report["manifest"]["errors"] == [] and report["manifest"]["warnings"] == []
        assert all(not part["errors"] and not part["warnings"] for part in report["contents"])
        assert report["advice"] == []
        assert report["directory"]["findings"] == [], report["directory"]

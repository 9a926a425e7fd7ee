"""Shared fixtures: an isolated workspace with a logs dir and a local store, and a CLI
runner that checks every output against its schema."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import pytest

from log_archiver.util.schemas import violations

pytest_plugins = ["s3_fixtures", "redis_fixtures", "github_fixtures"]

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Result:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def json(self) -> dict:
        return json.loads(self.stdout)


def check_output(result: Result) -> dict:
    """The one JSON object on stdout, valid against its command's output schema."""
    document = json.loads(result.stdout)
    problems = violations(f"output/{document['command']}.json", document)
    assert not problems, problems
    return document


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    """A fresh folder as the working directory, with logs/ and a file:// store."""
    for name in list(os.environ):
        if name.startswith(("LOG_ARCHIVER_", "GITHUB_", "GH_", "AWS_")):
            monkeypatch.delenv(name)
    root = tmp_path / "work"
    (root / "logs").mkdir(parents=True)
    monkeypatch.chdir(root)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LOG_ARCHIVER_STORAGE", f"file://{tmp_path / 'store'}")
    monkeypatch.setenv("LOG_ARCHIVER_LOGS_DIR", str(root / "logs"))
    return root


@pytest.fixture
def run_cli():
    """Run `log-archiver ARGS...` in this process; returns exit code, stdout, stderr."""
    from log_archiver.cli import main

    def run(*args: str) -> Result:
        out, err = io.StringIO(), io.StringIO()
        code = 0
        with redirect_stdout(out), redirect_stderr(err):
            try:
                main([str(a) for a in args])
            except SystemExit as exit_:
                code = exit_.code if isinstance(exit_.code, int) else 1
        result = Result(code, out.getvalue(), err.getvalue())
        if result.stdout.strip().startswith("{"):
            check_output(result)
        return result

    return run


def script(name: str) -> list[str]:
    """The command line of an installed script (for subprocess tests)."""
    return [str(Path(sys.executable).with_name(name))]


@pytest.fixture
def isolated_git(monkeypatch, tmp_path):
    """git with no user or system config, a fixed identity, and no inherited GIT_DIR."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(home / "gitconfig"))
    for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        monkeypatch.delenv(name, raising=False)
    for role in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{role}_NAME", "Test")
        monkeypatch.setenv(f"GIT_{role}_EMAIL", "test@example.com")
    return home


def run_script(name: str, *args: str, cwd: Path, env: dict | None = None) -> Result:
    """Run an installed script in a subprocess; its JSON output is checked against its schema."""
    import subprocess

    done = subprocess.run([*script(name), *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)
    result = Result(done.returncode, done.stdout, done.stderr)
    check_output(result)
    return result


@pytest.fixture
def unshare():
    """`unshare` that can make a user and mount namespace (mounts without root)."""
    path = shutil.which("unshare")
    assert path, "util-linux `unshare` is needed for the full-disk and read-only tests"
    probe = subprocess.run([path, "-rm", "true"], capture_output=True, text=True)
    assert probe.returncode == 0, f"user namespaces are needed: {probe.stderr}"
    return path


@pytest.fixture
def closed_port():
    """A local port nothing answers on (connections are refused) and, for the whole test,
    nothing else can take: bound by a socket that never listens."""
    import socket

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        yield holder.getsockname()[1]

"""One set of bounds for every setting, from the file, the environment or a flag, and
memory that stays flat whatever the settings say."""

from __future__ import annotations

import json
import threading
import tracemalloc
from concurrent.futures import ThreadPoolExecutor

import pytest

from log_archiver.archive.compress import gzip_many
from log_archiver.config import Config, load_config
from log_archiver.util.samples import log_text, write_sample_logs

# (file keys, environment variable, a value out of bounds)
OUT_OF_BOUNDS = [
    (("workers",), "LOG_ARCHIVER_WORKERS", 5000),
    (("workers",), "LOG_ARCHIVER_WORKERS", 0),
    (("upload", "concurrency"), "LOG_ARCHIVER_UPLOAD_CONCURRENCY", 100000),
    (("upload", "concurrency"), "LOG_ARCHIVER_UPLOAD_CONCURRENCY", 0),
    (("compression", "level"), "LOG_ARCHIVER_COMPRESSION_LEVEL", 23),
    (("compression", "threshold_bytes"), "LOG_ARCHIVER_THRESHOLD_BYTES", -1),
    (("compression", "threshold_bytes"), "LOG_ARCHIVER_THRESHOLD_BYTES", 1 << 41),
]


def _nested(keys: tuple, value) -> dict:
    for key in reversed(keys):
        value = {key: value}
    return value


def _untouched(workspace, result) -> None:
    assert not (workspace / "logs/.archive-index.json").exists(), result.stdout
    assert not (workspace.parent / "store").exists()
    assert (workspace / "logs/sessions/session-5-2025-01-15.md").exists()


@pytest.mark.parametrize("keys, variable, value", OUT_OF_BOUNDS,
                         ids=[f"{v}={x}" for _, v, x in OUT_OF_BOUNDS])
def test_the_file_and_the_environment_refuse_the_same_values(workspace, run_cli, monkeypatch,
                                                             keys, variable, value):
    write_sample_logs(workspace / "logs", 5)
    monkeypatch.setenv(variable, str(value))
    from_env = run_cli("archive", "5")
    assert from_env.exit_code == 1, from_env.stdout
    [error] = from_env.json["errors"]
    assert error["type"] == "config"
    assert f"{variable}={str(value)!r}" in error["message"] and variable in error["hint"]
    assert ".".join(keys) in error["message"]  # the setting, as the file names it
    _untouched(workspace, from_env)
    monkeypatch.delenv(variable)
    (workspace / ".log-archiver.json").write_text(json.dumps(_nested(keys, value)))
    from_file = run_cli("archive", "5")
    assert from_file.exit_code == 1, from_file.stdout
    assert from_file.json["errors"][0]["type"] == "config"
    assert keys[-1] in from_file.json["errors"][0]["message"]
    _untouched(workspace, from_file)


def test_values_at_the_bounds_are_taken(workspace, monkeypatch):
    monkeypatch.setenv("LOG_ARCHIVER_WORKERS", "32")
    monkeypatch.setenv("LOG_ARCHIVER_UPLOAD_CONCURRENCY", "64")
    config = load_config(workspace)
    assert (config.workers, config.upload_concurrency) == (32, 64)
    assert 1 <= Config(root=workspace, logs_dir=workspace / "logs").workers <= 32


def _store_places(workspace):
    logs = workspace / "logs"
    return {
        "root": "file:///",
        "root, spelled another way": "file:///tmp/../",
        "the logs dir": f"file://{logs}",
        "the logs dir's parent": f"file://{workspace}",
        "a folder above both": f"file://{workspace.parent}",
    }


@pytest.mark.parametrize("place", ["root", "root, spelled another way", "the logs dir",
                                   "the logs dir's parent", "a folder above both"])
@pytest.mark.parametrize("given_by", ["environment", "file", "flag"])
def test_a_store_over_the_logs_or_the_whole_disk_is_refused(workspace, run_cli, monkeypatch,
                                                            place, given_by):
    write_sample_logs(workspace / "logs", 5)
    url = _store_places(workspace)[place]
    flags = []
    if given_by == "environment":
        monkeypatch.setenv("LOG_ARCHIVER_STORAGE", url)
    elif given_by == "file":
        monkeypatch.delenv("LOG_ARCHIVER_STORAGE")
        (workspace / ".log-archiver.json").write_text(json.dumps({"storage": url}))
    else:
        flags = ["--storage", url]
    before = sorted(p.as_posix() for p in workspace.parent.rglob("*"))
    for command in (["archive", "5"], ["archive", "5", "--reindex-only"],
                    ["cleanup-local", "5"]):
        result = run_cli(*command, *flags)
        assert result.exit_code == 2, (command, result.stdout)
        [error] = result.json["errors"]
        assert error["type"] == "usage" and repr(url) in error["message"]
        assert "folder of its own" in error["hint"]
    assert sorted(p.as_posix() for p in workspace.parent.rglob("*")) == before


def test_a_store_beside_the_logs_is_fine(workspace, run_cli, monkeypatch):
    write_sample_logs(workspace / "logs", 5)
    monkeypatch.setenv("LOG_ARCHIVER_STORAGE", f"file://{workspace / 'logs-store'}")
    assert run_cli("archive", "5", "-q", "--no-commit").exit_code == 0


def test_the_compression_window_does_not_grow_with_the_workers(tmp_path):
    """A 96 MiB log and 64 threads, all busy with other work for a second (as when many small
    logs are hashed first): the blocks read ahead meanwhile stay few."""
    source = tmp_path / "big.log"
    block = log_text(4 << 20, 1)
    with open(source, "wb") as out:
        for n in range(24):
            out.write(f"block {n}\n".encode() + block)
    del block
    busy = threading.Event()
    tracemalloc.start()
    try:
        with ThreadPoolExecutor(max_workers=64) as pool:
            for _ in range(64):
                pool.submit(busy.wait, 30)
            threading.Timer(1.0, busy.set).start()
            [(_, stored)] = list(gzip_many([source], 1, pool))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        busy.set()
        tracemalloc.stop()
    assert stored.original_size == source.stat().st_size
    # 24 blocks in flight at most (MAX_WINDOW), each with its member: far below the log
    assert peak < 56 << 20, f"peak {peak / 2**20:.0f} MiB while compressing a 96 MiB log"


@pytest.mark.parametrize("source", ["environment", "file"])
def test_a_public_base_url_with_credentials_is_refused_and_never_shown(workspace, run_cli,
                                                                       monkeypatch, source):
    """It would be written into every log record of the index, and so into git."""
    secret = "SECRETTOKEN0123456789"
    url = f"https://user:{secret}/x@cdn.example.com/logs"
    if source == "environment":
        monkeypatch.setenv("LOG_ARCHIVER_PUBLIC_BASE_URL", url)
    else:
        (workspace / ".log-archiver.json").write_text(json.dumps({"public_base_url": url}))
    write_sample_logs(workspace / "logs", 5)
    result = run_cli("archive", "5", "--no-commit")
    assert result.exit_code == 2, result.stdout
    assert secret not in result.stdout + result.stderr
    assert "credentials" in result.json["errors"][0]["message"]
    assert not (workspace / "logs/.archive-index.json").exists()
    monkeypatch.setenv("LOG_ARCHIVER_PUBLIC_BASE_URL", "ftp://cdn.example.com/logs")
    if source == "environment":
        assert run_cli("archive", "5", "--no-commit").exit_code == 2

"""A logs dir that became read-only: a clear error as JSON, nothing lost, nothing left."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

from conftest import Result, check_output
from log_archiver.util.samples import write_sample_logs

INSIDE = r"""
mount --bind "$1" "$1" && mount -o remount,ro,bind "$1" || exit 99
shift
"$@"
"""


def test_read_only_logs_dir_is_a_clear_error(tmp_path, unshare):
    logs = tmp_path / "logs"
    written = write_sample_logs(logs, 5)
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in written}
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("LOG_ARCHIVER_", "GITHUB_", "GH_"))}
    env.update(LOG_ARCHIVER_LOGS_DIR=str(logs), LOG_ARCHIVER_STORAGE=f"file://{tmp_path}/store",
               HOME=str(tmp_path))
    for command in (["archive", "5", "--no-commit"], ["compress-logs", str(written[0])]):
        done = subprocess.run([unshare, "-rm", "sh", "-c", INSIDE, "sh", str(logs),
                               sys.executable, "-m", "log_archiver", *command],
                              env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode in (1, 3), (command, done.stdout, done.stderr)
        assert "Traceback" not in done.stderr
        document = check_output(Result(done.returncode, done.stdout, done.stderr))
        text = json.dumps(document["errors"])
        assert "Read-only file system" in text and "writable" in text, text
        assert {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in written} == before
        assert not [p for p in logs.rglob("*") if ".la-" in p.name or p.suffix == ".gz"]

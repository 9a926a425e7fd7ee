"""A full disk while compressing: a clear error, the originals untouched, no temp files.

The logs live on a 4 MiB tmpfs mounted in a private user and mount namespace
(`unshare -rm`, util-linux), so the disk really fills up and no root is needed.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

from conftest import Result, check_output
from log_archiver.util.samples import log_text

INSIDE = r"""
set -e
mount -t tmpfs -o size=4m tmpfs "$1"
mkdir -p "$1/logs/sessions" "$1/logs/builds"
cp "$2"/session-8-a.md "$1/logs/sessions/"
cp "$2"/8-build.log "$1/logs/builds/"
free=$(df --output=avail -B1 "$1" | tail -1)
head -c $((free - $4)) /dev/zero > "$1/filler"
set +e
LOG_ARCHIVER_LOGS_DIR="$1/logs" "$3" -m log_archiver archive 8 --no-commit > "$2/out.json"
echo $? > "$2/code"
find "$1/logs" -type f -printf '%P\n' | sort > "$2/files"
for f in $(find "$1/logs" -type f -not -name '.*'); do sha256sum "$f"; done > "$2/sums"
"""


def run_on_full_disk(unshare, tmp_path, originals: dict[str, bytes], margin: int):
    """Archive issue 8's ``originals`` with ``margin`` bytes left on the logs' disk; returns
    the exit code, the output, the files left under logs/ and their SHA-256 digests."""
    outside = tmp_path / "outside"
    outside.mkdir()
    for name, data in originals.items():
        (outside / name.split("/")[1]).write_bytes(data)
    mount = tmp_path / "disk"
    mount.mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("LOG_ARCHIVER_", "GITHUB_", "GH_"))}
    env.update(LOG_ARCHIVER_STORAGE=f"file://{tmp_path / 'store'}", HOME=str(tmp_path))
    subprocess.run([unshare, "-rm", "sh", "-c", INSIDE, "sh", str(mount), str(outside),
                    sys.executable, str(margin)], env=env, check=True, timeout=120)
    sums = {line.split()[1].split("/logs/", 1)[1]: line.split()[0]
            for line in (outside / "sums").read_text().splitlines()}
    code = int((outside / "code").read_text())
    document = check_output(Result(code, (outside / "out.json").read_text(), ""))
    return code, document, (outside / "files").read_text().split(), sums


def test_enospc_while_compressing_keeps_every_original(tmp_path, unshare):
    originals = {"sessions/session-8-a.md": log_text(2_500_000, 1),
                 "builds/8-build.log": log_text(30_000, 2)}
    code, document, files, sums = run_on_full_disk(unshare, tmp_path, originals, 65536)

    assert code == 3 and document["status"] == "partial", document
    messages = json.dumps(document["errors"])
    assert "No space left on device" in messages and "free disk space" in messages
    big = "sessions/session-8-a.md"
    assert big in files and "sessions/.session-8-a.md.la.gz" not in files
    assert hashlib.sha256(originals[big]).hexdigest() == sums[big]
    assert not [f for f in files if ".la-" in f or f.endswith((".tmp", ".part"))], files
    # what did fit was stored; nothing is deleted from a partial archive but our own copies
    assert document["upload"]["verified"] == ["builds/8-build.log"]
    assert document["cleanup"]["deleted"] == []
    assert "builds/8-build.log" in files


def test_enospc_while_writing_the_index_changes_nothing(tmp_path, unshare):
    """Small logs (nothing to compress), and too little room left for the index itself."""
    originals = {"sessions/session-8-a.md": log_text(20_000, 1),
                 "builds/8-build.log": log_text(30_000, 2)}
    code, document, files, sums = run_on_full_disk(unshare, tmp_path, originals, 1024)
    assert code == 1 and document["status"] == "error", document
    error = document["errors"][0]
    assert "No space left on device" in error["message"] and "free disk space" in error["hint"]
    assert ".archive-index.json" not in files
    assert not [f for f in files if ".la-" in f or f.endswith((".tmp", ".part"))], files
    for name, data in originals.items():
        assert sums[name] == hashlib.sha256(data).hexdigest()
    assert [p for p in (tmp_path / "store").rglob("*") if p.is_file()] == []

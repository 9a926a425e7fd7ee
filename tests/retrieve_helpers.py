"""Shared pieces of the read/restore tests: logs whose lines cross block boundaries, a
runner that keeps stdout as bytes, and a way to damage one stored object."""

from __future__ import annotations

import io
import json
import random
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import check_output

MIB = 1 << 20
BIG = "builds/7-build.log"      # compressed (gzip, with a block table)
SMALL = "deployments/7-deploy.log"  # under the threshold: stored as it is


def big_log() -> bytes:
    """2 MiB of 64-byte lines (blocks 0 and 1 end exactly at a newline), then lines of
    random length (later boundaries fall inside lines), the last without a newline."""
    rng = random.Random(7)
    lines = [f"{n:>10} {'a' * 52}\n".encode() for n in range(1, 2 * MIB // 64 + 1)]
    assert sum(map(len, lines)) == 2 * MIB
    number = len(lines)
    size = 2 * MIB
    while size < 5 * MIB + 12345:
        number += 1
        line = f"{number:>10} {'x' * rng.randint(0, 300)} {rng.random()}\n".encode()
        lines.append(line)
        size += len(line)
    lines.append(b"the last line has no newline")
    return b"".join(lines)


def small_log() -> bytes:
    return b"".join(f"deploy step {n}\n".encode() for n in range(1, 2001))


def lines_of(data: bytes) -> list[bytes]:
    return data.splitlines(keepends=True)


@dataclass
class Raw:
    exit_code: int
    stdout: bytes
    stderr: str

    @property
    def envelope(self) -> dict:
        """The JSON object a content read prints as the last line of stderr."""
        document = json.loads(self.stderr.strip().splitlines()[-1])
        from conftest import Result

        check_output(Result(self.exit_code, json.dumps(document), ""))
        return document


def run_raw(*args) -> Raw:
    """`log-archiver ARGS...` in this process, stdout kept as bytes."""
    from log_archiver.cli import main

    out, err = io.TextIOWrapper(io.BytesIO(), encoding="utf-8"), io.StringIO()
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = out, err
    code = 0
    try:
        main([str(a) for a in args])
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    finally:
        sys.stdout, sys.stderr = saved
    out.flush()
    return Raw(code, out.buffer.getvalue(), err.getvalue())


class Place:
    """One archive's workspace on one kind of store."""

    def __init__(self, kind: str, root: Path, store_root: Path | None = None, s3=None):
        self.kind, self.root, self.store_root, self.s3 = kind, root, store_root, s3

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def index(self) -> dict:
        return json.loads((self.logs / ".archive-index.json").read_text())

    def log(self, local_path: str) -> dict:
        entry = self.index()["archives"][0]
        return next(log for log in entry["logs"] if log["local_path"] == local_path)

    def stored(self, key: str) -> bytes:
        if self.kind == "file":
            return (self.store_root / key).read_bytes()
        return self.s3.read(key)

    def replace(self, key: str, data: bytes) -> None:
        """Put other bytes at ``key`` behind the archive's back (as damage would)."""
        if self.kind == "file":
            with open(self.store_root / key, "r+b") as handle:
                handle.write(data)
            return
        client = self.s3.server.client()
        full = f"{self.s3.prefix}/{key}"
        client.put_object(Bucket=self.s3.bucket, Key=full, Body=data)

    def flip(self, key: str, offset: int) -> None:
        data = bytearray(self.stored(key))
        data[offset] ^= 0x01
        self.replace(key, bytes(data))


@pytest.fixture(params=["file", "s3"], name="place")
def place_fixture(request, workspace, tmp_path):
    """The workspace on a file:// store, then on S3 (import it as ``place_fixture``)."""
    if request.param == "file":
        return Place("file", workspace, tmp_path / "store")
    s3 = request.getfixturevalue("s3_workspace")
    return Place("s3", workspace, s3=s3)


def write_logs(place: Place) -> dict[str, bytes]:
    logs = {BIG: big_log(), SMALL: small_log()}
    for name, data in logs.items():
        path = place.logs / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return logs

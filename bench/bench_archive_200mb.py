"""`archive` of ~200 MB of logs of mixed sizes to the local store, against a shell pipeline
doing the same work one file at a time (gzip -6 of the big files, sha256sum, copy).

Target: our wall time at most 0.7x the pipeline's, both measured in this run.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import make_workspace, median_of, report, run_timed, tool, write_log  # noqa: E402

ROUNDS = 3
ISSUE = 777
THRESHOLD = 1 << 20
# (folder/name pattern, count, size): ~200 MB in 64 files, most bytes in big logs.
MIX = [("sessions/session-{i}-{n}.md", 6, 20_000_000), ("builds/{i}-build-{n}.log", 10, 5_000_000),
       ("deployments/{i}-deploy-{n}.log", 16, 1_500_000), ("debug/{i}-debug-{n}.log", 32, 200_000)]

PIPELINE = r"""
set -e
cd "$1"; out="$2"
find . -type f | sort | while read -r f; do
  mkdir -p "$out/$(dirname "$f")"
  if [ "$(stat -c %s "$f")" -gt {threshold} ]; then
    gzip -6 -c "$f" > "$out/$f.gz"; sha256sum "$out/$f.gz" > /dev/null
  else
    sha256sum "$f" > /dev/null; cp "$f" "$out/$f"
  fi
done
""".replace("{threshold}", str(THRESHOLD))


def write_logs(source: Path) -> int:
    total = 0
    for pattern, count, size in MIX:
        for n in range(count):
            write_log(source / pattern.format(i=ISSUE, n=n), size, seed=n)
            total += size
    return total


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="bench-200mb-") as tmp:
        tmp = Path(tmp)
        source = tmp / "source"
        total = write_logs(source)
        ours, base = [], []
        for round_ in range(ROUNDS):
            work = tmp / f"ours-{round_}"
            env = make_workspace(work, git=False)
            shutil.copytree(source, env["LOG_ARCHIVER_LOGS_DIR"], dirs_exist_ok=True)
            ours.append(run_timed([tool("log-archiver"), "archive", str(ISSUE), "-q"],
                                  env=env)[0])
            assert not any(Path(env["LOG_ARCHIVER_LOGS_DIR"]).rglob("*.log")), "logs left"
            shutil.rmtree(work)
            out = tmp / f"shell-{round_}"
            base.append(run_timed(["bash", "-c", PIPELINE, "pipeline", str(source), str(out)])[0])
            shutil.rmtree(out)
    figure, baseline = median_of(ours), median_of(base)
    ratio = figure / baseline
    return 0 if report("archive_200mb", figure=figure, baseline=baseline, unit="s",
                       target="ratio <= 0.70", ok=ratio <= 0.7,
                       detail={"bytes": total, "files": sum(c for _, c, _ in MIX),
                               "rounds": ROUNDS})["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())

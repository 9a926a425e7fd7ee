"""collect-logs on a logs dir of 2,000 files: median cold start (target <= 200 ms).

Baseline: `python3 -c pass` on the same machine, in the same run.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import make_workspace, median_of, python_pass, report, run_timed, tool  # noqa: E402

RUNS = 21
ISSUE = 1234
FOLDERS = {"sessions": "session-{n}-2025-01-{d:02d}.md", "builds": "{n}-build-{d}.log",
           "deployments": "{n}-deploy-{d}.log", "debug": "{n}-debug-{d}.log"}


def populate(logs: Path) -> int:
    """2,000 small files over 100 issues (20 each), a few of them ISSUE's."""
    count = 0
    for n in range(ISSUE - 50, ISSUE + 50):
        for folder, pattern in FOLDERS.items():
            for d in range(1, 6):
                path = logs / folder / pattern.format(n=n, d=d)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(f"log of issue {n}, part {d}\n")
                count += 1
    return count


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="bench-collect-") as tmp:
        env = make_workspace(Path(tmp), git=False)
        files = populate(Path(env["LOG_ARCHIVER_LOGS_DIR"]))
        ours, base = [], []
        for _ in range(RUNS):  # alternate so both sides see the same machine load
            ours.append(run_timed([tool("collect-logs"), str(ISSUE), "-q"], env=env)[0])
            base.append(run_timed(python_pass(), env=env)[0])
    figure, baseline = median_of(ours) * 1000, median_of(base) * 1000
    return 0 if report("collect_cold_start", figure=figure, baseline=baseline, unit="ms",
                       target="<= 200 ms", ok=figure <= 200,
                       detail={"files": files, "runs": RUNS})["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())

"""One-command archive of a typical issue (4 logs, ~2 MB) in a git repository, committing
the index: median wall time (target <= 200 ms), beside `python3 -c pass`."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    make_workspace,
    median_of,
    python_pass,
    report,
    run_timed,
    tool,
)

RUNS = 15


def main() -> int:
    from log_archiver.util.samples import write_sample_logs

    with tempfile.TemporaryDirectory(prefix="bench-typical-") as tmp:
        env = make_workspace(Path(tmp))
        logs = Path(env["LOG_ARCHIVER_LOGS_DIR"])
        ours, base = [], []
        for run in range(RUNS):
            issue = 100 + run
            write_sample_logs(logs, issue, big=1_900_000, seed=run)
            ours.append(run_timed([tool("log-archiver"), "archive", str(issue), "-q"],
                                  env=env, cwd=logs.parent)[0])
            base.append(run_timed(python_pass(), env=env)[0])
            left = [p for p in logs.rglob("*") if p.is_file() and f"{issue}" in p.name]
            assert not left, f"archive left {left}"
    figure, baseline = median_of(ours) * 1000, median_of(base) * 1000
    return 0 if report("archive_typical_issue", figure=figure, baseline=baseline, unit="ms",
                       target="<= 200 ms", ok=figure <= 200,
                       detail={"runs": RUNS, "logs": 4, "bytes": 1_900_000 + 140_000})["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())

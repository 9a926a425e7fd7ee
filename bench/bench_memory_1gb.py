"""Peak memory (RSS) of `archive` on a single 1 GB log: target at most 150 MB.

Beside it, the peak RSS of `python3 -c pass`, and the wall time of the archive.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    make_workspace,
    python_pass,
    report,
    run_measured,
    tool,
    write_log,
)

SIZE = 1 << 30
ISSUE = 4242
LIMIT_MB = 150


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        env = make_workspace(Path(tmp), git=False)
        if os.environ.get("LOG_ARCHIVER_WORKERS"):  # memory must not grow with the setting
            env["LOG_ARCHIVER_WORKERS"] = os.environ["LOG_ARCHIVER_WORKERS"]
        write_log(Path(env["LOG_ARCHIVER_LOGS_DIR"]) / f"builds/{ISSUE}-build.log", SIZE, seed=1)
        seconds, peak = run_measured([tool("log-archiver"), "archive", str(ISSUE), "-q"],
                                     env=env)
        _, base_peak = run_measured(python_pass())
    figure, baseline = peak / 2**20, base_peak / 2**20
    return 0 if report("archive_1gb_peak_memory", figure=figure, baseline=baseline, unit="MB",
                       target=f"<= {LIMIT_MB} MB", ok=figure <= LIMIT_MB,
                       detail={"bytes": SIZE, "seconds": round(seconds, 2)})["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())

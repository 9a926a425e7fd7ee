"""`archive --all-closed` of 40 closed issues (4 logs, ~2 MB each) in a git repository,
GitHub being the local fake server: median wall time, beside a shell baseline doing what
fractary-logs' script chain does one issue at a time (bench/fractary_baseline.sh: find,
gzip -9, sha256sum, jq per file). Target: at least 10x faster.

The baseline neither asks GitHub nor commits; ours does both (one page of closed issues,
one commit). No token is set, so neither side posts comments."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from _common import make_workspace, median_of, report, run_timed, tool  # noqa: E402

ISSUES = list(range(101, 141))
RUNS = 3
BASELINE = Path(__file__).resolve().parent / "fractary_baseline.sh"


def write_logs(logs: Path, seed: int) -> int:
    from log_archiver.util.samples import write_sample_logs

    total = 0
    for issue in ISSUES:
        for path in write_sample_logs(logs, issue, big=1_900_000, seed=seed * 1000 + issue):
            total += path.stat().st_size
    return total


def left_behind(logs: Path) -> list[Path]:
    """The logs still on disk (the archive's own dot-files and dot-folders are not logs)."""
    return [p for p in logs.rglob("*") if p.is_file()
            and not any(part.startswith(".") for part in p.relative_to(logs).parts)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=RUNS, help=f"rounds of both (default {RUNS})")
    runs = parser.parse_args().runs
    missing = [name for name in ("jq", "gzip", "sha256sum", "find", "bash")
               if shutil.which(name) is None]
    if missing:
        raise SystemExit(f"bench_batch_closed needs {', '.join(missing)} for its baseline: "
                         f"apt-get install -y {' '.join(missing)}")
    from fakegithub import FakeGitHub

    ours, base = [], []
    with FakeGitHub("octo/bench", token=None) as github:
        for issue in ISSUES:
            github.add_issue(issue, f"Issue {issue}", state="closed")
        for run in range(runs):
            with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
                env = make_workspace(Path(tmp))
                env.update(GITHUB_REPOSITORY="octo/bench", GITHUB_API_URL=github.url)
                logs = Path(env["LOG_ARCHIVER_LOGS_DIR"])
                size = write_logs(logs, run)
                before = len(github.requests)
                os.sync()  # neither side pays for writing back what the other wrote
                ours.append(run_timed([tool("log-archiver"), "archive", "--all-closed", "-q"],
                                      env=env, cwd=logs.parent)[0])
                left = left_behind(logs)
                assert not left, f"archive --all-closed left {left[:3]}"
                pages = [r for r in github.requests[before:] if r.path.endswith("/issues")]
                assert len(pages) == 1, f"{len(pages)} pages of closed issues asked"
            with tempfile.TemporaryDirectory(prefix="bench-batch-base-") as tmp:
                logs = Path(tmp) / "logs"
                write_logs(logs, run)
                os.sync()
                base.append(run_timed(["bash", str(BASELINE), str(logs), str(Path(tmp) / "store"),
                                       *map(str, ISSUES)])[0])
                left = left_behind(logs)
                assert not left, f"the baseline left {left[:3]}"
    figure, baseline = median_of(ours), median_of(base)
    speedup = baseline / figure
    record = report("batch_all_closed", figure=figure, baseline=baseline, unit="s",
                    target=">= 10x faster than the baseline", ok=speedup >= 10,
                    detail={"issues": len(ISSUES), "logs": 4 * len(ISSUES), "bytes": size,
                            "runs": runs, "speedup": round(speedup, 2),
                            "ours": ours, "baseline_runs": base})
    print(f"batch_all_closed: {speedup:.1f}x faster than the shell baseline")
    return 0 if record["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())

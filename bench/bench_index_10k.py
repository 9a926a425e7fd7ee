"""What a 10,000-entry index adds to each archive (target: at most 500 ms).

Two identical workspaces, one with an empty index and one whose index holds 10,000
entries written by the tool's own index writer; the same issues are archived one after
another in both, alternating, and the median difference of wall time is the figure.
"""

from __future__ import annotations

import copy
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import make_workspace, median_of, report, run_timed, tool  # noqa: E402

ENTRIES = 10_000
ISSUES = range(20_001, 20_008)


def seed_index(env: dict, entries: int) -> int:
    """Archive one real issue, then clone its entry into ``entries`` issues."""
    from log_archiver.index.file import ArchiveIndex
    from log_archiver.util.samples import write_sample_logs

    logs = Path(env["LOG_ARCHIVER_LOGS_DIR"])
    write_sample_logs(logs, 1)
    run_timed([tool("log-archiver"), "archive", "1", "-q", "--no-commit"], env=env)
    index = ArchiveIndex(logs / ".archive-index.json")
    with index.transaction() as txn:
        template = txn.get(1)
        for issue in range(2, entries + 1):
            entry = copy.deepcopy(template)
            entry["issue_number"] = issue
            for log in entry["logs"]:
                log["remote_path"] = log["remote_path"].replace("/1/", f"/{issue}/")
            txn.put(entry)
    return index.path.stat().st_size


def main() -> int:
    from log_archiver.util.samples import write_sample_logs

    with tempfile.TemporaryDirectory(prefix="bench-index-") as tmp:
        small = make_workspace(Path(tmp) / "small", git=False)
        large = make_workspace(Path(tmp) / "large", git=False)
        size = seed_index(large, ENTRIES)
        seed_index(small, 1)
        times = {"small": [], "large": []}
        for issue in ISSUES:
            for name, env in (("small", small), ("large", large)):
                write_sample_logs(Path(env["LOG_ARCHIVER_LOGS_DIR"]), issue, seed=issue)
                times[name].append(run_timed(
                    [tool("log-archiver"), "archive", str(issue), "-q", "--no-commit"],
                    env=env)[0])
    added = [big - little for big, little in zip(times["large"], times["small"], strict=True)]
    figure = median_of(added) * 1000
    return 0 if report("index_10k_added", figure=figure, baseline=median_of(times["small"]) * 1000,
                       unit="ms", target="<= 500 ms added", ok=figure <= 500,
                       detail={"entries": ENTRIES, "index_bytes": size,
                               "archives": len(ISSUES)})["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())

"""`list` over a 10,000-entry index: the first page's wall time (target: at most 200 ms).

One real archive is cloned into 10,000 entries by the tool's own index writer, spread over
two years. Measured: `list-archives --limit 20` (a process each time, start-up included),
median of the runs; baseline in the same run: a bare Python process that loads the same
index with the standard `json` module and sorts it newest first.

    .venv/bin/python bench/bench_list_10k.py [--runs 9]
"""

from __future__ import annotations

import argparse
import copy
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import make_workspace, median_of, report, run_timed, tool  # noqa: E402

ENTRIES = 10_000
BASELINE = ("import json, sys\n"
            "doc = json.load(open(sys.argv[1]))\n"
            "page = sorted(doc['archives'], key=lambda e: (e['archived_at'], e['issue_number']),"
            " reverse=True)[:20]\n"
            "print(json.dumps([e['issue_number'] for e in page]))\n")


def seed_index(env: dict) -> Path:
    from log_archiver.index.file import ArchiveIndex
    from log_archiver.util.samples import write_sample_logs

    logs = Path(env["LOG_ARCHIVER_LOGS_DIR"])
    write_sample_logs(logs, 1)
    run_timed([tool("log-archiver"), "archive", "1", "-q", "--no-commit"], env=env)
    index = ArchiveIndex(logs / ".archive-index.json")
    with index.transaction() as txn:
        template = txn.get(1)
        for issue in range(2, ENTRIES + 1):
            entry = copy.deepcopy(template)
            entry["issue_number"] = issue
            entry["archived_at"] = (f"20{24 + issue % 2}-{1 + issue % 12:02d}-"
                                    f"{1 + issue % 28:02d}T{issue % 24:02d}:00:00Z")
            for log in entry["logs"]:
                log["remote_path"] = log["remote_path"].replace("/1/", f"/{issue}/")
            txn.put(entry)
    return index.path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-list-") as temp:
        env = make_workspace(Path(temp), git=False)
        index = seed_index(env)
        ours_cmd = [tool("list-archives"), "--limit", "20", "-q"]
        base_cmd = [sys.executable, "-c", BASELINE, str(index)]
        check = json.loads(subprocess.run(ours_cmd, env=env, capture_output=True,
                                          check=True).stdout)
        expected = json.loads(subprocess.run(base_cmd, env=env, capture_output=True,
                                             check=True).stdout)
        if [a["issue_number"] for a in check["archives"]] != expected:
            raise SystemExit(f"list's first page {check['archives'][:3]}... is not the "
                             f"baseline's {expected[:3]}...")
        run_timed(ours_cmd, env=env)  # warm the page cache and the index's validity record
        ours, base = [], []
        for number in range(args.runs):
            sides = [(ours, ours_cmd), (base, base_cmd)]
            for times, cmd in sides if number % 2 == 0 else reversed(sides):
                times.append(run_timed(cmd, env=env)[0])
        size = index.stat().st_size
    figure, baseline = median_of(ours) * 1000, median_of(base) * 1000
    result = report("list_10k_first_page", figure=figure, baseline=baseline, unit="ms",
                    target="<= 200 ms", ok=figure <= 200,
                    detail={"entries": ENTRIES, "index_bytes": size, "runs": args.runs,
                            "ours_seconds": ours, "json_sort_seconds": base})
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())

"""``gc --dry-run`` on a 10,000-entry index (target: at most 2 s).

The index is written by the tool's own index writer: one real archived issue cloned into
10,000 entries, a third of them past their retention, a tenth on legal hold, some labelled
for a longer rule. The baseline, measured in the same run, is ``validate-index`` of the same
file (reading and checking every entry). Medians of several runs of each, alternating.
"""

from __future__ import annotations

import copy
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import make_workspace, median_of, report, run_timed, tool  # noqa: E402

ENTRIES = 10_000
ROUNDS = 5
RETENTION = {"default": "1y", "by_type": {"debug": "30d"},
             "by_label": {"compliance": "audit: 7y"}}


def seed_index(env: dict) -> Path:
    from log_archiver.index.file import ArchiveIndex
    from log_archiver.util.samples import write_sample_logs

    logs = Path(env["LOG_ARCHIVER_LOGS_DIR"])
    write_sample_logs(logs, 1, big=20_000, small=4_000)
    run_timed([tool("log-archiver"), "archive", "1", "-q", "--no-commit"], env=env)
    index = ArchiveIndex(logs / ".archive-index.json")
    with index.transaction() as txn:
        template = txn.get(1)
        for issue in range(1, ENTRIES + 1):
            entry = copy.deepcopy(template)
            entry["issue_number"] = issue
            entry["archived_at"] = "2020-01-01T00:00:00Z" if issue % 3 == 0 \
                else "2099-01-01T00:00:00Z"
            entry["labels"] = ["compliance"] if issue % 7 == 0 else ["bug"]
            if issue % 10 == 0:
                entry["hold"] = {"reason": "audit", "by": "bench", "at": "2025-01-01T00:00:00Z"}
            for log in entry["logs"]:
                log["remote_path"] = log["remote_path"].replace("/1/", f"/{issue}/")
            txn.put(entry)
    return index.path


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="bench-gc-") as tmp:
        env = make_workspace(Path(tmp) / "ws", git=False)
        config = Path(tmp) / "ws" / "repo" / ".log-archiver.json"
        config.write_text(json.dumps({"logs_dir": "logs", "retention": RETENTION}))
        env["LOG_ARCHIVER_CONFIG"] = str(config)
        path = seed_index(env)
        cwd = str(config.parent)
        gc = [tool("log-archiver"), "gc", "--dry-run", "-q"]
        validate = [tool("log-archiver"), "validate-index", str(path), "-q"]
        run_timed(gc, env=env, cwd=cwd)  # warm the page cache and the validity record
        times: dict[str, list[float]] = {"gc": [], "validate": []}
        for _ in range(ROUNDS):
            times["gc"].append(run_timed(gc, env=env, cwd=cwd)[0])
            times["validate"].append(run_timed(validate, env=env, cwd=cwd)[0])
        size = path.stat().st_size
    figure = median_of(times["gc"])
    return 0 if report("gc_dry_run_10k", figure=figure, baseline=median_of(times["validate"]),
                       unit="s", target="<= 2 s", ok=figure <= 2.0,
                       detail={"entries": ENTRIES, "index_bytes": size, "rounds": ROUNDS,
                               "baseline": "validate-index of the same file"})["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())

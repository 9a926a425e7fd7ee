"""The quick benchmarks still run end to end (their figures are for people, not for this
test: a slow machine may miss a target, but a benchmark that breaks must not go unseen)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import REPO


@pytest.mark.parametrize("name, result", [("bench_collect_cold", "collect_cold_start"),
                                          ("bench_archive_typical", "archive_typical_issue")])
def test_a_quick_benchmark_runs_and_reports(name, result):
    (REPO / "bench" / "results" / f"{result}.json").unlink(missing_ok=True)  # no stale pass
    done = subprocess.run([sys.executable, str(REPO / "bench" / f"{name}.py")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode in (0, 1), done.stderr  # 1: ran, but missed its target here
    assert result in done.stdout and "baseline" in done.stdout
    record = json.loads((REPO / "bench" / "results" / f"{result}.json").read_text())
    assert record["figure"] > 0 and record["baseline"] > 0
    assert record["ok"] == (done.returncode == 0)

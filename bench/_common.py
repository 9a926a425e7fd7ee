"""Shared pieces of the benchmarks: timing commands, peak memory, and the report line.

Every benchmark measures its baseline in the same run and prints both figures and their
ratio, so that a noisy shared machine moves both sides together.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
RESULTS = BENCH / "results"


def tool(name: str) -> str:
    """An installed console script of this venv (``log-archiver``, ``collect-logs``...)."""
    return str(Path(sys.executable).with_name(name))


def run_timed(cmd, *, env=None, cwd=None, shell=False) -> tuple[float, int]:
    """Wall seconds of one command run to completion (fails loudly), and a peak RSS that
    is only an upper bound: use :func:`run_measured` for memory figures."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, shell=shell,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    stderr = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    if proc.returncode not in (0,):
        raise SystemExit(f"benchmark command failed ({proc.returncode}): {cmd}\n{stderr}")
    return elapsed, usage.ru_maxrss * 1024


_PEAK_RSS = """
import os, sys
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
open(sys.argv[1], "w").write(str(usage.ru_maxrss * 1024))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def run_measured(cmd: list[str], *, env=None, cwd=None) -> tuple[float, int]:
    """Wall seconds and the command's own peak RSS (bytes).

    Linux carries a process's peak RSS across fork and exec, so a child started straight
    from this (larger) process reports at least this process's peak; the command is
    therefore started from a small launcher, which reports the command's own peak.
    """
    import tempfile

    with tempfile.NamedTemporaryFile(prefix="bench-rss-") as record:
        seconds, _ = run_timed([sys.executable, "-I", "-S", "-c", _PEAK_RSS, record.name,
                                *cmd], env=env, cwd=cwd)
        return seconds, int(Path(record.name).read_text())


def median_of(times: list[float]) -> float:
    return statistics.median(times)


def report(name: str, *, figure: float, baseline: float | None, unit: str, target: str,
           ok: bool, detail: dict | None = None) -> dict:
    """Print one line for people and write bench/results/NAME.json for tools."""
    ratio = figure / baseline if baseline else None
    line = f"{name}: {figure:.3f} {unit}"
    if baseline is not None:
        line += f"  baseline {baseline:.3f} {unit}  ratio {ratio:.2f}"
    line += f"  target {target}  {'PASS' if ok else 'FAIL'}"
    print(line, flush=True)
    record = {"name": name, "figure": figure, "baseline": baseline, "ratio": ratio,
              "unit": unit, "target": target, "ok": ok, "detail": detail or {}}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(record, indent=2) + "\n")
    return record


def clean_env(**extra: str) -> dict:
    """The environment without this project's or the cloud's settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("LOG_ARCHIVER_", "GITHUB_", "GH_", "AWS_"))
           and k != "PYTHONDONTWRITEBYTECODE"}
    env.update(extra)
    return env


GIT_IDENTITY = {"GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.invalid",
                "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.invalid"}


def make_workspace(root: Path, *, git: bool = True) -> dict:
    """A repository with an empty logs/ and a file:// store beside it; returns its env."""
    logs = root / "repo" / "logs"
    logs.mkdir(parents=True)
    env = clean_env(LOG_ARCHIVER_LOGS_DIR=str(logs),
                    LOG_ARCHIVER_STORAGE=f"file://{root / 'store'}", **GIT_IDENTITY)
    if git:
        subprocess.run(["git", "init", "-q", str(root / "repo")], check=True, env=env)
        subprocess.run(["git", "-C", str(root / "repo"), "commit", "-q", "--allow-empty",
                        "-m", "start"], check=True, env=env)
    return env


def write_log(path: Path, size: int, seed: int) -> Path:
    """``size`` bytes of log text, fast at any size: a 4 MiB generated block, repeated with
    a per-block header so no two blocks are identical."""
    from log_archiver.util.samples import log_text

    block = log_text(min(size, 4 << 20), seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as out:
        written, n = 0, 0
        while written < size:
            chunk = (f"block {n} of seed {seed}\n".encode() + block)[: size - written]
            out.write(chunk)
            written += len(chunk)
            n += 1
    return path


def python_pass() -> list[str]:
    """`python3 -c pass` with the interpreter itself (not a version-manager shim)."""
    return [sys.executable, "-c", "pass"]

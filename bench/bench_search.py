"""`search` over ~1 GB of archived logs (a few hundred issues, stored gzip-compressed on a
file:// store, local copies cleaned up), against `zgrep -F` (or `rg -z`) over the same
stored files, both measured in this run.

Targets: a rare word's median warm latency at most 100 ms and at least 20x faster than the
baseline; a regex query at most 1 s. Printed beside them: the search index's size and the
stored size (aim: at most 30%), the time to rebuild the index from the store, and the CLI's
wall time (Python's start included).

The archive is generated deterministically and kept in $TMPDIR/log-archiver-bench-search-N
(N: BENCH_SEARCH_MB, default 1024) so later runs skip building it; delete it to start again.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import clean_env, median_of, report, tool  # noqa: E402

TOTAL_MB = int(os.environ.get("BENCH_SEARCH_MB", "1024"))
ISSUES = max(TOTAL_MB * 300 // 1024, 20)
ROUNDS = 9
RARE = "zqxrarefox"  # planted once, in the middle of one big log
REGEX = r"ConnectionError: zqx[a-z]+ (after|before) \d+ retries"
MODULES = ["auth", "billing", "scheduler", "gateway", "storage", "indexer", "worker", "api"]
FUNCS = ["handle_request", "process_batch", "connect", "retry_upload", "parse_config", "flush"]
WORDS = ["compile", "link", "test", "deploy", "fetch", "cache", "retry", "ok", "warn", "module",
         "handler", "request", "latency", "token", "session", "agent", "tool", "timeout",
         "connection", "refused", "user", "payload", "worker", "started", "finished",
         "pipeline", "artifact", "upload", "download", "checksum", "mismatch", "pending"]


def log_lines(size: int, seed: int) -> bytes:
    """Realistic log text: timestamped lines, JSON lines and Python stack traces."""
    rng = random.Random(seed)
    out, total, n = [], 0, 0
    while total < size:
        n += 1
        ts = (f"2025-{1 + seed % 12:02d}-{1 + n // 86400 % 28:02d}T{n // 3600 % 24:02d}:"
              f"{n // 60 % 60:02d}:{n % 60:02d}.{rng.randrange(1000):03d}Z")
        kind = rng.random()
        if kind < 0.6:
            line = (f"{ts} {rng.choice(('INFO', 'DEBUG', 'WARN', 'ERROR'))} "
                    f"[{rng.choice(MODULES)}] "
                    + " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 12)))
                    + f" id={rng.getrandbits(32):08x} took={rng.randrange(5000)}ms\n")
        elif kind < 0.85:
            line = json.dumps({"ts": ts, "level": rng.choice(("info", "error")),
                               "module": rng.choice(MODULES),
                               "msg": " ".join(rng.choice(WORDS) for _ in range(4)),
                               "request_id": f"{rng.getrandbits(64):016x}",
                               "user": rng.randrange(100000),
                               "status": rng.choice((200, 201, 404, 500, 503))}) + "\n"
        else:
            frames = "".join(
                f'  File "/srv/app/{rng.choice(MODULES)}/{rng.choice(FUNCS)}.py", line '
                f'{rng.randrange(1, 900)}, in {rng.choice(FUNCS)}\n    result = '
                f'{rng.choice(FUNCS)}(ctx, retries={rng.randrange(5)})\n'
                for _ in range(rng.randint(2, 6)))
            line = (f"{ts} ERROR [{rng.choice(MODULES)}] Traceback (most recent call last):\n"
                    f"{frames}{rng.choice(('ValueError', 'TimeoutError', 'KeyError'))}: "
                    + " ".join(rng.choice(WORDS) for _ in range(4)) + "\n")
        out.append(line)
        total += len(line)
    return "".join(out).encode()[:size]


def build_archive(root: Path) -> dict:
    """Write the logs of ISSUES issues and archive them (in one process); returns the env."""
    from log_archiver.archive.pipeline import archive
    from log_archiver.config import load_config
    from log_archiver.repository import Repository

    logs = root / "repo" / "logs"
    logs.mkdir(parents=True)
    env = clean_env(LOG_ARCHIVER_LOGS_DIR=str(logs), LOG_ARCHIVER_STORAGE=f"file://{root}/store",
                    XDG_CACHE_HOME=str(root / "cache"))
    pool = [log_lines(4 << 20, seed) for seed in range(12)]  # 48 MB of distinct text
    rng = random.Random(7)
    budget, per_issue = TOTAL_MB << 20, (TOTAL_MB << 20) // ISSUES
    rare_issue = ISSUES // 2
    os.environ.update({k: env[k] for k in ("LOG_ARCHIVER_LOGS_DIR", "LOG_ARCHIVER_STORAGE",
                                           "XDG_CACHE_HOME")})
    for issue in range(1, ISSUES + 1):
        sizes = [int(per_issue * share) for share in (0.7, 0.2, 0.1)]
        names = [f"sessions/session-{issue}-a.md", f"builds/{issue}-build.log",
                 f"deployments/{issue}-deploy.log"]
        for name, size in zip(names, sizes, strict=True):
            path = logs / name
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "wb") as out:
                written, n = 0, 0
                while written < size:
                    piece = pool[rng.randrange(len(pool))]
                    start = rng.randrange(len(piece) // 2)
                    chunk = piece[start:start + min(size - written, 1 << 20)]
                    chunk = chunk[:chunk.rfind(b"\n") + 1] or chunk
                    header = (f"{issue}-{n} ConnectionError: zqx{_word(rng)} after "
                              f"{rng.randrange(9)} retries\n").encode() \
                        if issue % 25 == 0 and n == 1 else b""
                    out.write(header + chunk)
                    if issue == rare_issue and name.startswith("sessions") and n == 2:
                        out.write(f"2025-06-01T00:00:00Z ERROR the {RARE} jumped\n".encode())
                    written += len(header) + len(chunk)
                    n += 1
        budget -= per_issue
        result = archive(Repository(load_config()), issue, commit=False)
        assert result["status"] == "ok", result
    return env


def _word(rng) -> str:
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(6))


def stored_files(root: Path) -> list[str]:
    return sorted(str(p) for p in (root / "store").rglob("*") if p.is_file()
                  and not p.name.startswith(".") and not p.name.endswith(".sha256"))


def in_process_search(query: str, **options) -> dict:
    from log_archiver.config import load_config
    from log_archiver.repository import Repository
    from log_archiver.search.query import search

    return search(Repository(load_config()), query, **options)


def main() -> int:
    root = Path(tempfile.gettempdir()) / f"log-archiver-bench-search-{TOTAL_MB}"
    marker = root / "built"
    if not marker.exists():
        shutil.rmtree(root, ignore_errors=True)
        started = time.perf_counter()
        build_archive(root)
        marker.write_text(f"{time.perf_counter() - started:.1f}\n")
    env = clean_env(LOG_ARCHIVER_LOGS_DIR=str(root / "repo" / "logs"),
                    LOG_ARCHIVER_STORAGE=f"file://{root}/store",
                    XDG_CACHE_HOME=str(root / "cache"))
    os.environ.update({k: env[k] for k in ("LOG_ARCHIVER_LOGS_DIR", "LOG_ARCHIVER_STORAGE",
                                           "XDG_CACHE_HOME")})
    files = stored_files(root)
    stored = sum(os.path.getsize(f) for f in files)

    first = in_process_search(RARE)  # warms the cache and folds in what archiving added
    assert first["total"] == 1, first
    ours = [in_process_search(RARE)["elapsed_ms"] / 1000 for _ in range(ROUNDS)]

    grep = ["rg", "-z", "-F", "-c", RARE] if shutil.which("rg") else ["zgrep", "-F", "-c", RARE]
    base = []
    for _ in range(2):  # tens of seconds each over 1 GB
        started = time.perf_counter()
        done = subprocess.run(grep + files, capture_output=True, text=True)
        base.append(time.perf_counter() - started)
        assert done.returncode in (0, 1), done.stderr
    hits = sum(int(line.rsplit(":", 1)[1]) for line in done.stdout.splitlines() if ":" in line)
    assert hits == 1, f"the baseline found {hits} lines"

    cli = []
    for _ in range(3):
        started = time.perf_counter()
        subprocess.run([tool("search-logs"), RARE, "-q"], env=env, check=True,
                       capture_output=True)
        cli.append(time.perf_counter() - started)

    regex_runs = [in_process_search(REGEX, regex=True, limit=10) for _ in range(3)]
    regex_seconds = median_of([r["elapsed_ms"] / 1000 for r in regex_runs])
    scan = in_process_search(r"\.\d{3}Z [A-Z]{5} \[[q-z]{3}\]", regex=True, limit=1)
    assert not scan["narrowed"], scan

    index_path = Path(first["index_path"])
    index_bytes = sum(p.stat().st_size for p in index_path.parent.iterdir() if p.is_file())
    from log_archiver.config import load_config
    from log_archiver.repository import Repository
    from log_archiver.search.rebuild import rebuild_index

    rebuilt = rebuild_index(Repository(load_config()))
    figure, baseline = median_of(ours), median_of(base)
    detail = {"stored_bytes": stored, "stored_files": len(files), "issues": ISSUES,
              "original_mb": TOTAL_MB, "index_bytes": index_bytes,
              "index_share_of_stored": round(index_bytes / stored, 4),
              "rare_total": first["total"], "rare_read_bytes": first["read_bytes"],
              "cli_wall_s": round(median_of(cli), 3),
              "regex_s": round(regex_seconds, 3), "regex_total": regex_runs[0]["total"],
              "regex_read_bytes": regex_runs[0]["read_bytes"],
              "unnarrowed_regex_s": round(scan["elapsed_ms"] / 1000, 3),
              "rebuild_s": round(rebuilt["elapsed_ms"] / 1000, 1),
              "baseline": " ".join(grep[:3])}
    print(f"stored {stored / 1e6:.1f} MB in {len(files)} objects; search index "
          f"{index_bytes / 1e6:.1f} MB ({100 * index_bytes / stored:.1f}% of stored); "
          f"rebuild from the store {rebuilt['elapsed_ms'] / 1000:.1f} s", flush=True)
    print(f"cli wall (Python start included) {median_of(cli):.3f} s; regex "
          f"{regex_seconds:.3f} s ({regex_runs[0]['total']} matches, "
          f"{regex_runs[0]['read_bytes'] / 1e6:.1f} MB read); regex with nothing to narrow "
          f"{scan['elapsed_ms'] / 1000:.1f} s", flush=True)
    rare_ok = figure <= 0.100 and baseline / figure >= 20
    a = report("search_rare_word", figure=figure, baseline=baseline, unit="s",
               target="<= 0.100 s and ratio <= 0.05", ok=rare_ok, detail=detail)
    b = report("search_regex", figure=regex_seconds, baseline=None, unit="s",
               target="<= 1.0 s", ok=regex_seconds <= 1.0, detail=detail)
    return 0 if a["ok"] and b["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())

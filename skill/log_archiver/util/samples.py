"""Sample logs for the demo, the tests and the benchmarks: realistic, reproducible text."""

from __future__ import annotations

import random
from pathlib import Path

WORDS = ("compile", "link", "test", "deploy", "fetch", "cache", "retry", "ok", "warn",
         "module", "handler", "request", "latency", "token", "session", "agent", "tool")


def log_text(size: int, seed: int, *, start: str = "2025-01-15T09:00:00Z") -> bytes:
    """About ``size`` bytes of log lines (compresses like real logs, not like zeros)."""
    rng = random.Random(seed)
    lines = [f"Started: {start}\n".encode()]
    total = len(lines[0])
    n = 0
    while total < size:
        n += 1
        words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 12)))
        line = (f"2025-01-15T{9 + n // 3600 % 10:02d}:{n // 60 % 60:02d}:{n % 60:02d}Z "
                f"{rng.choice(('INFO', 'DEBUG', 'WARN'))} [{rng.randint(1, 64):02d}] {words} "
                f"id={rng.getrandbits(32):08x}\n").encode()
        lines.append(line)
        total += len(line)
    return b"".join(lines)[:size]


def write_sample_logs(logs_dir: Path, issue: int, *, big: int = 1_500_000,
                      small: int = 40_000, seed: int = 0) -> list[Path]:
    """Four logs of one issue: two sessions, a build and a deployment log (one large)."""
    files = {
        f"sessions/session-{issue}-2025-01-15.md": big,
        f"sessions/session-{issue}-2025-01-16.md": small,
        f"builds/{issue}-build.log": small * 2,
        f"deployments/{issue}-deploy.log": small // 2,
    }
    written = []
    for i, (name, size) in enumerate(files.items()):
        path = Path(logs_dir) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(log_text(size, seed * 100 + i))
        written.append(path)
    return written

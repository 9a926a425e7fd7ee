"""What redaction would replace in some logs, changing nothing: rule, file, line and a
masked preview of each secret (``ghp_****...``), never the secret itself."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path

from log_archiver.redaction.engine import Scanner
from log_archiver.redaction.stream import Finding, RedactingReader

MAX_LISTED = 1000  # findings listed in full; past that only counted


def scan_file(path: Path, scanner: Scanner) -> tuple[list[Finding], dict]:
    """Every finding in the file at ``path`` and its index-style ``redaction`` record."""
    findings: list[Finding] = []
    with open(path, "rb") as handle:
        reader = RedactingReader(handle, scanner, on_finding=findings.append)
        for _block in reader:
            pass
    return findings, reader.outcome.record()


def scan_logs(logs: list[tuple[str, Path]], scanner: Scanner, *, enabled: bool,
              workers: int = 1) -> dict:
    """The report of ``logs`` ((name, path) pairs): findings listed (the first
    ``MAX_LISTED``), counted per log and rule, and the binary logs left unscanned."""
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        scanned = list(pool.map(lambda item: scan_file(item[1], scanner), logs))
    listed, per_log, binary, total = [], [], [], 0
    for (name, _path), (findings, record) in zip(logs, scanned, strict=True):
        if record.get("binary"):
            binary.append(name)
        if not findings:
            continue
        total += len(findings)
        per_log.append({"local_path": name, "findings": record["findings"],
                        "secrets": len(findings)})
        for finding in findings:
            if len(listed) < MAX_LISTED:
                listed.append({"file": name, **asdict(finding)})
    return {"enabled": enabled, "logs_scanned": len(logs), "secrets": total,
            "logs": per_log, "findings": listed, "truncated": total > len(listed),
            "binary": binary}


def planned_redaction(config, logs: list[tuple[str, Path]], scanner: Scanner | None) -> dict:
    """What ``--dry-run`` says redaction would do to the planned logs (nothing is
    scanned when redaction is off)."""
    if scanner is None:
        return {"enabled": False, "logs_scanned": 0, "secrets": 0, "logs": [], "findings": [],
                "truncated": False, "binary": []}
    return scan_logs(logs, scanner, enabled=True, workers=config.workers)

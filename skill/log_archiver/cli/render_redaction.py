"""Human summaries of redaction: the ``scan`` report and the lines ``archive`` adds."""

from __future__ import annotations

from collections.abc import Callable

SHOWN = 50  # findings printed on stderr; the JSON lists more


def _per_rule(findings: dict) -> str:
    return ", ".join(f"{count} {rule}" for rule, count in sorted(findings.items()))


def redaction_lines(report: dict | None, *, planned: bool = False) -> list[str]:
    if not report:
        return []
    if not report["enabled"]:
        return ["  Redaction: off (logs stored as they are)"]
    verb = "would be redacted" if planned else "redacted"
    lines = [f"  Secrets {verb}: {report['secrets']}"
             + (f" in {len(report['logs'])} log(s)" if report["logs"] else "")]
    lines += [f"    {log['local_path']}: {_per_rule(log['findings'])}" for log in report["logs"]]
    if report.get("binary"):
        lines.append(f"  Binary logs left as they are: {', '.join(report['binary'])}")
    return lines


def scan_summary(doc: dict) -> str:
    issue = doc.get("issue_number")
    if doc["status"] == "error":
        return f"✗ Scan of issue #{issue} failed"
    report = doc.get("redaction") or {}
    if doc["status"] == "noop":
        return f"No logs of issue #{issue} found: nothing to scan"
    head = (f"Scan of issue #{issue}: {report.get('secrets', 0)} secret(s) in "
            f"{len(report.get('logs', []))} of {report.get('logs_scanned', 0)} log(s)")
    if not report.get("enabled", True):
        head += " (redaction is off: they would be stored as they are)"
    lines = [head]
    for finding in report.get("findings", [])[:SHOWN]:
        lines.append(f"  {finding['file']}:{finding['line']}  {finding['rule']}  "
                     f"{finding['preview']}")
    hidden = report.get("secrets", 0) - min(SHOWN, len(report.get("findings", [])))
    if hidden > 0:
        lines.append(f"  ... and {hidden} more (the JSON lists up to 1000)")
    if report.get("binary"):
        lines.append(f"  Binary logs, not scanned: {', '.join(report['binary'])}")
    return "\n".join(lines)


def with_redaction(summary: Callable[[dict], str]) -> Callable[[dict], str]:
    """``summary`` followed by what redaction did (or would do, in a dry run)."""

    def render(doc: dict) -> str:
        text = summary(doc)
        extra = redaction_lines(doc.get("redaction"), planned=bool(doc.get("dry_run")))
        return "\n".join([text, *extra]) if extra else text

    return render

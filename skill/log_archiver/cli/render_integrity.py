"""Human summaries of verify and audit (stderr)."""

from __future__ import annotations

LABELS = {"missing": "missing", "wrong_size": "wrong size", "wrong_checksum": "wrong checksum",
          "undecompressable": "does not decompress", "unreadable": "could not be checked",
          "index_rule": "index rule broken", "unindexed": "named by no entry"}


def verify_summary(doc: dict) -> str:
    if "mode" not in doc:
        return ""
    where = f"issue(s) {', '.join(map(str, doc['issues']))}" if doc["issues"] else "the archive"
    lines = [f"verify ({doc['mode']}) of {where} in {doc['storage_url']}: {doc['logs']} stored "
             f"log(s) checked, {doc['deep']} read back whole, in {doc['duration_seconds']:.1f} s"]
    if doc.get("sample"):
        sample = doc["sample"]
        lines.append(f"  sample: {sample['logs']} log(s), {sample['percent']:g}%, seed "
                     f"{sample['seed']} (repeat with --sample {sample['percent']:g} --seed "
                     f"{sample['seed']})")
    if not doc["findings"]:
        lines.append("  everything checked is whole")
        return "\n".join(lines)
    lines.append(f"  {len(doc['findings'])} finding(s):")
    for item in doc["findings"][:50]:
        what = item["file"] or item["remote_path"] or "index"
        issue = f"#{item['issue']} " if item["issue"] is not None else ""
        lines.append(f"  - {issue}{what}: {LABELS[item['kind']]}: {item['message']}")
        lines.append(f"      repair: {item['repair']}" if item["repair"]
                     else f"      {item['hint']}")
    if len(doc["findings"]) > 50:
        lines.append(f"  ... and {len(doc['findings']) - 50} more (see the JSON on stdout)")
    return "\n".join(lines)


def audit_summary(doc: dict) -> str:
    if "lines" not in doc:
        return ""
    out = []
    for line in doc["lines"][-200:]:
        issue = f"#{line['issue']}" if line.get("issue") is not None else "-"
        out.append(f"{line['time']}  {line['op']:<20} {issue:<7} {line['outcome']:<8} "
                   f"{line.get('file') or ''}")
    if len(doc["lines"]) > 200:
        out.insert(0, f"(the last 200 of {len(doc['lines'])} lines; all are on stdout)")
    if not out:
        out.append(f"no audit lines in {doc['path']}")
    return "\n".join(out)

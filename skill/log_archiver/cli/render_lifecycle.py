"""Human summaries of gc, hold and release (stderr)."""

from __future__ import annotations

from log_archiver.integrations.comment import human_size

KEPT_WORDS = {"held": "on legal hold", "incomplete": "partial or still uploading",
              "unverified": "stored copy never verified", "not_due": "not yet due",
              "forever": "kept forever by a rule", "no_rule": "no retention rule matches",
              "within_grace": "younger than the grace period", "age_unknown": "age unknown"}


def _kept(counts: dict) -> str:
    return ", ".join(f"{n} {KEPT_WORDS.get(reason, reason)}"
                     for reason, n in sorted(counts.items(), key=lambda kv: -kv[1]))


def gc_summary(doc: dict) -> str | None:
    if doc["status"] == "error":
        return None
    verb = "Would delete" if doc["dry_run"] else "Deleted"
    if doc.get("mode") == "orphans":
        lines = [f"{verb} {doc['deleted_count']} orphaned object(s) "
                 f"({human_size(doc['deleted_bytes'])}), older than "
                 f"{doc['grace_seconds']} s and named by no index entry"]
        lines += [f"  {o['key']}  {human_size(o['bytes'])}  {o['age_seconds']} s old"
                  for o in doc["orphans"][:20]]
        counts: dict = {}
        for kept in doc["kept"]:
            counts[kept["reason"]] = counts.get(kept["reason"], 0) + 1
        if counts:
            lines.append(f"  Kept: {_kept(counts)}")
    else:
        lines = []
        if not doc["retention"]["configured"]:
            lines.append("No retention configured: nothing ever expires")
        lines.append(f"{verb} {doc['deleted_count']} stored object(s) "
                     f"({human_size(doc['deleted_bytes'])})"
                     + ("" if doc["dry_run"] else f"; {doc['expired_logs']} log(s) expired"))
        lines += [f"  {d['key']}  {human_size(d['bytes'])}  rule {d['rule']}"
                  for d in doc["deleted"][:20]]
        if len(doc["deleted"]) > 20:
            lines.append(f"  ... and {len(doc['deleted']) - 20} more (see the JSON)")
        if doc["already_gone"]:
            lines.append(f"  {len(doc['already_gone'])} already gone (a stopped run had "
                         "deleted them)")
        if doc["kept_by_reason"]:
            lines.append(f"  Kept {len(doc['kept'])} log(s): {_kept(doc['kept_by_reason'])}")
    if doc["failed"]:
        lines.append(f"  ⚠ {len(doc['failed'])} delete(s) failed (below); the rest went on")
    return "\n".join(lines)


def hold_summary(doc: dict) -> str | None:
    if doc["status"] == "error":
        return None
    issue = doc["issue_number"]
    hold = doc.get("hold") or {}
    if doc["held"]:
        head = (f"Issue #{issue} is on legal hold" if doc["changed"]
                else f"Issue #{issue} was already on legal hold")
        head += f": {hold.get('reason')} (by {hold.get('by')}, {hold.get('at')})"
    else:
        head = (f"Legal hold on issue #{issue} released" if doc["changed"]
                else f"Issue #{issue} was not on legal hold")
    lines = [head, f"  {doc['object_lock'].get('message', '')}"]
    if doc["legal_holds"]:
        lines.append(f"  S3 legal hold {'placed on' if doc['held'] else 'lifted from'} "
                     f"{len(doc['legal_holds'])} object(s)")
    return "\n".join(lines)

"""The human summary of ``search`` (stderr; the JSON on stdout is the result)."""

from __future__ import annotations

from log_archiver.cli.output import shown


def search_human(document: dict) -> str:
    lines = []
    for match in document.get("matches", []):
        where = f"#{match['issue_number']} {match['local_path']}:{match['line']}"
        for text in match["before"]:
            lines.append(f"  {shown(text)}")
        lines.append(f"{shown(where)}: {shown(match['text'])}")
        for text in match["after"]:
            lines.append(f"  {shown(text)}")
    rebuilt = document.get("rebuild")
    if rebuilt:
        lines.append(f"search index rebuilt: {rebuilt['indexed_logs']} log(s) indexed")
    if "total" in document:
        more = f" (showing {len(document['matches'])})" if document["truncated"] else ""
        lines.append(f"{document['total']} matching line(s){more} in "
                     f"{document['searched_logs']} log(s), {document['elapsed_ms']} ms")
    return "\n".join(lines)

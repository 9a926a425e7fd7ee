"""Full index validation: the schema, and the rules a schema cannot say."""

from __future__ import annotations

import json
from pathlib import Path

from .index import recompute_entry


def validate_index_file(path: Path) -> list[dict]:
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return [{"path": "$", "message": f"no index at {path}"}]
    except (OSError, ValueError) as error:
        return [{"path": "$", "message": f"not readable JSON: {error}"}]
    return validate_index_document(doc)


def validate_index_document(doc) -> list[dict]:
    from .schemas import violations

    problems = [{"path": p, "message": m}
                for p, m in violations("archive-index.schema.json", doc)]
    if problems:
        return problems
    archives = doc["archives"]
    numbers = [e["issue_number"] for e in archives]
    if numbers != sorted(numbers, reverse=True):
        problems.append({"path": "$.archives", "message": "entries are not sorted by issue "
                         "number, descending"})
    seen: set[int] = set()
    for i, entry in enumerate(archives):
        where = f"$.archives[{i}]"
        if entry["issue_number"] in seen:
            problems.append({"path": f"{where}.issue_number",
                             "message": f"issue {entry['issue_number']} is listed twice"})
        seen.add(entry["issue_number"])
        paths = [log["local_path"] for log in entry["logs"]]
        for j, name in enumerate(paths):
            if name in paths[:j]:
                problems.append({"path": f"{where}.logs[{j}].local_path",
                                 "message": f"file {name} is listed twice"})
        expected = recompute_entry(json.loads(json.dumps(entry)))
        for key in ("total_logs", "total_size_bytes", "total_original_size_bytes",
                    "upload_complete", "partial_archive", "compression_ratio"):
            if entry[key] != expected[key]:
                problems.append({"path": f"{where}.{key}",
                                 "message": f"is {entry[key]!r}, the logs say {expected[key]!r}"})
    return problems

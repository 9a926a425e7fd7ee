"""One commit of the archive index for a batch of issues (``archive ISSUE ISSUE...``).

The same commit as :func:`.git.commit_archive` makes for one issue (the index alone, and
the removal from git of the cleaned logs git tracks), with a message that lists every
issue of the batch.
"""

from __future__ import annotations

from pathlib import Path

from log_archiver.integrations.comment import human_size
from log_archiver.integrations.git import cleaned_log_paths, commit_index
from log_archiver.util.retry import RetryPolicy

MAX_LISTED = 50  # issues named line by line; the rest are counted


def batch_commit_message(entries: list[dict], freed_bytes: int, *, untracked: int = 0) -> str:
    numbers = [entry["issue_number"] for entry in entries]
    shown = ", ".join(f"#{n}" for n in numbers[:MAX_LISTED])
    if len(numbers) > MAX_LISTED:
        shown += f" and {len(numbers) - MAX_LISTED} more"
    lines = [f"Archive logs for {len(numbers)} issues ({shown})", ""]
    for entry in entries[:MAX_LISTED]:
        from log_archiver.model.states import STORED

        logs = entry["total_logs"]
        stored = sum(log["upload_status"] in STORED for log in entry["logs"])
        noun = "log" if logs == 1 else "logs"
        partial = f" (partial: {logs - stored} still to upload)" if stored < logs else ""
        lines.append(f"- #{entry['issue_number']}: archived {stored} of {logs} {noun}"
                     f"{partial}, reason {entry['archive_reason']}")
    lines.append("- Updated archive index")
    lines.append(f"- Freed {human_size(freed_bytes)} locally" if freed_bytes > 0
                 else "- Freed nothing locally yet (logs stay until their upload is verified)")
    if untracked:
        lines.append(f"- Removed {untracked} archived {'log' if untracked == 1 else 'logs'} "
                     "from git (the store and the index keep them)")
    lines += ["", "Issues: " + ", ".join(f"#{n}" for n in numbers)]
    return "\n".join(lines) + "\n"


def commit_archives(index, issues: list[int], *, repo_root: Path | None = None,
                    policy: RetryPolicy | None = None, untrack_logs: bool = True) -> dict:
    """Commit ``index`` once for ``issues`` (those without an entry are left out of the
    message). Returns and raises as :func:`.git.commit_index`."""
    with index.locked():
        wanted = set(issues)
        entries = [entry for entry in index.read()["archives"]
                   if entry["issue_number"] in wanted]
        entries.sort(key=lambda entry: issues.index(entry["issue_number"]))
        freed = sum(log["original_size_bytes"] + (log["size_bytes"] if log["compressed"] else 0)
                    for entry in entries for log in entry["logs"]
                    if log["upload_status"] == "cleaned")
        logs_dir = Path(index.path).absolute().resolve().parent
        untrack = ([path for entry in entries for path in cleaned_log_paths(entry, logs_dir)]
                   if untrack_logs else [])

        def message(dropped: list[str]) -> str:
            return batch_commit_message(entries, freed, untracked=len(dropped))

        return commit_index(index.path, message, repo_root=repo_root, policy=policy,
                            untrack=untrack)

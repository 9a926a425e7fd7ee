"""What verify finds: one typed record per problem, with the command that repairs it.

Kinds:

- ``missing``: the store has no object at a stored log's key;
- ``wrong_size`` / ``wrong_checksum``: the object is not the bytes the index records
  (by size; by the server's SHA-256, a read back, or what the store recorded);
- ``undecompressable``: a compressed object does not decompress (a gzip member or a zstd
  frame is damaged or cut short), or decompresses to other bytes than the log's;
- ``unreadable``: the object could not be checked (permission, network): not proof of
  damage, but not proof of health either;
- ``index_rule``: the index breaks a rule of ``validate-index``;
- ``unindexed``: an object under the archive's layout that no index entry names.

A finding's ``repair`` is a command line when one repairs it (re-upload from a local
copy that still exists, rebuild an entry from the store), else None, and ``hint`` says
what to do either way.
"""

from __future__ import annotations

from pathlib import Path

from log_archiver.util.paths import UnsafePath, confined

KINDS = ("missing", "wrong_size", "wrong_checksum", "undecompressable", "unreadable",
         "index_rule", "unindexed")
# the error type each kind is reported as in ``errors``
ERROR_TYPES = {"missing": "storage_not_found", "wrong_size": "checksum_mismatch",
               "wrong_checksum": "checksum_mismatch", "undecompressable": "checksum_mismatch",
               "unreadable": "storage", "index_rule": "index_invalid",
               "unindexed": "not_archived"}


def finding(kind: str, issue: int | None, file: str | None, remote_path: str | None,
            message: str, repair: str | None, hint: str) -> dict:
    return {"kind": kind, "issue": issue, "file": file, "remote_path": remote_path,
            "message": message, "repair": repair, "hint": hint}


def local_copy(logs_dir: Path, log: dict) -> str | None:
    """The file under the logs dir that still holds a log's stored bytes or its original,
    when one does (the stored copy first: it is what was uploaded)."""
    for name in (log.get("stored_path"), log.get("local_path")):
        try:
            path = confined(logs_dir, name)
        except UnsafePath:
            continue
        if path.is_file():
            return name
    return None


def object_finding(kind: str, issue: int, log: dict, message: str, logs_dir: Path,
                   url: str) -> dict:
    """A finding about a stored log's object, with its repair."""
    file = log["local_path"]
    copy = local_copy(logs_dir, log)
    if kind == "unreadable":
        return finding(kind, issue, file, log["remote_path"], message, None,
                       f"fix access to the store, then run `log-archiver verify {issue}` "
                       "again")
    if copy is not None:
        # the object is gone: upload it again; a different object at the key is kept and
        # the log goes to a key of its own (--force), so nothing is overwritten
        again = "--retry" if kind == "missing" else "--force"
        repair = (f"log-archiver update-file-status {issue} {_quoted(file)} pending && "
                  f"log-archiver archive {issue} {again}")
        return finding(kind, issue, file, log["remote_path"], message, repair,
                       f"the local copy {copy} still holds the log: mark it pending and "
                       f"upload it again (`{repair}`)")
    return finding(kind, issue, file, log["remote_path"], message, None,
                   f"no local copy is left: restore {url} from another copy of the store "
                   f"(a replica or a backup) with size {log['size_bytes']} and checksum "
                   f"{log['checksum']}, then run `log-archiver verify {issue}`")


def unindexed_finding(issue: int, key: str, size: int, url: str) -> dict:
    repair = f"log-archiver archive {issue} --reindex-only"
    return finding("unindexed", issue, None, key,
                   f"{url} ({size} bytes) lies in the folder of issue {issue} but no index "
                   "entry names it", repair,
                   f"if it is a log of issue {issue}, `{repair}` records it in the entry; "
                   "if not, remove it (gc --orphans, where available, does that after a "
                   "grace period)")


def rule_finding(violation: dict, issue: int | None, hint: str) -> dict:
    return finding("index_rule", issue, None, None,
                   f"{violation['path']}: {violation['message']} (rule {violation['rule']})",
                   None, f"{hint}; then run `log-archiver validate-index`")


def as_error(item: dict) -> dict:
    """A finding as an entry of the output's ``errors``."""
    error = {"type": ERROR_TYPES[item["kind"]], "message": item["message"],
             "retryable": item["kind"] == "unreadable",
             "hint": item["repair"] and f"run `{item['repair']}`" or item["hint"]}
    if item["file"] is not None:
        error["file"] = item["file"]
    return error


def _quoted(text: str) -> str:
    import shlex

    return shlex.quote(text)

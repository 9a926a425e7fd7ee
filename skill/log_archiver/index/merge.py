"""A git merge driver for the archive index, so two branches that archived can merge.

Git calls the driver with three temporary files: %O (the common ancestor), %A (ours,
which must hold the result) and %B (theirs); exit 0 means merged, anything else means
conflict. :func:`merge_index_files` follows that contract:

- Entries are matched by ``issue_number``, logs inside an entry by ``local_path`` (or
  ``filename``). Something only one side has is kept, unless the ancestor had it and
  the other side left it unchanged while this side removed it (then it stays removed).
- The same log on both sides keeps the further state (pending < retrying < failed <
  uploaded < verified < cleaned), then the newer ``upload_timestamp``, then the higher
  ``upload_attempt``; on a full tie, ours.
- The same log with different ``checksum`` or ``original_checksum`` on the two sides is
  a real conflict: never a silent choice. So is a removal on one side of something the
  other side changed, and a side that is not a valid index.
- Entry fields both sides changed take the value of the side archived later (a field
  only one side has counts as changed from nothing there); totals and flags are
  recomputed from the merged logs; entries are sorted; the result must validate against
  the schema before it is written (atomically) to %A.
- A legal hold is never lost to a merge: an entry held on either side stays held unless
  both sides have no hold (a release can be redone after the merge, a lost hold cannot),
  and an entry held on one side stays even when the other side removed it. Each time
  this overrides what the other rules would have chosen, a :class:`Decision` is reported
  (the CLI prints them on stderr, and the merge still succeeds).

On a conflict %A is left exactly as ours was, git marks the file conflicted, and the
conflicts are returned through ``report`` (the CLI prints them). Installed per clone by
:func:`install_merge_driver` (git config is not versioned; ``.gitattributes`` is).
"""

from __future__ import annotations

import json
import shlex
import shutil
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from log_archiver.errors import ArchiveError, GitError
from log_archiver.model import states
from log_archiver.model.holds import is_held
from log_archiver.util.fsutil import write_bytes_atomic

DRIVER_NAME = "log-archiver-index"
DRIVER_COMMAND = "log-archiver merge-index %O %A %B"
STATE_RANK = {name: rank for rank, name in enumerate(states.STATES)}


@dataclass
class Conflict:
    issue: int | None
    file: str | None
    ours_checksum: str | None
    theirs_checksum: str | None
    reason: str

    def to_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        where = f"issue #{self.issue}" if self.issue is not None else "archive index"
        if self.file:
            where += f", {self.file}"
        sums = ""
        if self.ours_checksum or self.theirs_checksum:
            sums = f" (ours {self.ours_checksum}, theirs {self.theirs_checksum})"
        return f"{where}: {self.reason}{sums}"


@dataclass
class Decision:
    """A choice the merge made that a person should know of (it is not a conflict)."""

    issue: int
    decision: str
    reason: str

    def to_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        return f"issue #{self.issue}: {self.decision}: {self.reason}"


_MISSING = object()


def _describe_hold(hold: dict) -> str:
    return f"{hold.get('reason')!r}, by {hold.get('by')} at {hold.get('at')}"


def _kept_hold(issue: int, held: dict, held_side: str, other_side: str, what: str) -> Decision:
    return Decision(issue, "kept the legal hold",
                    f"the {held_side} side holds it ({_describe_hold(held['hold'])}) and the "
                    f"{other_side} side {what}; the hold stays. If the release stands, run "
                    f"`log-archiver release {issue}` after the merge; else run `log-archiver "
                    f"hold {issue} --reason ...` to put back the objects' S3 legal holds the "
                    "release may have lifted")


def _empty() -> dict:
    return {"schema_version": 1, "last_updated": "1970-01-01T00:00:00Z", "archives": []}


def _load(path: Path, side: str) -> dict:
    """One side as a valid index; an empty file (no common ancestor) is an empty index."""
    from log_archiver.index.file import load_index_bytes

    raw = Path(path).read_bytes()
    if not raw.strip():
        return _empty()
    return load_index_bytes(raw, f"{path} (the {side} side)", "resolve the merge by hand")


def _load_base(path: Path) -> dict:
    """The ancestor; if unreadable, merge two-way (nothing counts as removed)."""
    try:
        return _load(path, "base")
    except (ArchiveError, OSError):
        return _empty()


def _log_key(log: dict) -> str:
    return log.get("local_path") or log.get("filename")


def _ts(text: str | None) -> tuple:
    """Sortable form of an index timestamp (fractions compare correctly too)."""
    if not text:
        return ("",)
    head, _, frac = text.rstrip("Z").partition(".")
    return (head, frac.ljust(9, "0"))


def _newer_log(ours: dict, theirs: dict) -> dict:
    def rank(log):
        return (STATE_RANK.get(log.get("upload_status"), -1), _ts(log.get("upload_timestamp")),
                log.get("upload_attempt") or 0)

    return theirs if rank(theirs) > rank(ours) else ours


def _three_way(base: dict, ours: dict, theirs: dict, both, conflicts: list, what,
               protect=None) -> list:
    """Merge keyed items; ``both(key, b, o, t)`` merges an item both sides hold.
    ``protect(key, kept, removed_on)`` says (True) that an item one side removed and the
    other kept unchanged stays anyway."""
    merged = []
    for key in [*ours, *(k for k in theirs if k not in ours)]:
        b, o, t = base.get(key), ours.get(key), theirs.get(key)
        if o is not None and t is not None:
            merged.append(o if o == t else both(key, b, o, t))
            continue
        kept, other = (o, "theirs") if o is not None else (t, "ours")
        if b is None:
            merged.append(kept)  # added on one side only
        elif kept != b:
            conflicts.append(what(key, o, t, f"removed on {other} side, changed on the other"))
            merged.append(kept)
        elif protect is not None and protect(key, kept, other):
            merged.append(kept)
        # else: removed on one side, untouched on the other -> stays removed
    return merged


def _merge_entry(issue: int, base: dict | None, ours: dict, theirs: dict,
                 conflicts: list, decisions: list) -> dict:
    def log_conflict(key, o, t, reason):
        o, t = o or {}, t or {}
        return Conflict(issue, key, o.get("checksum"), t.get("checksum"), reason)

    def both_logs(key, b, o, t):
        for field in ("checksum", "original_checksum"):
            if o.get(field) != t.get(field):
                conflicts.append(Conflict(issue, key, o.get(field), t.get(field),
                                          f"the same log has a different {field} on each side"))
                return o
        return _newer_log(o, t)

    base_logs = {_log_key(log): log for log in (base or {}).get("logs", [])}
    logs = _three_way(base_logs, {_log_key(log): log for log in ours["logs"]},
                      {_log_key(log): log for log in theirs["logs"]}, both_logs, conflicts,
                      log_conflict)
    later = theirs if _ts(theirs.get("archived_at")) > _ts(ours.get("archived_at")) else ours
    entry = {}
    for field in [*ours, *(f for f in theirs if f not in ours)]:
        o, t = ours.get(field, _MISSING), theirs.get(field, _MISSING)
        b = base.get(field, _MISSING) if base is not None else None
        if o == t or (base is not None and t == b):
            value = o
        elif base is not None and o == b:
            value = t
        else:
            value = later.get(field, _MISSING)
        if value is not _MISSING:
            entry[field] = value
    _keep_hold(issue, ours, theirs, entry, decisions)
    entry["logs"] = logs
    kept = {k["remote_path"]: k for side in (ours, theirs) for k in side.get("kept_objects", [])}
    if kept:  # what either side keeps in the store stays recorded
        entry["kept_objects"] = sorted(kept.values(), key=lambda k: k["remote_path"])
    return entry


def _keep_hold(issue: int, ours: dict, theirs: dict, entry: dict, decisions: list) -> None:
    """When one side holds the entry and the merged one would not, the hold stays."""
    if is_held(entry) or is_held(ours) == is_held(theirs):
        return  # held already, or both sides agree there is no hold
    held, held_side, other_side = (ours, "ours", "theirs") if is_held(ours) \
        else (theirs, "theirs", "ours")
    entry["hold"] = held["hold"]
    decisions.append(_kept_hold(issue, held, held_side, other_side, "released it"))


def merge_documents(base: dict, ours: dict, theirs: dict,
                    decisions: list | None = None) -> tuple[dict, list[Conflict]]:
    """The merged index and the conflicts found (merged is meaningless if any);
    ``decisions`` (when given) receives the :class:`Decision` items."""
    from log_archiver.index.file import sort_archives
    from log_archiver.model.records import recompute_entry

    conflicts: list[Conflict] = []
    decisions = decisions if decisions is not None else []

    def entry_conflict(issue, o, t, reason):
        return Conflict(issue, None, None, None, reason)

    def both_entries(issue, b, o, t):
        return recompute_entry(_merge_entry(issue, b, o, t, conflicts, decisions))

    def held_entry(issue, kept, removed_on):
        if not is_held(kept):
            return False
        held_side = "theirs" if removed_on == "ours" else "ours"
        decisions.append(_kept_hold(issue, kept, held_side, removed_on, "removed the entry"))
        return True

    by_issue = [{e["issue_number"]: e for e in doc["archives"]} for doc in (base, ours, theirs)]
    archives = _three_way(*by_issue, both_entries, conflicts, entry_conflict, held_entry)
    last = max(ours["last_updated"], theirs["last_updated"], key=_ts)
    return {**ours, "last_updated": last, "archives": sort_archives(archives)}, conflicts


def merge_index_files(base: Path, ours: Path, theirs: Path, *,
                      report: list | None = None, decisions: list | None = None) -> bool:
    """Git's merge-driver contract: True = merged into ``ours``; False = conflict.

    On False ``ours`` is left byte for byte as it was and ``report`` (when given)
    receives :class:`Conflict` items naming issue, file and both checksums.
    ``decisions`` (when given) receives the :class:`Decision` items of a merge.
    """
    from log_archiver.index.file import dumps, validate_document

    report = report if report is not None else []
    decisions = decisions if decisions is not None else []
    try:
        docs = (_load_base(base), _load(ours, "ours"), _load(theirs, "theirs"))
        merged, conflicts = merge_documents(*docs, decisions=decisions)
        if not conflicts:
            validate_document(merged, "merged archive index")
    except (ArchiveError, OSError) as error:
        report.append(Conflict(None, None, None, None, f"cannot merge: {error}"))
        return False
    if conflicts:
        report.extend(conflicts)
        return False
    write_bytes_atomic(Path(ours), dumps(merged))
    return True


def driver_command() -> str:
    """How git should run the driver: ``log-archiver merge-index %O %A %B`` when that name
    on PATH is this installation, else this installation's script (or module) by path."""
    installed = Path(sys.executable).with_name("log-archiver")
    found = shutil.which("log-archiver")
    if found and (not installed.exists() or Path(found).resolve() == installed.resolve()):
        return DRIVER_COMMAND
    if installed.exists():
        return f"{shlex.quote(str(installed))} merge-index %O %A %B"
    return f"{shlex.quote(sys.executable)} -m log_archiver.index.merge %O %A %B"


def install_merge_driver(repo_root: Path, index_relpath: str, *,
                         command: str = DRIVER_COMMAND) -> dict:
    """Route merges of the archive index to the driver in this clone.

    Adds ``/<index_relpath> merge=log-archiver-index`` to ``.gitattributes`` (kept if
    present, other lines untouched) and sets ``merge.log-archiver-index.name`` and
    ``.driver`` in the repository's git config. Commit ``.gitattributes``; every clone
    runs this once for the git config. Running it again changes nothing.
    """
    import git

    root = Path(repo_root)
    try:
        repo = git.Repo(root)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError) as error:
        raise GitError(f"{str(root)!r} is not a git repository",
                       "run `git init` there first, or pass the repository root") from error
    with repo:
        pattern, attributes_changed = _add_attribute(root / ".gitattributes", index_relpath)
        config_changed = False
        for key, value in ((f"merge.{DRIVER_NAME}.name", "log-archiver archive index merge"),
                           (f"merge.{DRIVER_NAME}.driver", command)):
            try:
                current = repo.git.config("--local", "--get", key)
            except git.GitCommandError:  # not set
                current = None
            if current != value:
                repo.git.config("--local", key, value)
                config_changed = True
    return {"gitattributes": str(root / ".gitattributes"),
            "gitattributes_changed": attributes_changed, "driver": command,
            "git_config_changed": config_changed, "pattern": pattern}


def _add_attribute(attributes: Path, index_relpath: str) -> tuple[str, bool]:
    """Give the index the driver in ``.gitattributes``; (its pattern, whether it changed)."""
    pattern = "/" + Path(index_relpath).as_posix().lstrip("/")
    if any(ch.isspace() for ch in pattern) or '"' in pattern:
        pattern = json.dumps(pattern)
    text = attributes.read_text(encoding="utf-8") if attributes.exists() else ""
    lines = text.splitlines()
    for number, existing in enumerate(lines):
        parts = existing.split()
        if parts and parts[0] == pattern:
            if f"merge={DRIVER_NAME}" in parts[1:]:
                return pattern, False
            rest = [p for p in parts[1:] if not p.startswith(("merge=", "-merge", "!merge"))]
            lines[number] = " ".join([pattern, *rest, f"merge={DRIVER_NAME}"])
            break
    else:
        lines.append(f"{pattern} merge={DRIVER_NAME}")
    write_bytes_atomic(attributes, ("\n".join(lines) + "\n").encode("utf-8"))
    return pattern, True


def main(argv: list[str] | None = None, stderr=None) -> int:
    """``python -m log_archiver.index.merge %O %A %B``: exit 0 merged, 1 conflict, 2 usage."""
    args = sys.argv[1:] if argv is None else argv
    err = stderr or sys.stderr
    if len(args) != 3:
        err.write("usage: python -m log_archiver.index.merge BASE OURS THEIRS\n")
        return 2
    report: list[Conflict] = []
    decisions: list[Decision] = []
    merged = merge_index_files(*(Path(a) for a in args), report=report, decisions=decisions)
    for decision in decisions:
        err.write(f"log-archiver merge: {decision}\n")
    if merged:
        return 0
    for conflict in report:
        err.write(f"log-archiver merge conflict: {conflict}\n")
    err.write(f"log-archiver: {shlex.quote(args[1])} kept as ours; resolve it by hand\n")
    return 1


if __name__ == "__main__":
    raise SystemExit(main())

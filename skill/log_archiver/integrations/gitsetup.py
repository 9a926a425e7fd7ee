"""``init``'s part of git: the index merge driver and the ignore lines."""

from __future__ import annotations

from pathlib import Path


def setup_repository(root: Path, index_path: Path, *, queue_files: list[Path] = ()) -> dict:
    """Make a git repository ready for archive indexes from many branches and machines.

    Installs the index merge driver (``.gitattributes`` and the repository's git config,
    see :func:`.merge.install_merge_driver`) and ignores the index's lock, backup and
    temp files in ``.gitignore``, and each of ``queue_files`` (SQLite job queues, with their
    ``-wal``, ``-shm`` and ``-journal`` companions) that lies in the work tree. Running it
    again changes nothing. Returns
    ``{"installed": False, "reason"}`` when ``root`` is no git work tree or the index lies
    outside it.
    """
    import git

    from log_archiver.index.merge import driver_command, install_merge_driver

    root = Path(root).absolute()
    try:
        with git.Repo(root) as repo:
            work = Path(repo.working_tree_dir).resolve() if repo.working_tree_dir else None
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        work = None
    if work is None:
        return {"installed": False,
                "reason": f"{root} is not a git work tree; run `git init` there, then "
                          "`log-archiver init` again to install the index merge driver"}
    try:
        rel = Path(index_path).absolute().resolve().relative_to(work).as_posix()
    except ValueError:
        return {"installed": False,
                "reason": f"the archive index {index_path} is outside the git work tree "
                          f"{work}; there is nothing to merge"}
    driver = install_merge_driver(work, rel, command=driver_command())
    ignore = ignore_index_files(work, rel, queue_patterns(work, queue_files))
    audit = union_merge_audit(work, rel)
    changed = (driver["gitattributes_changed"] or driver["git_config_changed"]
               or ignore["gitignore_changed"] or audit["audit_attributes_changed"])
    return {"installed": True, "index": rel, "changed": changed, **driver, **ignore, **audit}


def union_merge_audit(work: Path, index_rel: str) -> dict:
    """Merge the audit trail's day files line by line (``merge=union`` in
    ``.gitattributes``): two branches appending to one day's file never conflict."""
    from log_archiver.audit.trail import AUDIT_DIR
    from log_archiver.util.fsutil import write_bytes_atomic

    folder = index_rel.rpartition("/")[0]
    pattern = "/" + _gitignore_literal(f"{folder}/{AUDIT_DIR}" if folder else AUDIT_DIR)
    pattern = f"{pattern}/*.jsonl"
    if any(ch.isspace() for ch in pattern):
        pattern = '"' + pattern.replace('"', '\\"') + '"'
    path = Path(work) / ".gitattributes"
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    wanted = f"{pattern} merge=union"
    present = any(line.split()[:1] == [pattern] and "merge=union" in line.split()[1:]
                  for line in text.splitlines() if line.strip())
    if not present:
        if text and not text.endswith("\n"):
            text += "\n"
        write_bytes_atomic(path, (text + wanted + "\n").encode("utf-8"))
    return {"audit_pattern": pattern, "audit_attributes_changed": not present}


def queue_patterns(work: Path, queue_files) -> list[str]:
    """The .gitignore lines of the queue files inside ``work`` (outside ``.git``)."""
    patterns = []
    for path in queue_files:
        try:
            path = Path(path).absolute()  # the file itself may be a link: git sees the link
            rel = (path.parent.resolve() / path.name).relative_to(work).as_posix()
        except (ValueError, OSError):
            continue  # outside the work tree: nothing git could pick up
        if rel.split("/")[0] == ".git" or any(ord(ch) < 32 or ord(ch) == 127 for ch in rel):
            continue
        literal = "/" + _gitignore_literal(rel)
        patterns += [literal, f"{literal}-*"]
    return patterns


def ignore_index_files(work: Path, index_rel: str, extra: list[str] = ()) -> dict:
    """Add what the tool writes beside the logs to ``.gitignore`` (once): the index's
    lock, backup, validity record, batch checkpoint and temp file, ``extra`` lines (the
    queue's files), and in the logs dir our
    temp files (``*.la-*.tmp``, ``.*.part``) and the compressed copies made before upload
    (``.NAME.la.gz``: a log that arrives compressed, ``NAME.gz``, is a log and is not
    ignored)."""
    from log_archiver.model.copies import COPY_MARK, SUFFIX
    from log_archiver.util.fsutil import TEMP_MARKER, TEMP_SUFFIX, write_bytes_atomic

    base = "/" + _gitignore_literal(index_rel)
    wanted = [f"{base}.lock", f"{base}.backup", f"{base}.valid", f"{base}.batch",
              f"{base}.batch.lock",
              f"{base}{TEMP_MARKER}*{TEMP_SUFFIX}", *extra]
    folder = index_rel.rpartition("/")[0]
    if folder:  # (logs at the top of the work tree: these would reach the whole project)
        logs = "/" + _gitignore_literal(folder)
        wanted += [f"{logs}/**/*{TEMP_MARKER}*{TEMP_SUFFIX}", f"{logs}/**/.*.part",
                   *(f"{logs}/*/.*{COPY_MARK}{suffix}" for suffix in SUFFIX.values())]
    path = Path(work) / ".gitignore"
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    present = {line.strip() for line in text.splitlines()}
    missing = [line for line in wanted if line not in present]
    if missing:
        if text and not text.endswith("\n"):
            text += "\n"
        text += ("# log-archiver: the archive index's lock, backup and temp files, and the "
                 "temp files and compressed copies it makes beside the logs\n")
        text += "".join(f"{line}\n" for line in missing)
        write_bytes_atomic(path, text.encode("utf-8"))
    return {"gitignore": str(path), "gitignore_changed": bool(missing), "ignored": wanted}


def _gitignore_literal(path: str) -> str:
    """``path`` as a .gitignore pattern that matches it and nothing else."""
    escaped = "".join(f"\\{ch}" if ch in "\\*?[" else ch for ch in path)
    return escaped[:-1] + "\\ " if escaped.endswith(" ") else escaped

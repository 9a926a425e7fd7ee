"""Find the logs that belong to one issue under the logs dir.

A log of issue N is a regular file directly in the folder of its type: ``sessions/``
(``session-N-*``, or any name holding N as a number of its own), ``builds/``,
``deployments/`` and ``debug/`` (``N-*``, ``N_*``, ``N.*`` or just ``N``). A ``.gz`` or
``.zst`` file is a log like any other (the tool's own compressed copies have hidden names
and are never collected).

Every other file that names issue N is left alone and listed in ``skipped`` with the
reason: outside a type folder (the top of the logs dir, directly in a folder of another
name there), in a subfolder
of a type folder, hidden, a temp or lock file, not a regular file (FIFO, device, socket),
a symlink leading out of the logs dir, a second name of a log already collected, or a
name that holds N but not in the form its folder's logs use (``builds/build-N.log``).
Files of other issues are not listed.
"""

from __future__ import annotations

import os
import stat as stat_module
from dataclasses import dataclass
from pathlib import Path

from log_archiver.model.copies import COPY_MARK, copy_origin
from log_archiver.model.issues import session_matches
from log_archiver.model.log_types import LOG_TYPES, numbered_matches
from log_archiver.repository import Repository
from log_archiver.util.fsutil import TEMP_MARKER, is_temp_name, remove_stale_temps_in
from log_archiver.util.hashing import prefixed, sha256_and_size


def mentions_issue(name: str, issue: int) -> bool:
    """Whether ``name`` holds ``issue`` as a number of its own (dates and times aside)."""
    if str(issue) not in name:  # the cheap test first: most names are other issues'
        return False
    return session_matches(name, issue) or numbered_matches(name, issue)


FOLDER_LIST = ", ".join(f"{folder}/" for folder in LOG_TYPES)


@dataclass(frozen=True)
class FoundLog:
    path: Path          # absolute
    relative: str       # relative to the logs dir, with forward slashes
    type: str
    size: int
    mtime: float


@dataclass(frozen=True)
class Skipped:
    path: str
    reason: str


def remove_stale_temps(logs_dir: Path) -> list[str]:
    """Delete temp files that killed runs of ours left in the log folders."""
    return [f"{folder}/{name}" for folder in LOG_TYPES
            for name in remove_stale_temps_in(Path(logs_dir) / folder)]


def _ours(name: str) -> bool:
    """A temp file or a compressed copy this tool writes: never a log, never reported."""
    if TEMP_MARKER in name or (name.startswith(".") and name.endswith(".part")):
        return True
    origin = copy_origin(name)
    return origin is not None and name.startswith(".") and COPY_MARK in name


_KINDS = ((stat_module.S_ISFIFO, "a FIFO"), (stat_module.S_ISSOCK, "a socket"),
          (stat_module.S_ISCHR, "a character device"), (stat_module.S_ISBLK, "a block device"))


def _not_regular(mode: int) -> str:
    kind = next((text for test, text in _KINDS if test(mode)), "not a regular file")
    return f"{kind}, not a regular file: never read"


def _real_folder(logs_dir: Path, root: Path, folder: str) -> Path:
    """Where the type folder really is: under the resolved logs dir unless it is a link
    (resolving it whole would walk the logs dir's parents again for every folder)."""
    try:
        if not stat_module.S_ISLNK(os.lstat(logs_dir / folder).st_mode):
            return root / folder
    except OSError:
        return root / folder  # missing: nothing to collect, and scandir says so
    return Path(os.path.realpath(logs_dir / folder))


def collect_logs(logs_dir: Path, issue: int) -> tuple[list[FoundLog], list[Skipped]]:
    """Every log of ``issue`` (by type folder, then name; logs reached through a symlink
    last) and every other file naming the issue that was left alone, with the reason."""
    logs_dir = Path(logs_dir)
    root = logs_dir.resolve()
    found: list[FoundLog] = []
    skipped: list[Skipped] = []
    seen: set[tuple[int, int]] = set()
    for folder, (log_type, matches) in LOG_TYPES.items():
        real_folder = _real_folder(logs_dir, root, folder)
        if not real_folder.is_relative_to(root):
            if real_folder.is_dir():
                skipped.append(Skipped(f"{folder}/", "folder is a symlink that leads outside "
                                                     f"the logs dir to {real_folder}"))
            continue
        try:
            # regular files first, so a log reached by a symlink too is kept under its name
            entries = sorted(os.scandir(logs_dir / folder),
                             key=lambda e: (e.is_symlink(), e.name))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for entry in entries:
            name = entry.name
            relative = f"{folder}/{name}"
            if name.startswith(".") or is_temp_name(name):
                if not _ours(name) and mentions_issue(name.lstrip("."), issue):
                    why = "hidden file" if name.startswith(".") else \
                        "temp, partial or lock file (.tmp, .part, .lock)"
                    skipped.append(Skipped(relative, f"{why}, not collected as a log"))
                continue
            if not matches(name, issue):
                if entry.is_dir(follow_symlinks=False):
                    skipped += _in_subfolder(Path(entry.path), relative, folder, issue,
                                             named=mentions_issue(name, issue))
                elif mentions_issue(name, issue):
                    skipped.append(Skipped(relative, _misnamed(folder, issue)))
                continue
            if entry.is_symlink():
                target = Path(os.path.realpath(entry.path))
                if not target.is_relative_to(root):
                    skipped.append(Skipped(relative,
                                           f"symlink leads outside the logs dir to {target}"))
                    continue
            try:
                stat = entry.stat()
            except OSError as error:
                skipped.append(Skipped(relative, f"cannot read: {error.strerror}"))
                continue
            if stat_module.S_ISDIR(stat.st_mode):
                if not entry.is_symlink():
                    skipped += _in_subfolder(Path(entry.path), relative, folder, issue,
                                             named=True)
                else:
                    skipped.append(Skipped(relative, "a symlink to a folder, not a log"))
                continue
            if not stat_module.S_ISREG(stat.st_mode):
                skipped.append(Skipped(relative, _not_regular(stat.st_mode)))
                continue
            identity = (stat.st_dev, stat.st_ino)
            if identity in seen:
                skipped.append(Skipped(relative, "another name of a log already collected"))
                continue
            seen.add(identity)
            found.append(FoundLog(Path(entry.path).absolute(), relative, log_type,
                                  stat.st_size, stat.st_mtime))
    skipped += _outside_type_folders(logs_dir, issue)
    return found, skipped


def _misnamed(folder: str, issue: int) -> str:
    form = f"session-{issue}-NAME" if folder == "sessions" else f"{issue}-NAME"
    return (f"names issue {issue}, but not as {folder}/ logs are named ({form}): "
            "rename it to archive it")


def _in_subfolder(top: Path, relative: str, folder: str, issue: int, *,
                  named: bool = False) -> list[Skipped]:
    """The files under the subfolder ``top`` that name the issue (all of them when the
    subfolder's own name does)."""
    reason = (f"in a subfolder of {folder}/; only files directly in {folder}/ are "
              f"collected: move it into {folder}/ to archive it")
    return [Skipped(path, reason) for path in _walk_naming(top, relative, issue, named)]


def _walk_naming(top: Path, relative: str, issue: int, named: bool) -> list[str]:
    out: list[str] = []
    for dirpath, dirnames, filenames in os.walk(top, followlinks=False):
        rel_dir = relative + dirpath[len(str(top)):]
        inner = rel_dir[len(relative):].split("/")
        hit = named or any(mentions_issue(part, issue) for part in inner if part)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith(".") or is_temp_name(name):
                continue
            if hit or mentions_issue(name, issue):
                out.append(f"{rel_dir}/{name}")
    return out


def _outside_type_folders(logs_dir: Path, issue: int) -> list[Skipped]:
    """Files naming the issue at the top of the logs dir or directly in a folder of
    another name there (one level only: such a folder may be big, a store even)."""
    reason = f"not in a log type folder ({FOLDER_LIST}): move it into the folder of its type"
    skipped: list[Skipped] = []
    for name, is_dir in _names(logs_dir):
        if name in LOG_TYPES or name.startswith(".") or is_temp_name(name):
            continue
        if not is_dir:
            if mentions_issue(name, issue):
                skipped.append(Skipped(name, reason))
            continue
        named = mentions_issue(name, issue)
        for inner, inner_is_dir in _names(logs_dir / name):
            if not inner_is_dir and not inner.startswith(".") and not is_temp_name(inner) \
                    and (named or mentions_issue(inner, issue)):
                skipped.append(Skipped(f"{name}/{inner}", reason))
    return skipped


def _names(folder: Path) -> list[tuple[str, bool]]:
    """(name, is a folder, symlinks not followed) of each entry of ``folder``, by name."""
    try:
        with os.scandir(folder) as entries:
            return sorted((e.name, e.is_dir(follow_symlinks=False)) for e in entries)
    except OSError:
        return []


def collect(repo: Repository, issue: int) -> tuple[list[FoundLog], list[Skipped]]:
    """The issue's logs for a run of the workflow: as :func:`collect_logs` finds them,
    less the compressed copies an older release named ``NAME.gz`` beside a log."""
    repo.check_logs_dir()
    found, skipped = collect_logs(repo.logs_dir, issue)
    entry = repo.index.find(issue)
    if entry is not None:
        artifacts = {log["stored_path"]: log for log in entry["logs"] if log["compressed"]
                     and log["stored_path"] != log["local_path"]}
        found = [f for f in found if not _our_copy(f, artifacts.get(f.relative))]
    return found, skipped


def _our_copy(found: FoundLog, log: dict | None) -> bool:
    """Whether ``found`` holds exactly the bytes ``log`` recorded for its compressed copy
    (anything else at that name is a person's file, so a log)."""
    if log is None or found.size != log["size_bytes"]:
        return False
    try:
        return prefixed(sha256_and_size(found.path)[0]) == log["checksum"]
    except OSError:
        return False

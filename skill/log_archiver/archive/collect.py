"""Find the logs that belong to one issue under the logs dir."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from log_archiver.model.log_types import LOG_TYPES
from log_archiver.util.fsutil import is_temp_name, remove_stale_temps_in

COMPRESSED_SUFFIXES = (".gz", ".zst")


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


def collect_logs(logs_dir: Path, issue: int) -> tuple[list[FoundLog], list[Skipped]]:
    """Every log of ``issue`` (by type folder, then name; logs reached through a symlink
    last) and what was skipped."""
    logs_dir = Path(logs_dir)
    root = logs_dir.resolve()
    found: list[FoundLog] = []
    skipped: list[Skipped] = []
    seen: set[tuple[int, int]] = set()
    for folder, (log_type, matches) in LOG_TYPES.items():
        real_folder = Path(os.path.realpath(logs_dir / folder))
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
        names = {entry.name for entry in entries}
        for entry in entries:
            name = entry.name
            if name.startswith(".") or is_temp_name(name) or not matches(name, issue):
                continue
            if name.endswith(COMPRESSED_SUFFIXES) and name.rsplit(".", 1)[0] in names:
                continue  # our compressed copy of a log that is still here
            relative = f"{folder}/{name}"
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
            if not entry.is_file():
                continue
            identity = (stat.st_dev, stat.st_ino)
            if identity in seen:
                skipped.append(Skipped(relative, "another name of a log already collected"))
                continue
            seen.add(identity)
            found.append(FoundLog(Path(entry.path).absolute(), relative, log_type,
                                  stat.st_size, stat.st_mtime))
    return found, skipped

"""The names of the tool's compressed copies of logs, and of their objects in the store.

The compressed copy of ``builds/12-build.log`` is ``builds/.12-build.log.la.gz``: a
hidden name of the tool's own, so it never takes the name of a file a person made (a
``12-build.log.gz`` beside the log is a log of its own). Its object in the store is
still named ``12-build.log.gz``. Copies made before this naming (``NAME.gz`` beside the
log, the *legacy* name) are still recognised where an index record names them.

Kept apart from the compressor so that finding logs never loads one, and low enough
that ``init`` can name the copies in ``.gitignore``.
"""

from __future__ import annotations

from pathlib import Path

from log_archiver.util.fsutil import TEMP_MARKER, TEMP_SUFFIX

SUFFIX = {"gzip": ".gz", "zstd": ".zst"}
COPY_MARK = ".la"


def copy_name(name: str, algorithm: str) -> str:
    """The file name of the tool's compressed copy of the log named ``name``."""
    return f".{name}{COPY_MARK}{SUFFIX[algorithm]}"


NAME_MAX = 255  # bytes in one file name on the filesystems we meet (and in a key's part)


# what a temp file adds to the name it is written for (fsutil.temp_path_for), at most
TEMP_ADDS = len(f"{TEMP_MARKER}{'9' * 7}-{'f' * 8}{TEMP_SUFFIX}")


def fits_compressed(name: str, algorithm: str) -> bool:
    """Whether the log ``name`` can have a compressed copy (written under a temp name
    first) without a name growing past what a filesystem takes; a longer one is stored
    as it is."""
    copy = copy_name(name, algorithm).encode("utf-8", "surrogateescape")
    return len(copy) + TEMP_ADDS <= NAME_MAX


def compressed_copy_path(source: Path, algorithm: str) -> Path:
    """Where the compressed copy of ``source`` is written: beside it, under our own name."""
    return source.with_name(copy_name(source.name, algorithm))


def legacy_copy_name(name: str, algorithm: str) -> str:
    return name + SUFFIX[algorithm]


def stored_name(name: str, compression: str | None) -> str:
    """The object name in the store of the log ``name`` (compressed: ``NAME.gz``)."""
    return name if compression is None else name + SUFFIX[compression]


def copy_relative(local_path: str, compression: str | None, present=()) -> str:
    """The stored_path of the log at ``local_path``: itself when stored as it is, else its
    compressed copy (the legacy ``NAME.gz`` when that is among ``present``)."""
    if compression is None:
        return local_path
    folder, _, name = local_path.rpartition("/")
    prefix = f"{folder}/" if folder else ""
    legacy = prefix + legacy_copy_name(name, compression)
    return legacy if legacy in present else prefix + copy_name(name, compression)


def copy_origin(name: str) -> tuple[str, str] | None:
    """(log name, algorithm) of a file named as one of our compressed copies, either
    naming; None for any other name."""
    for algorithm, suffix in SUFFIX.items():
        tail = COPY_MARK + suffix
        if name.startswith(".") and name.endswith(tail) and len(name) > len(tail) + 1:
            return name[1:-len(tail)], algorithm
    for algorithm, suffix in SUFFIX.items():
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[:-len(suffix)], algorithm
    return None

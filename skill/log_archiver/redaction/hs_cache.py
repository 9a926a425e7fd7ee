"""The compiled hyperscan database, kept between runs so a command does not compile it
again at every start (a tenth of a second and more, for one database).

One file per database under the user's cache folder (``$XDG_CACHE_HOME`` or
``~/.cache``, then ``log-archiver/hyperscan``), named by a key over the expressions, ids
and flags and the hyperscan release. A cache file is read as hostile input: the folder
must be this user's own and writable by no one else, the file a regular file of this
user's; it must carry its key and the SHA-256 of the serialized bytes, and hyperscan must
take them. Anything else is ignored: the database is compiled and the file written anew.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

MAGIC = b"log-archiver hyperscan database 1\n"
MAX_BYTES = 64 << 20


def cache_folder() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "log-archiver" / "hyperscan"


def database_key(hyperscan, expressions: list[bytes], ids: list[int], flags: list[int]) -> str:
    digest = hashlib.sha256()
    library = Path(hyperscan.__file__).parent
    version = getattr(hyperscan, "__version__", "")
    digest.update(f"{version}\0{sorted(p.name for p in library.glob('*.so'))}\0".encode())
    for expression, number, flag in zip(expressions, ids, flags, strict=True):
        text = expression.encode() if isinstance(expression, str) else expression
        digest.update(b"%d\0%d\0%d\0" % (number, flag, len(text)) + text)
    return digest.hexdigest()


def _safe_folder(folder: Path, create: bool) -> bool:
    """Whether ``folder`` is this user's own directory, writable by no one else."""
    try:
        if create:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = os.lstat(folder)
    except OSError:
        return False
    return (stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid()
            and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH))


def load(hyperscan, key: str):
    """The cached database of ``key``, or None when there is none to trust."""
    folder = cache_folder()
    if not _safe_folder(folder, create=False):
        return None
    try:
        fd = os.open(folder / f"{key}.db", os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid() \
                or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH) or info.st_size > MAX_BYTES:
            return None
        with os.fdopen(os.dup(fd), "rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    except OSError:
        return None
    finally:
        os.close(fd)
    head = MAGIC + key.encode() + b"\n"
    if not data.startswith(head):
        return None
    checksum, payload = data[len(head):len(head) + 64], data[len(head) + 65:]
    if data[len(head) + 64:len(head) + 65] != b"\n" \
            or hashlib.sha256(payload).hexdigest().encode() != checksum:
        return None
    try:
        return hyperscan.loadb(payload, hyperscan.HS_MODE_BLOCK)
    except Exception:  # bytes hyperscan refuses: compiled again
        return None


def save(hyperscan, key: str, database) -> None:
    """Keep ``database`` for the next run; a cache that cannot be written is no error."""
    folder = cache_folder()
    if not _safe_folder(folder, create=True):
        return
    try:
        payload = hyperscan.dumpb(database)
        data = MAGIC + key.encode() + b"\n" + hashlib.sha256(payload).hexdigest().encode() \
            + b"\n" + payload
        temp = folder / f".{key}.{os.getpid()}-{os.urandom(4).hex()}"
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o600)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(temp, folder / f"{key}.db")
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
    except Exception:
        return


def compiled(hyperscan, expressions: list[bytes], ids: list[int], flags: list[int]):
    """The block-mode database of these expressions: from the cache, or compiled (and
    cached)."""
    key = database_key(hyperscan, expressions, ids, flags)
    database = load(hyperscan, key)
    if database is not None:
        return database
    database = hyperscan.Database()
    database.compile(expressions=expressions, ids=ids, elements=len(ids), flags=flags)
    save(hyperscan, key, database)
    return database

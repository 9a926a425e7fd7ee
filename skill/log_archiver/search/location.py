"""Where the search index lives: a cache folder of this user, one index per archive index
and store.

It is derived data, so it stays out of the repository (never committed, never merged).
Keying it by the archive index's path and the store URL keeps two clones, or one clone
pointed at two stores, from mixing their postings; a fresh clone starts with an empty
index and fills it from the store on its first search.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

INDEX_NAME = "search-index.sqlite"


def cache_root() -> Path:
    """``$XDG_CACHE_HOME/log-archiver/search`` (``~/.cache`` when unset or relative)."""
    base = os.environ.get("XDG_CACHE_HOME") or ""
    if not os.path.isabs(base):
        base = str(Path.home() / ".cache")
    return Path(base) / "log-archiver" / "search"


def index_path(config) -> Path:
    """The search index file for this archive index and store."""
    identity = f"{Path(config.index_path).resolve()}\n{config.storage}"
    key = hashlib.sha256(identity.encode("utf-8", errors="surrogatepass")).hexdigest()[:20]
    return cache_root() / key / INDEX_NAME

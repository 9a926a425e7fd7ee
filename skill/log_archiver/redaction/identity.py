"""Proving a local log is the one stored, without a hash of its secrets anywhere.

A redacted log's record holds the checksum of its *redacted* bytes (``original_checksum``
included: a plain hash of text holding a short password lets anyone test guesses of it
offline). Redaction is deterministic, so the local file is redacted again with the rules
in force and the result compared; a log whose record says nothing was redacted is
hashed as it is, as before redaction existed. Changed rules make a redacted log look
changed, which keeps it on disk: the safe side.
"""

from __future__ import annotations

from pathlib import Path

from log_archiver.redaction.engine import Scanner
from log_archiver.redaction.policy import ruleset_of
from log_archiver.redaction.stream import redacted_digest
from log_archiver.util.hashing import sha256_file

_SCANNERS: dict[int, Scanner] = {}


def was_redacted(record: dict) -> bool:
    return bool((record.get("redaction") or {}).get("redacted"))


def must_copy(redaction: dict | None) -> bool:
    """A log whose bytes were changed by redaction cannot be stored as it is."""
    return bool(redaction and redaction.get("redacted"))


def identity_scanner(config) -> Scanner:
    """The rules a redacted log is proven with: those of the config, whether or not
    this run redacts (``--no-redact`` does not change what was stored before)."""
    ruleset = ruleset_of(config)
    scanner = _SCANNERS.get(id(ruleset))
    if scanner is None:
        scanner = _SCANNERS[id(ruleset)] = Scanner(ruleset)
    return scanner


def local_digest(path: Path, record: dict, config) -> str:
    """The SHA-256 (bare hex) to compare with the record's ``original_checksum``."""
    if config is None or not was_redacted(record):
        return sha256_file(path)
    return redacted_digest(path, identity_scanner(config))[0]


def redaction_summary(config, logs: list[tuple[str, dict | None]]) -> dict:
    """What a run's JSON says of redaction: how many secrets, in which logs (by rule)."""
    redacted = [{"local_path": path, "findings": record["findings"],
                 "secrets": sum(record["findings"].values())}
                for path, record in logs if must_copy(record)]
    return {"enabled": bool(config.redact),
            "secrets": sum(item["secrets"] for item in redacted),
            "logs": redacted,
            "binary": [path for path, record in logs if record and record.get("binary")]}
